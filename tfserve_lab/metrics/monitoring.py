"""TF Serving's --monitoring_config_file: whether and where the Prometheus page is served."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format

from tfserve_lab.errors import ConfigError
from tfserve_lab.protos import monitoring_config_pb2

__all__ = ["DEFAULT_PROMETHEUS_PATH", "MonitoringSettings", "parse_monitoring_config", "read_monitoring_config"]

DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"
"""TF Serving's PrometheusExporter::kPrometheusPath."""


@dataclass(frozen=True)
class MonitoringSettings:
    """The parts of MonitoringConfig TF Serving acts on."""

    enable: bool = False
    path: str = DEFAULT_PROMETHEUS_PATH


def parse_monitoring_config(text: str, *, source: str = "<string>") -> MonitoringSettings:
    """Parse a ``tensorflow.serving.MonitoringConfig`` text proto.

    Args:
        text: The text proto, e.g. ``prometheus_config { enable: true }``.
        source: Names the text in error messages (a file path).

    Returns:
        The settings; an absent or empty ``path`` means the default path, as in TF Serving.

    Raises:
        ConfigError: The text is not a MonitoringConfig.
    """
    config = monitoring_config_pb2.MonitoringConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        detail = " ".join(str(exc).split())  # one line, whatever the parser wrote
        raise ConfigError(
            f"Error parsing text-format tensorflow.serving.MonitoringConfig in {source}: {detail}"
        ) from exc
    prometheus = config.prometheus_config
    return MonitoringSettings(enable=prometheus.enable, path=prometheus.path or DEFAULT_PROMETHEUS_PATH)


def read_monitoring_config(path: str | os.PathLike[str]) -> MonitoringSettings:
    """Read the file given to ``--monitoring_config_file``.

    Args:
        path: A ``tensorflow.serving.MonitoringConfig`` text proto file.

    Returns:
        The settings it holds.

    Raises:
        ConfigError: The file cannot be read or does not parse; the message names the file.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"Cannot read monitoring config file {os.fspath(path)}: {reason}") from exc
    return parse_monitoring_config(text, source=os.fspath(path))
