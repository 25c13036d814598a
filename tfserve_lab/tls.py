"""TLS from TF Serving's ``--ssl_config_file``: the ``SSLConfig`` text proto -> gRPC and REST credentials.

``SSLConfig`` carries PEM contents (not paths): ``server_key``, ``server_cert``,
``custom_ca`` and ``client_verify``. TF Serving applies it to gRPC; tfserve-lab
also serves REST over TLS with the same key and certificate (and, with
``client_verify``, asks REST clients for a certificate signed by ``custom_ca``).
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass

from tfserve_lab.errors import ConfigError

__all__ = ["TlsConfig", "parse_ssl_config", "read_ssl_config", "rest_ssl_context"]


@dataclass(frozen=True)
class TlsConfig:
    """One ``SSLConfig``: PEM texts and whether clients must present a certificate."""

    server_key: str
    server_cert: str
    custom_ca: str = ""
    client_verify: bool = False

    def __repr__(self) -> str:  # never print the private key
        return f"TlsConfig(client_verify={self.client_verify}, custom_ca={bool(self.custom_ca)})"


def parse_ssl_config(text: str, *, source: str = "ssl config") -> TlsConfig:
    """Parse an ``SSLConfig`` text proto.

    Raises:
        ConfigError: the text does not parse, or lacks the key or the certificate.
    """
    from google.protobuf import text_format

    from tfserve_lab.protos import ssl_config_pb2

    message = ssl_config_pb2.SSLConfig()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise ConfigError(f"Invalid protobuf file: '{source}': {exc}") from None
    if not message.server_key or not message.server_cert:
        raise ConfigError(f"{source}: SSLConfig needs both server_key and server_cert (PEM contents).")
    if message.client_verify and not message.custom_ca:
        raise ConfigError(f"{source}: client_verify needs custom_ca, the PEM of the CA that signs client certificates.")
    return TlsConfig(message.server_key, message.server_cert, message.custom_ca, message.client_verify)


def read_ssl_config(path: str) -> TlsConfig:
    """Read and parse a ``--ssl_config_file``."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"Cannot read ssl config file {path}: {exc.strerror}.") from None
    return parse_ssl_config(text, source=path)


def _write_private(folder: str, name: str, text: str) -> str:
    path = os.path.join(folder, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def rest_ssl_context(config: TlsConfig) -> ssl.SSLContext:
    """A server ``SSLContext`` for the REST port with the config's key and certificate.

    ``load_cert_chain`` reads files only: the PEMs go to a private (0700) temporary
    folder as 0600 files and are deleted as soon as they are loaded.

    Raises:
        ConfigError: the key, certificate or CA does not load.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        with tempfile.TemporaryDirectory(prefix="tfserve-tls-") as folder:
            cert = _write_private(folder, "cert.pem", config.server_cert)
            key = _write_private(folder, "key.pem", config.server_key)
            context.load_cert_chain(cert, key)
        if config.custom_ca:
            context.load_verify_locations(cadata=config.custom_ca)
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"Cannot use the TLS key, certificate or CA of the ssl config: {exc}") from None
    if config.client_verify:
        context.verify_mode = ssl.CERT_REQUIRED
    return context
