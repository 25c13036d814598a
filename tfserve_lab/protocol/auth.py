"""``--auth_token``: a bearer token on REST (``Authorization`` header) and gRPC (``authorization`` metadata).

TF Serving has no authentication; an engine exposed beyond loopback needs one.
Tokens are compared in constant time (``hmac.compare_digest``) so the time an
answer takes says nothing about how much of a guess was right. gRPC health
checks stay open: orchestrators' gRPC probes cannot send metadata, and the
health service tells nothing about models beyond SERVING or not.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

__all__ = ["OPEN_GRPC_SERVICES", "UNAUTHENTICATED_MESSAGE", "AuthInterceptor", "bearer_token_matches"]

UNAUTHENTICATED_MESSAGE = "Missing or invalid bearer token: send 'Authorization: Bearer <token>'."
OPEN_GRPC_SERVICES = ("/grpc.health.v1.Health/",)


def bearer_token_matches(expected: str, header: str | None) -> bool:
    """Whether an ``Authorization`` value carries the expected bearer token (constant-time compare).

    The scheme is case-insensitive (RFC 9110); the token is compared byte for byte.
    """
    if not expected:
        return True
    if not header:
        return False
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def _metadata_value(metadata: Any, key: str) -> str | None:
    for item in metadata or ():
        name, value = item
        if name.lower() == key:
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return None


async def _deny_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)


async def _deny_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)
    yield  # pragma: no cover - makes this an async generator, as stream handlers are


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Refuses every call without the bearer token (except the health service) with UNAUTHENTICATED."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method or ""
        if handler is None or method.startswith(OPEN_GRPC_SERVICES):
            return handler
        header = _metadata_value(handler_call_details.invocation_metadata, "authorization")
        if bearer_token_matches(self._token, header):
            return handler
        # The refusal keeps the method's shape so the client reads a status, not a protocol error.
        kwargs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(_deny_unary, **kwargs)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(_deny_stream, **kwargs)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(_deny_unary, **kwargs)
        return grpc.stream_stream_rpc_method_handler(_deny_stream, **kwargs)
