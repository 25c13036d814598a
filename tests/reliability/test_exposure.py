"""Exposure: loopback by default, --auth_token on REST and gRPC, TLS from --ssl_config_file, CORS only on request.

Engines here run in this process with Python servables (no TensorFlow load), so each starts in milliseconds.
The Jupyter proxy's allow-list is tested in tests/integration/test_server_extension.py
(test_proxy_refuses_other_paths, test_proxy_unknown_engine_is_404); a kernel restart leaving no port bound in
tests/integration/test_kernel.py (test_kernel_shutdown_frees_ports).
"""

from __future__ import annotations

import inspect
import ssl
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

from tests.reliability.conftest import TlsMaterial
from tests.reliability.helpers import float_request
from tfserve_lab.config import ServerOptions
from tfserve_lab.core.servables.callable import CallableServable, tensor_info
from tfserve_lab.core.types import SignatureInfo
from tfserve_lab.flags import parse_flags
from tfserve_lab.protocol import auth
from tfserve_lab.results import LoadFailed, Started
from tfserve_lab.server import ServingSession

TOKEN = "s3cret-token-\u00e9"[:13]  # ASCII on the wire
SIG = SignatureInfo(
    "tensorflow/serving/predict", {"x": tensor_info("x", shape=(-1,))}, {"y": tensor_info("y", shape=(-1,))}
)


def _loader(path: str) -> CallableServable:
    return CallableServable({"serving_default": (SIG, lambda i: {"y": np.asarray(i["x"], np.float32) * 2})})


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    sessions: list[ServingSession] = []

    def run(**flags: object) -> ServingSession:
        base = tmp_path / "m"
        (base / "1").mkdir(parents=True, exist_ok=True)
        options = ServerOptions(
            port=0,
            grpc_port_enabled=True,
            rest_api_port=0,
            rest_api_enabled=True,
            host="127.0.0.1",
            model_name="m",
            model_base_path=str(base),
            file_system_poll_wait_seconds=0,
            monitoring_enabled=True,
            **flags,  # type: ignore[arg-type]
        )
        session = ServingSession(options, loader=_loader)
        result = session.start()
        assert isinstance(result, Started), result
        sessions.append(session)
        return session

    yield run
    for session in sessions:
        session.stop()


def _url(session: ServingSession, path: str, scheme: str = "http") -> str:
    assert session.info is not None
    return f"{scheme}://127.0.0.1:{session.info.rest_port}{path}"


# -- --auth_token ------------------------------------------------------------------


def test_rest_needs_the_bearer_token_on_every_route(start) -> None:
    session = start(auth_token=TOKEN)
    predict = _url(session, "/v1/models/m:predict")
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
    ):
        response = requests.post(predict, json={"instances": [1.0]}, headers=headers, timeout=10)
        assert response.status_code == 401, headers
        assert response.json() == {"error": auth.UNAUTHENTICATED_MESSAGE}
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    for path in (
        "/v1/models/m",
        "/v1/models/m/metadata",
        "/monitoring/prometheus/metrics",
        "/tfserve-lab/summary",
        "/x",
    ):
        assert requests.get(_url(session, path), timeout=10).status_code == 401, path
    good = {"Authorization": f"bearer {TOKEN}"}  # the scheme is case-insensitive
    response = requests.post(predict, json={"instances": [1.0]}, headers=good, timeout=10)
    assert response.json() == {"predictions": [2.0]}
    assert requests.get(_url(session, "/v1/models/m"), headers=good, timeout=10).status_code == 200


def test_grpc_needs_the_bearer_token_but_health_checks_stay_open(start) -> None:
    session = start(auth_token=TOKEN)
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{session.info.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        models = model_service_pb2_grpc.ModelServiceStub(channel)
        status = get_model_status_pb2.GetModelStatusRequest()
        status.model_spec.name = "m"
        for metadata in ((), (("authorization", "Bearer nope"),), (("authorization", TOKEN),)):
            for call, request in ((stub.Predict, float_request("m", [1.0])), (models.GetModelStatus, status)):
                with pytest.raises(grpc.RpcError) as caught:
                    call(request, metadata=metadata, timeout=10)
                assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
                assert caught.value.details() == auth.UNAUTHENTICATED_MESSAGE
        good = (("authorization", f"Bearer {TOKEN}"),)
        response = stub.Predict(float_request("m", [3.0]), metadata=good, timeout=10)
        assert list(response.outputs["y"].float_val) == [6.0] or response.outputs["y"].tensor_content
        assert models.GetModelStatus(status, metadata=good, timeout=10).model_version_status[0].version == 1
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert auth.bearer_token_matches(TOKEN, f"Bearer {TOKEN}")
    assert not auth.bearer_token_matches(TOKEN, f"Bearer {TOKEN[:-1]}")
    assert len(calls) == 2
    assert not auth.bearer_token_matches(TOKEN, None)
    assert auth.bearer_token_matches("", None)  # no token configured: open


def test_auth_token_is_a_flag() -> None:
    assert parse_flags([f"--auth_token={TOKEN}"]).auth_token == TOKEN
    assert ServerOptions().auth_token == ""


def test_auth_token_file_keeps_the_token_off_the_command_line(start, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")
    session = start(auth_token_file=str(token_file))
    url = f"{session.info.rest_url}/v1/models/m"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).status_code == 200
    empty = tmp_path / "empty"
    empty.write_text("\n")
    failed = ServingSession(
        ServerOptions(port=0, auth_token_file=str(empty), model_name="m", model_base_path=str(tmp_path))
    )
    result = failed.start()
    assert isinstance(result, LoadFailed)
    assert "is empty" in result.error


# -- TLS (--ssl_config_file) -----------------------------------------------------------


def _ssl_config(tmp_path: Path, tls: TlsMaterial, *, client_verify: bool) -> str:
    def quoted(pem: str) -> str:
        return '"' + pem.replace("\n", "\\n") + '"'

    path = tmp_path / "ssl.config"
    path.write_text(
        f"server_key: {quoted(tls.server_key)}\nserver_cert: {quoted(tls.server_cert)}\n"
        f"custom_ca: {quoted(tls.ca_cert)}\nclient_verify: {str(client_verify).lower()}\n"
    )
    return str(path)


def _grpc_status(port: int, credentials: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    target = f"127.0.0.1:{port}"
    channel = grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
    with channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


def test_tls_with_client_verify_on_grpc_and_rest(start, tls: TlsMaterial, tmp_path: Path) -> None:
    assert parse_flags(["--ssl_config_file=/x"]).ssl_config_file == "/x"  # no longer refused
    session = start(ssl_config_file=_ssl_config(tmp_path, tls, client_verify=True))
    port = session.info.grpc_port
    ca = tls.ca_cert.encode()
    mutual = grpc.ssl_channel_credentials(ca, tls.client_key.encode(), tls.client_cert.encode())
    assert _grpc_status(port, mutual) is grpc.StatusCode.OK
    assert _grpc_status(port, grpc.ssl_channel_credentials(ca)) is grpc.StatusCode.UNAVAILABLE  # no client cert
    rogue = grpc.ssl_channel_credentials(ca, tls.other_client_key.encode(), tls.other_client_cert.encode())
    assert _grpc_status(port, rogue) is grpc.StatusCode.UNAVAILABLE
    assert _grpc_status(port, None) is grpc.StatusCode.UNAVAILABLE  # plaintext

    files = tmp_path / "client"
    files.mkdir()
    for name in ("ca_cert", "client_cert", "client_key", "other_client_cert", "other_client_key"):
        (files / f"{name}.pem").write_text(getattr(tls, name))
    url = _url(session, "/v1/models/m:predict", "https")
    ok = requests.post(
        url,
        json={"instances": [1.0]},
        verify=files / "ca_cert.pem",
        cert=(str(files / "client_cert.pem"), str(files / "client_key.pem")),
        timeout=10,
    )
    assert ok.json() == {"predictions": [2.0]}
    for cert in (None, (str(files / "other_client_cert.pem"), str(files / "other_client_key.pem"))):
        with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
            requests.post(url, json={"instances": [1.0]}, verify=files / "ca_cert.pem", cert=cert, timeout=10)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(_url(session, "/v1/models/m:predict"), json={"instances": [1.0]}, timeout=10)


def test_tls_without_client_verify_serves_any_client(start, tls: TlsMaterial, tmp_path: Path) -> None:
    session = start(ssl_config_file=_ssl_config(tmp_path, tls, client_verify=False))
    assert (
        _grpc_status(session.info.grpc_port, grpc.ssl_channel_credentials(tls.ca_cert.encode())) is grpc.StatusCode.OK
    )
    context = ssl.create_default_context(cadata=tls.ca_cert)
    ca = tmp_path / "ca.pem"
    ca.write_text(tls.ca_cert)
    assert context.verify_mode is ssl.CERT_REQUIRED
    response = requests.get(_url(session, "/v1/models/m", "https"), verify=ca, timeout=10)
    assert response.status_code == 200


def test_broken_ssl_config_refuses_to_start(tmp_path: Path) -> None:
    base = tmp_path / "m"
    (base / "1").mkdir(parents=True)
    for text in ("server_key: ", 'server_key: "x" server_cert: "y"', 'server_key: "x" client_verify: true'):
        (tmp_path / "ssl.config").write_text(text)
        options = ServerOptions(
            port=0,
            grpc_port_enabled=True,
            rest_api_port=0,
            rest_api_enabled=True,
            host="127.0.0.1",
            model_base_path=str(base),
            ssl_config_file=str(tmp_path / "ssl.config"),
        )
        result = ServingSession(options, loader=_loader).start()
        assert isinstance(result, LoadFailed), text


# -- CORS and binding ----------------------------------------------------------------


def test_cors_headers_only_with_the_flag(start) -> None:
    plain = start()
    response = requests.post(_url(plain, "/v1/models/m:predict"), json={"instances": [1.0]}, timeout=10)
    assert "Access-Control-Allow-Origin" not in response.headers
    assert requests.options(_url(plain, "/v1/models/m:predict"), timeout=10).status_code == 400

    cors = start(rest_api_enable_cors_support=True, auth_token=TOKEN)
    preflight = requests.options(_url(cors, "/v1/models/m:predict"), timeout=10)  # no credentials, by design
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    refused = requests.post(_url(cors, "/v1/models/m:predict"), json={"instances": [1.0]}, timeout=10)
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == "*"  # so a browser page can read the error
    answered = requests.post(
        _url(cors, "/v1/models/m:predict"), json={"instances": [1.0]}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert answered.json() == {"predictions": [2.0]}
    assert answered.headers["Access-Control-Allow-Origin"] == "*"


def _listening_addresses(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_notebook_engine_binds_loopback_by_default() -> None:
    from tfserve_lab import api

    assert inspect.signature(api.start).parameters["host"].default == "127.0.0.1"
    result = api.start(rest_port=0, grpc_port=0)
    try:
        assert isinstance(result, Started), result
        for port in (result.info.rest_port, result.info.grpc_port):
            # 127.0.0.1 only (gRPC may listen on its IPv4-mapped IPv6 form, ::ffff:127.0.0.1).
            assert _listening_addresses(port) <= {"0100007F", "0000000000000000FFFF00000100007F"}, port
    finally:
        api.stop()
