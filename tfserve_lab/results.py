"""What starting a serving session returns: results the notebook renders and tests assert."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AlreadyRunning", "LoadFailed", "PortInUse", "ServerInfo", "StartResult", "Started"]


@dataclass(frozen=True)
class ServerInfo:
    """Where a running engine answers."""

    host: str
    rest_port: int
    grpc_port: int
    grpc_socket_path: str = ""
    metrics_path: str = ""

    @property
    def rest_url(self) -> str:
        """Base URL of the REST API (loopback when bound to every interface)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.rest_port}"


@dataclass(frozen=True)
class Started:
    """The engine started and serves."""

    info: ServerInfo


@dataclass(frozen=True)
class AlreadyRunning:
    """An engine was already running; nothing was started."""

    info: ServerInfo


@dataclass(frozen=True)
class PortInUse:
    """A port could not be bound."""

    port: int
    protocol: str

    @property
    def message(self) -> str:
        """One line naming the port and the way out."""
        flag = "--rest-port" if self.protocol == "rest" else "--grpc-port"
        return f"Port {self.port} ({self.protocol.upper()}) is already in use; choose another or pass {flag} 0 to pick a free port."


@dataclass(frozen=True)
class LoadFailed:
    """The configuration could not be applied (bad path, bad config)."""

    model: str
    error: str


StartResult = Started | AlreadyRunning | PortInUse | LoadFailed
