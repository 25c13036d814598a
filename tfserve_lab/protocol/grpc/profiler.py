"""TensorFlow's profiler service on the serving gRPC port, as TF Serving offers it.

TensorFlow's own profiler server runs on a private loopback-only port chosen at
start; calls to ``tensorflow.ProfilerService/*`` on our port are forwarded to it
byte for byte, so ``tf.profiler.experimental.client.trace("grpc://HOST:8500", ...)``
and TensorBoard's Profile tab capture traces of the running engine.
"""

from __future__ import annotations

import socket
from typing import Any

import grpc

__all__ = ["PROFILER_SERVICE", "ProfilerForwarder"]

PROFILER_SERVICE = "tensorflow.ProfilerService"
_METHODS = ("Profile", "Terminate", "Monitor")
_started_port: int | None = None  # TensorFlow allows one profiler server per process


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_profiler_server() -> int:
    global _started_port
    if _started_port is None:
        import tensorflow as tf

        port = _free_loopback_port()
        tf.profiler.experimental.server.start(port)
        _started_port = port
    return _started_port


class ProfilerForwarder(grpc.GenericRpcHandler):
    """A generic handler relaying ProfilerService calls to TensorFlow's profiler server."""

    def __init__(self) -> None:
        self.port = _start_profiler_server()
        self._channel: grpc.aio.Channel | None = None

    def _channel_for_loop(self) -> grpc.aio.Channel:
        # Created lazily inside the engine loop: grpc.aio channels bind to the running loop.
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(
                f"127.0.0.1:{self.port}",
                options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)],
            )
        return self._channel

    def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler | None:
        """Handle ``/tensorflow.ProfilerService/<method>``; leave every other call to the other handlers."""
        service, _, method = handler_call_details.method.lstrip("/").partition("/")
        if service != PROFILER_SERVICE or method not in _METHODS:
            return None
        path = handler_call_details.method

        async def forward(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            call = self._channel_for_loop().unary_unary(path)
            remaining = context.time_remaining()
            try:
                response: bytes = await call(request, timeout=remaining)
                return response
            except grpc.aio.AioRpcError as exc:
                await context.abort(exc.code(), exc.details() or "")
                raise  # unreachable: abort raises

        return grpc.unary_unary_rpc_method_handler(forward)

    async def close(self) -> None:
        """Close the channel to TensorFlow's profiler server."""
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
