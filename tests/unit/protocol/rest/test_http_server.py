"""The REST HTTP server's connection handling: idle keep-alive connections closed by a sweep, Nagle kept off."""

from __future__ import annotations

import asyncio
import socket

import tornado.testing
import tornado.web

from tfserve_lab.protocol.rest.http_server import RestHttpServer


class _NoDelayReport(tornado.web.RequestHandler):
    def get(self) -> None:
        stream = self.request.connection.stream  # type: ignore[union-attr]
        self.finish(str(stream.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0))


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(
        next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")).split(b":")[1]
    )
    return await reader.readexactly(length)


def test_idle_connections_close_after_the_timeout_and_busy_ones_stay_open() -> None:
    async def main() -> tuple[list[bytes], bytes, list[bytes]]:
        server = RestHttpServer(
            tornado.web.Application([(r"/", _NoDelayReport)]), idle_connection_timeout=0.4, idle_sweep_seconds=0.05
        )
        sock, port = tornado.testing.bind_unused_port()
        server.add_sockets([sock])
        try:
            idle = await asyncio.open_connection("127.0.0.1", port)
            busy = await asyncio.open_connection("127.0.0.1", port)
            first = [await _get(*idle), await _get(*idle)]  # the second request sees Nagle still off
            answers = []
            for _ in range(10):  # requests every 0.1 s for 1 s: never idle for 0.4 s
                answers.append(await _get(*busy))
                await asyncio.sleep(0.1)
            closed = await asyncio.wait_for(idle[0].read(), 5)  # the idle one was closed by the server
            for connection in (idle, busy):
                connection[1].close()
            return first, closed, answers
        finally:
            server.stop()
            await server.close_all_connections()

    first, closed, answers = asyncio.run(main())
    assert first == [b"True", b"True"]
    assert closed == b""
    assert answers == [b"True"] * 10
