"""read_monitoring_config: TF Serving's MonitoringConfig text proto to MonitoringSettings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfserve_lab.errors import ConfigError
from tfserve_lab.metrics.monitoring import (
    DEFAULT_PROMETHEUS_PATH,
    MonitoringSettings,
    parse_monitoring_config,
    read_monitoring_config,
)


def test_the_shared_example_parses(testdata: Path) -> None:
    settings = read_monitoring_config(testdata / "monitoring_config.txt")
    assert settings == MonitoringSettings(enable=True, path="/monitoring/prometheus/metrics")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('prometheus_config { enable: true path: "/metrics" }', MonitoringSettings(True, "/metrics")),
        ('prometheus_config { enable: true path: "" }', MonitoringSettings(True, DEFAULT_PROMETHEUS_PATH)),
        ("prometheus_config { enable: true }", MonitoringSettings(True, DEFAULT_PROMETHEUS_PATH)),
        ("prometheus_config { enable: false }", MonitoringSettings(False, DEFAULT_PROMETHEUS_PATH)),
        ("", MonitoringSettings(False, DEFAULT_PROMETHEUS_PATH)),
        ("# only a comment\n", MonitoringSettings()),
    ],
)
def test_fields_and_defaults(text: str, expected: MonitoringSettings) -> None:
    assert parse_monitoring_config(text) == expected


def test_a_file_that_does_not_parse_names_itself_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "monitoring.txt"
    path.write_text("prometheus_config {\n  enabled: true\n}\n")
    with pytest.raises(ConfigError) as info:
        read_monitoring_config(path)
    message = info.value.message
    assert message.startswith("Error parsing text-format tensorflow.serving.MonitoringConfig in ")
    assert str(path) in message
    assert "enabled" in message
    assert "\n" not in message


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(ConfigError, match=r"nope\.txt"):
        read_monitoring_config(str(missing))


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        MonitoringSettings().enable = True  # type: ignore[misc]
