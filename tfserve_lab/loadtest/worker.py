"""One load-generator process: closed-loop clients or an open-loop schedule, until told to stop.

    python -m tfserve_lab.loadtest.worker JOB.json

Started by ``loadtest.runner`` as a process of its own, never as a thread of the
caller (a kernel's GIL would make the clients measure themselves). It needs no
TensorFlow: REST requests are ready bytes of HTTP/1.1 sent over keep-alive
connections, gRPC ones ready bytes of a ``PredictRequest`` sent through a
generic unary call. Every finished request is recorded as (finish time on
``time.perf_counter``, which is CLOCK_MONOTONIC and so comparable across
processes, latency, ok). On stdin the runner writes ``poll`` (answered with the
records since the last poll, one JSON line on stdout) and ``stop``.
"""

from __future__ import annotations

import array
import asyncio
import base64
import itertools
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Job", "main"]

_PREDICT = "/tensorflow.serving.PredictionService/Predict"
_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 256 << 20), ("grpc.max_send_message_length", 256 << 20)]
# Open loop: requests in flight at most, per process; past it a scheduled request counts as an error.
_MAX_IN_FLIGHT = 4096
_REST_POOL = 256  # HTTP/1.1 connections an open-loop process may open


@dataclass(frozen=True)
class Job:
    """What one worker does: where to send which request, and how (clients, or a rate)."""

    protocol: str  # "rest" or "grpc"
    host: str
    port: int
    payload_file: str  # the whole HTTP request, or the serialized PredictRequest
    clients: int = 0  # closed loop: this many clients, each sending when its last answer came
    rate: float = 0.0  # open loop: requests per second, on a fixed schedule
    timeout_s: float = 60.0
    auth_token: str = ""
    # Several requests back to back in the payload file (a replay): their sizes, sent in turn.
    payload_sizes: tuple[int, ...] = ()


class _Payloads:
    """The request to send next: the one payload, or a replay's requests in turn."""

    def __init__(self, data: bytes, sizes: tuple[int, ...]) -> None:
        if not sizes:
            self._items = [data]
        else:
            offsets = [0, *itertools.accumulate(sizes)]
            self._items = [data[a:b] for a, b in itertools.pairwise(offsets)]
        self._next = 0

    def take(self) -> bytes:
        item = self._items[self._next]
        self._next = (self._next + 1) % len(self._items)
        return item


class _Records:
    """Finished requests since the last poll."""

    def __init__(self) -> None:
        self.finished = array.array("d")
        self.latency = array.array("d")
        self.ok = array.array("b")
        self.first_error = ""

    def add(self, started: float, error: str) -> None:
        now = time.perf_counter()
        self.finished.append(now)
        self.latency.append(now - started)
        self.ok.append(0 if error else 1)
        if error and not self.first_error:
            self.first_error = error

    def take(self) -> dict[str, Any]:
        out = {
            "finished": base64.b64encode(self.finished.tobytes()).decode(),
            "latency": base64.b64encode(self.latency.tobytes()).decode(),
            "ok": base64.b64encode(self.ok.tobytes()).decode(),
            "first_error": self.first_error,
        }
        self.__init__()  # type: ignore[misc]
        return out


async def _rest_call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes) -> str:
    writer.write(payload)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
            break
    body = await reader.readexactly(length)
    return "" if status == 200 else f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}"


async def _closed_rest(job: Job, payloads: _Payloads, records: _Records, stop: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection(job.host, job.port)
    try:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                error = await asyncio.wait_for(_rest_call(reader, writer, payloads.take()), job.timeout_s)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as exc:
                records.add(started, f"{type(exc).__name__}: {exc}")
                writer.close()
                reader, writer = await asyncio.open_connection(job.host, job.port)
                continue
            records.add(started, error)
    finally:
        writer.close()


def _grpc_caller(job: Job) -> Any:
    import grpc

    metadata = (("authorization", f"Bearer {job.auth_token}"),) if job.auth_token else None
    channel = grpc.aio.insecure_channel(f"{job.host}:{job.port}", options=_CHANNEL_OPTIONS)
    call = channel.unary_unary(_PREDICT, request_serializer=None, response_deserializer=None)

    async def send(payload: bytes) -> str:
        try:
            await call(payload, timeout=job.timeout_s, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            return f"{exc.code().name}: {exc.details()}"
        return ""

    return channel, send


async def _closed_grpc(job: Job, payloads: _Payloads, records: _Records, stop: asyncio.Event) -> None:
    channel, send = _grpc_caller(job)
    async with channel:
        while not stop.is_set():
            started = time.perf_counter()
            records.add(started, await send(payloads.take()))


async def _open_loop(job: Job, payloads: _Payloads, records: _Records, stop: asyncio.Event) -> None:
    """Send at ``job.rate`` on a fixed schedule; a request's latency counts from its scheduled time."""
    loop = asyncio.get_running_loop()
    in_flight: set[asyncio.Task[None]] = set()
    period = 1.0 / job.rate
    if job.protocol == "grpc":
        channel, send = _grpc_caller(job)

        async def one(scheduled: float) -> None:
            records.add(scheduled, await send(payloads.take()))

    else:
        channel = None
        idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        opened = 0
        free = asyncio.Condition()

        async def one(scheduled: float) -> None:
            nonlocal opened
            async with free:
                while not idle and opened >= _REST_POOL:
                    await free.wait()
                if idle:
                    connection = idle.pop()
                else:
                    opened += 1
                    connection = None
            try:
                if connection is None:
                    connection = await asyncio.open_connection(job.host, job.port)
                error = await asyncio.wait_for(_rest_call(*connection, payloads.take()), job.timeout_s)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as exc:
                records.add(scheduled, f"{type(exc).__name__}: {exc}")
                if connection is not None:
                    connection[1].close()
                async with free:
                    opened -= 1
                    free.notify()
                return
            records.add(scheduled, error)
            async with free:
                idle.append(connection)
                free.notify()

    start = time.perf_counter()
    sent = 0
    try:
        while not stop.is_set():
            scheduled = start + sent * period
            delay = scheduled - time.perf_counter()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    break
                except asyncio.TimeoutError:
                    pass
            sent += 1
            if len(in_flight) >= _MAX_IN_FLIGHT:
                records.add(scheduled, f"more than {_MAX_IN_FLIGHT} requests in flight: the server cannot keep up")
                continue
            task = loop.create_task(one(scheduled))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
    finally:
        for task in list(in_flight):
            task.cancel()
        if channel is not None:
            await channel.close()


async def _run(job: Job, data: bytes) -> None:
    records = _Records()
    stop = asyncio.Event()
    payloads = _Payloads(data, tuple(job.payload_sizes))
    if job.rate > 0:
        clients = [_open_loop(job, payloads, records, stop)]
    else:
        client = _closed_rest if job.protocol == "rest" else _closed_grpc
        clients = [client(job, payloads, records, stop) for _ in range(job.clients)]
    running = asyncio.gather(*clients, return_exceptions=True)
    loop = asyncio.get_running_loop()
    print(json.dumps({"ready": True}), flush=True)
    while True:
        command = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if command in ("stop", ""):
            stop.set()
            break
        print(json.dumps(records.take()), flush=True)
    # Clients finish their request in flight; a last poll carries what they recorded meanwhile.
    try:
        results = await asyncio.wait_for(running, job.timeout_s)
    except asyncio.TimeoutError:
        results = []
    died = next((r for r in results if isinstance(r, BaseException)), None)
    final = records.take()
    if died is not None and not final["first_error"]:
        final["first_error"] = f"client died: {died!r}"
    print(json.dumps(final), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the job in the JSON file named on the command line."""
    args = sys.argv[1:] if argv is None else argv
    job = Job(**json.loads(Path(args[0]).read_text()))
    asyncio.run(_run(job, Path(job.payload_file).read_bytes()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
