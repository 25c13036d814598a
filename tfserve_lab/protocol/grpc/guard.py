"""A server interceptor that keeps Python failures off the wire.

grpc.aio answers a request that does not parse, or a servicer that raises
something unexpected, with UNKNOWN and ``Unexpected <class ...>: <text>``: the
exception's class and text reach the client. Here a request that does not
parse gets INTERNAL ``Failed to parse request`` (what C++ gRPC, and so TF
Serving, answers), and an unexpected exception gets INTERNAL with a fixed
sentence while the traceback goes to the log.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

__all__ = ["PARSE_ERROR", "ErrorGuard"]

log = logging.getLogger("tfserve_lab.grpc")

PARSE_ERROR = "Failed to parse request"
INTERNAL_ERROR = "Internal error while handling the request; the server log has the details."


class _Unparsed:
    """Stands in for a request message whose bytes did not parse."""

    __slots__ = ()


_UNPARSED = _Unparsed()


def _lenient(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:  # noqa: BLE001 - any parse failure is the client's; it gets a status, not a crash
            return _UNPARSED

    return parse


def _guard_unary(method: str, behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if request is _UNPARSED:
            await context.abort(grpc.StatusCode.INTERNAL, PARSE_ERROR)
        try:
            return await behavior(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("Uncaught error in %s", method)
            await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_ERROR)

    return run


def _guard_unary_stream(method: str, behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    async def run(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        if request is _UNPARSED:
            await context.abort(grpc.StatusCode.INTERNAL, PARSE_ERROR)
        try:
            async for item in behavior(request, context):
                yield item
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("Uncaught error in %s", method)
            await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_ERROR)

    return run


class ErrorGuard(grpc.aio.ServerInterceptor):
    """Unparsable requests -> INTERNAL ``Failed to parse request``; uncaught exceptions -> INTERNAL, logged."""

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming:
            return handler  # streamed requests (reflection) keep grpc's own handling
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]  # the servicers' handlers are fixed per method: wrap each once, not per call
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        kwargs = {
            "request_deserializer": _lenient(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(_guard_unary(method, handler.unary_unary), **kwargs)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(_guard_unary_stream(method, handler.unary_stream), **kwargs)
        return handler
