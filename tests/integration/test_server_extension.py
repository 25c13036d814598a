"""The Jupyter server extension through a real jupyter_server: engine listing, proxy allow/deny, auth.

A small tornado app started here stands in for an engine's REST port (it serves the JSON shapes of
``/tfserve-lab/summary``, ``/stats`` and ``unload``); what is tested is the listing and the proxy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import tornado.web
from tornado.httpclient import HTTPClientError
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from tfserve_lab.protocol.discovery import EngineRecord, write_info_file
from tfserve_lab.server_extension.handlers import EnginesHandler, ProxyHandler, proxy_path

ENGINE_ID = "eng0"
SUMMARY = {
    "engine": {"rest_port": 0, "grpc_port": 0, "host": "127.0.0.1"},
    "models": [
        {
            "name": "half_plus_two",
            "base_path": "/models/half_plus_two",
            "policy": "latest:1",
            "labels": {},
            "split": {},
            "versions": [{"version": 123, "state": "AVAILABLE", "error": ""}],
        }
    ],
}


@dataclass
class FakeEngine:
    """What the stand-in engine received, for assertions."""

    port: int = 0
    seen: list[tuple[str, str, bytes]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)


class _Recorder(tornado.web.RequestHandler):
    def initialize(self, engine: FakeEngine) -> None:
        self.engine = engine

    def prepare(self) -> None:
        self.engine.seen.append((self.request.method or "", self.request.uri or "", self.request.body))
        self.engine.authorizations.append(self.request.headers.get("Authorization", ""))

    def get(self, *_: str) -> None:
        path = self.request.path
        if path == "/tfserve-lab/summary":
            self.write(SUMMARY)
        elif path == "/tfserve-lab/stats":
            self.write({"window_s": 60, "models": {}})
        elif path == "/monitoring/prometheus/metrics":
            self.set_header("Content-Type", "text/plain; version=0.0.4")
            self.write("tfserve_lab_up 1\n")
        elif path == "/v1/models/missing":
            self.set_status(404)
            self.write({"error": "Servable not found for request: Latest(missing)"})
        else:
            self.write({"path": path, "query": self.request.query})

    def post(self, *_: str) -> None:
        if self.request.path.endswith("/unload"):
            self.write({"unloaded": True})
        else:
            self.write({"echo": json.loads(self.request.body or b"null")})


@pytest.fixture
def fake_engine(jp_asyncio_loop) -> Iterator[FakeEngine]:
    engine = FakeEngine()
    app = tornado.web.Application([(r"/(.*)", _Recorder, {"engine": engine})])
    sockets = bind_sockets(0, "127.0.0.1")
    engine.port = sockets[0].getsockname()[1]

    async def start() -> HTTPServer:
        server = HTTPServer(app)
        server.add_sockets(sockets)
        return server

    server = jp_asyncio_loop.run_until_complete(start())
    yield engine
    server.stop()


@pytest.fixture
def jp_server_config() -> dict:
    return {
        "ServerApp": {
            "jpserver_extensions": {"tfserve_lab.server_extension": True},
            "allow_unauthenticated_access": False,
        },
        "TfServeLabConfig": {"proxy_timeout": 5.0},
    }


@pytest.fixture
def registered(fake_engine: FakeEngine, jp_serverapp, jp_runtime_dir: Path) -> EngineRecord:
    """The fake engine's info file, in the runtime directory the server (and its kernels) use."""
    record = EngineRecord(
        engine_id=ENGINE_ID,
        pid=os.getpid(),
        kernel_id="k-1",
        host="0.0.0.0",
        rest_port=fake_engine.port,
        grpc_port=1,
        metrics_path="/monitoring/prometheus/metrics",
        started_at=1.0,
        version="0.1.0",
    )
    write_info_file(record, runtime_dir=Path(jp_runtime_dir))
    return record


def body(response) -> object:
    return json.loads(response.body)


async def test_engines_lists_registered_engines_with_liveness(jp_fetch, registered: EngineRecord) -> None:
    # When
    response = await jp_fetch("tfserve-lab", "engines")
    # Then
    engines = body(response)["engines"]
    assert engines == [
        {
            "engine_id": ENGINE_ID,
            "pid": os.getpid(),
            "kernel_id": "k-1",
            "host": "0.0.0.0",
            "rest_port": registered.rest_port,
            "grpc_port": 1,
            "metrics_path": "/monitoring/prometheus/metrics",
            "started_at": 1.0,
            "version": "0.1.0",
            "alive": True,
        }
    ]


async def test_engines_marks_a_closed_port_not_alive(jp_fetch, jp_serverapp, jp_runtime_dir: Path) -> None:
    sock = bind_sockets(0, "127.0.0.1")[0]
    closed_port = sock.getsockname()[1]
    sock.close()
    write_info_file(
        EngineRecord("gone", os.getpid(), None, "127.0.0.1", closed_port, 0, "/metrics", 2.0, "0.1.0"),
        runtime_dir=Path(jp_runtime_dir),
    )
    engines = body(await jp_fetch("tfserve-lab", "engines"))["engines"]
    assert [(e["engine_id"], e["alive"]) for e in engines] == [("gone", False)]


async def test_engines_is_empty_without_engines(jp_fetch) -> None:
    assert body(await jp_fetch("tfserve-lab", "engines")) == {"engines": []}


@pytest.mark.parametrize(
    "path",
    ["tfserve-lab/summary", "tfserve-lab/stats", "v1/models/half_plus_two", "v1/models/half_plus_two/metadata"],
)
async def test_proxy_forwards_engine_api_paths(jp_fetch, registered, fake_engine: FakeEngine, path: str) -> None:
    response = await jp_fetch("tfserve-lab", "engines", ENGINE_ID, "proxy", path)
    assert response.code == 200
    assert fake_engine.seen[-1][:2] == ("GET", "/" + path)
    if path == "tfserve-lab/summary":
        assert body(response) == SUMMARY


async def test_proxy_forwards_predict_posts_and_query(jp_fetch, registered, fake_engine: FakeEngine) -> None:
    payload = json.dumps({"instances": [1.0, 2.0]})
    response = await jp_fetch(
        "tfserve-lab",
        "engines",
        ENGINE_ID,
        "proxy",
        "v1/models/half_plus_two:predict",
        method="POST",
        body=payload,
        params={"x": "1"},
        headers={"Content-Type": "application/json"},
    )
    assert body(response) == {"echo": {"instances": [1.0, 2.0]}}
    assert fake_engine.seen[-1] == ("POST", "/v1/models/half_plus_two:predict?x=1", payload.encode())


async def test_proxy_forwards_unload(jp_fetch, registered) -> None:
    response = await jp_fetch(
        "tfserve-lab", "engines", ENGINE_ID, "proxy", "tfserve-lab/models/m/versions/1/unload", method="POST", body=""
    )
    assert body(response) == {"unloaded": True}


async def test_proxy_forwards_metrics_as_text(jp_fetch, registered) -> None:
    response = await jp_fetch("tfserve-lab", "engines", ENGINE_ID, "proxy", "monitoring/prometheus/metrics")
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.body == b"tfserve_lab_up 1\n"


async def test_proxy_passes_engine_errors_through(jp_fetch, registered) -> None:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("tfserve-lab", "engines", ENGINE_ID, "proxy", "v1/models/missing")
    assert info.value.code == 404
    assert body(info.value.response) == {"error": "Servable not found for request: Latest(missing)"}


@pytest.mark.parametrize("path", ["api/kernels", "etc/passwd", "metrics", "v1", "v1/../api/kernels", "tfserve-lab/./x"])
async def test_proxy_refuses_other_paths(jp_fetch, registered, fake_engine: FakeEngine, path: str) -> None:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("tfserve-lab", "engines", ENGINE_ID, "proxy", path)
    assert info.value.code == 403
    assert fake_engine.seen == [], "a refused path never reaches the engine"


async def test_proxy_unknown_engine_is_404(jp_fetch, registered, fake_engine: FakeEngine) -> None:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("tfserve-lab", "engines", "nope", "proxy", "v1/models/half_plus_two")
    assert info.value.code == 404
    assert "nope" in body(info.value.response)["message"]
    assert fake_engine.seen == []


async def test_proxy_reports_a_dead_engine_port_as_502(jp_fetch, jp_serverapp, jp_runtime_dir: Path) -> None:
    sock = bind_sockets(0, "127.0.0.1")[0]
    closed_port = sock.getsockname()[1]
    sock.close()
    write_info_file(
        EngineRecord("gone", os.getpid(), None, "127.0.0.1", closed_port, 0, "/metrics", 2.0, "0.1.0"),
        runtime_dir=Path(jp_runtime_dir),
    )
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("tfserve-lab", "engines", "gone", "proxy", "tfserve-lab/summary")
    assert info.value.code == 502


@pytest.mark.parametrize(
    ("method", "parts"),
    [
        ("GET", ("tfserve-lab", "engines")),
        ("GET", ("tfserve-lab", "engines", ENGINE_ID, "proxy", "tfserve-lab/summary")),
        ("POST", ("tfserve-lab", "engines", ENGINE_ID, "proxy", "v1/models/half_plus_two:predict")),
    ],
)
async def test_unauthenticated_requests_are_refused(
    jp_fetch, registered, fake_engine: FakeEngine, method: str, parts: tuple[str, ...]
) -> None:
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch(*parts, method=method, body="{}" if method == "POST" else None, headers={"Authorization": ""})
    assert info.value.code == 403
    assert fake_engine.seen == []


def test_every_verb_is_authenticated(jp_serverapp) -> None:
    for handler in (EnginesHandler, ProxyHandler):
        assert jp_serverapp.web_app._check_handler_auth("tfserve-lab", handler) == []


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("v1/models/a", "v1/models/a"),
        ("v1/models/a:predict", "v1/models/a:predict"),
        ("v1/models/a b", "v1/models/a%20b"),
        ("monitoring/prometheus/metrics", "monitoring/prometheus/metrics"),
        ("monitoring/prometheus/metrics/x", None),
        ("v1//models", None),
        ("v1/models/..", None),
        ("/v1/models/a", None),
    ],
)
def test_proxy_path_policy(path: str, allowed: str | None) -> None:
    record = EngineRecord("e", 1, None, "127.0.0.1", 1, 1, "/monitoring/prometheus/metrics", 0.0, "0")
    assert proxy_path(record, path) == allowed


async def test_proxy_authenticates_to_engines_with_a_token(
    jp_fetch, jp_serverapp, jp_runtime_dir: Path, fake_engine: FakeEngine
) -> None:
    record = EngineRecord(
        engine_id="tokened",
        pid=os.getpid(),
        kernel_id=None,
        host="127.0.0.1",
        rest_port=fake_engine.port,
        grpc_port=1,
        metrics_path="",
        started_at=1.0,
        version="0.1.0",
        auth_token="s3cret",
    )
    write_info_file(record, runtime_dir=Path(jp_runtime_dir))
    listed = body(await jp_fetch("tfserve-lab", "engines"))["engines"]
    assert [e["engine_id"] for e in listed] == ["tokened"]
    assert "auth_token" not in listed[0]
    assert "s3cret" not in json.dumps(listed)
    await jp_fetch("tfserve-lab", "engines", "tokened", "proxy", "tfserve-lab/summary")
    assert fake_engine.authorizations[-1] == "Bearer s3cret"
