"""Fixtures for the reliability suite: a shared hardened server, a faulty model, TLS material."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.server_process import ServerProcess

# Small limits on the shared server so the size protections are cheap to hit.
BODY_LIMIT = 1024 * 1024
GRPC_LIMIT = 1024 * 1024


def export_faulty(path: Path, offset: float) -> None:
    """A SavedModel whose answers say which version served them (y = 2x + offset), that fails at run time
    for negative inputs (``tf.debugging.assert_non_negative``), with a ``slow`` signature that sleeps
    ``delay_ms`` inside the graph (so requests can be held in flight) and a ``slow_marked`` one that first
    writes the file named by its ``started`` input (so a test knows when the request is inside the model)."""
    import tensorflow as tf
    from tensorflow.python.data.experimental.ops.testing import _SleepDataset

    class Faulty(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.offset = tf.Variable(offset, dtype=tf.float32, trainable=False)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def predict(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            check = tf.debugging.assert_non_negative(x, message="x must be non-negative")
            with tf.control_dependencies([check]):
                return {"y": 2.0 * x + self.offset}

        @tf.function(
            input_signature=[tf.TensorSpec([None], tf.float32, name="x"), tf.TensorSpec([], tf.int64, name="delay_ms")]
        )
        def slow(self, x: tf.Tensor, delay_ms: tf.Tensor) -> dict[str, tf.Tensor]:
            slept = _SleepDataset(tf.data.Dataset.range(1), delay_ms * 1000).reduce(tf.constant(0, tf.int64), tf.add)
            with tf.control_dependencies([slept]):
                return {"y": 2.0 * x + self.offset}

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.float32, name="x"),
                tf.TensorSpec([], tf.int64, name="delay_ms"),
                tf.TensorSpec([], tf.string, name="started"),
            ]
        )
        def slow_marked(self, x: tf.Tensor, delay_ms: tf.Tensor, started: tf.Tensor) -> dict[str, tf.Tensor]:
            with tf.control_dependencies([tf.io.write_file(started, "started")]):
                return self.slow(x, delay_ms)

    module = Faulty()
    signatures = {"serving_default": module.predict, "slow": module.slow, "slow_marked": module.slow_marked}
    tf.saved_model.save(module, str(path), signatures=signatures)


@pytest.fixture(scope="session")
def faulty_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Versions 1 (offset 1) and 2 (offset 2) of the faulty model, to copy from."""
    root = tmp_path_factory.mktemp("faulty_template")
    for version in (1, 2):
        export_faulty(root / str(version), float(version))
    return root


def copy_version(template: Path, version: int, base: Path, as_version: int | None = None) -> Path:
    """Copy one version folder into ``base`` atomically (copy aside, then rename into place)."""
    target = base / str(as_version or version)
    staging = base / f".staging-{target.name}"
    shutil.copytree(template / str(version), staging)
    staging.rename(target)
    return target


@pytest.fixture(scope="package")
def shared_server(
    testdata: Path, faulty_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server with half_plus_two and the faulty model, small body and message limits."""
    tmp = tmp_path_factory.mktemp("shared")
    faulty = tmp / "faulty"
    faulty.mkdir()
    copy_version(faulty_template, 1, faulty)
    config = tmp / "models.config"
    config.write_text(
        "model_config_list {\n"
        f'  config {{ name: "half_plus_two" base_path: "{testdata}/saved_model_half_plus_two_cpu" '
        'model_platform: "tensorflow" }\n'
        f'  config {{ name: "faulty" base_path: "{faulty}" model_platform: "tensorflow" }}\n'
        "}\n"
    )
    proc = ServerProcess(
        [
            f"--model_config_file={config}",
            f"--rest_api_max_body_bytes={BODY_LIMIT}",
            f"--grpc_max_receive_message_bytes={GRPC_LIMIT}",
            "--host=127.0.0.1",
        ],
        log_path=tmp / "server.log",
    )
    try:
        proc.wait_ready("faulty")
        proc.wait_ready("half_plus_two")
        yield proc
    finally:
        proc.stop()


@dataclass(frozen=True)
class TlsMaterial:
    """PEM texts: a CA, a server certificate for 127.0.0.1/localhost, and a client certificate."""

    ca_cert: str
    server_key: str
    server_cert: str
    client_key: str
    client_cert: str
    other_client_key: str
    other_client_cert: str


def _key() -> object:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: object) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _cert(
    subject: str, key: object, issuer: str, issuer_key: object, *, ca: bool = False, server: bool = False
) -> object:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]


def _pem_cert(cert: object) -> str:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM).decode()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def tls() -> TlsMaterial:
    """Fresh certificates for one test session (the ``cryptography`` package makes them)."""
    ca_key, server_key, client_key = _key(), _key(), _key()
    ca = _cert("tfserve-lab test CA", ca_key, "tfserve-lab test CA", ca_key, ca=True)
    server = _cert("localhost", server_key, "tfserve-lab test CA", ca_key, server=True)
    client = _cert("client", client_key, "tfserve-lab test CA", ca_key)
    rogue_ca_key, rogue_key = _key(), _key()
    rogue = _cert("rogue client", rogue_key, "rogue CA", rogue_ca_key)
    return TlsMaterial(
        ca_cert=_pem_cert(ca),
        server_key=_pem_key(server_key),
        server_cert=_pem_cert(server),
        client_key=_pem_key(client_key),
        client_cert=_pem_cert(client),
        other_client_key=_pem_key(rogue_key),
        other_client_cert=_pem_cert(rogue),
    )
