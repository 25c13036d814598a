"""Flags, version policies and TF Serving's config text protos -> config objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfserve_lab.config import (
    ModelConfig,
    ServerOptions,
    VersionPolicy,
    model_configs_to_text,
    parse_model_server_config,
)
from tfserve_lab.core.repository import aspired_versions, list_versions
from tfserve_lab.errors import ConfigError
from tfserve_lab.flags import parse_flags, usage


def test_flag_syntaxes_and_defaults() -> None:
    options = parse_flags(
        [
            "--port",
            "9000",
            "--rest_api_port=8501",
            "--enable_model_warmup=false",
            "--prefer_tflite_model",
            "--enable_per_model_batching_parameters",
        ]
    )
    assert (options.port, options.rest_api_port) == (9000, 8501)
    assert options.enable_per_model_batching_parameters is True
    assert options.enable_model_warmup is False
    assert options.prefer_tflite_model is True
    defaults = parse_flags([])
    assert defaults == ServerOptions()
    assert (defaults.port, defaults.rest_api_port, defaults.rest_api_timeout_in_ms) == (8500, 0, 30000)
    assert defaults.file_system_poll_wait_seconds == 1
    assert defaults.max_num_load_retries == 5
    assert defaults.load_retry_interval_micros == 60_000_000
    assert defaults.tags == ("serve",)
    assert not defaults.rest_enabled


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--nope=1"], "Unknown command line flag 'nope'"),
        (["--port=x"], "Illegal value 'x' specified for flag 'port'"),
        (["--prefer_tflite_model=maybe"], "Illegal value 'maybe' specified for bool flag 'prefer_tflite_model'"),
        (["--port"], "Missing value for flag '--port'"),
        (["--platform_config_file=a"], "Flag --platform_config_file is not supported"),
        (["positional"], "Unexpected argument 'positional'"),
    ],
)
def test_flag_errors(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_flags(argv)


def test_usage_lists_flags() -> None:
    text = usage()
    assert "--model_config_file" in text
    assert "--file_system_poll_wait_seconds=1" in text


def test_shared_good_config_parses(testdata: Path) -> None:
    text = (testdata / "good_model_config.txt").read_text()
    models = parse_model_server_config(
        text.replace("${TEST_HALF_PLUS_TWO_DIR}", "/a").replace("${TEST_HALF_PLUS_THREE_DIR}", "/b")
    )
    assert [(m.name, m.base_path, m.platform) for m in models] == [
        ("half_plus_two", "/a", "tensorflow"),
        ("half_plus_three", "/b", "tensorflow"),
    ]
    assert models[0].version_policy == VersionPolicy("latest", 1)


def test_bad_config_uses_tf_serving_words(testdata: Path) -> None:
    with pytest.raises(ConfigError, match=r"Error parsing text-format tensorflow\.serving\.ModelServerConfig"):
        parse_model_server_config((testdata / "bad_model_config.txt").read_text())
    with pytest.raises(ConfigError, match="Illegal to list model a multiple times in config list"):
        parse_model_server_config(
            'model_config_list { config { name: "a" base_path: "/x" } config { name: "a" base_path: "/y" } }'
        )


def test_policies_labels_round_trip() -> None:
    models = (
        ModelConfig("a", "/m/a", version_policy=VersionPolicy("all"), version_labels={"stable": 1, "canary": 2}),
        ModelConfig("b", "/m/b", version_policy=VersionPolicy("specific", versions=(3, 4))),
        ModelConfig("c", "/m/c", version_policy=VersionPolicy("latest", num_versions=2)),
        ModelConfig("d", "/m/d"),
    )
    assert parse_model_server_config(model_configs_to_text(models)) == models


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("latest:2", VersionPolicy("latest", 2)),
        ("all", VersionPolicy("all")),
        ("specific:2,1", VersionPolicy("specific", versions=(1, 2))),
        ("latest", VersionPolicy()),
    ],
)
def test_short_policy_forms(text: str, policy: VersionPolicy) -> None:
    assert VersionPolicy.parse(text) == policy
    assert VersionPolicy.parse(policy.describe()) == policy


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("latest:0", "Version policy 'latest:0': latest needs at least 1 version."),
        ("latest:x", "Version policy 'latest:x': latest takes a count, as in latest:2."),
        ("specific:", "Unknown version policy 'specific:': use latest:N, all or specific:V1,V2."),
        ("some", "Unknown version policy 'some': use latest:N, all or specific:V1,V2."),
        ("specific:a", "Version policy 'specific:a': specific takes numbers, as in specific:1,2."),
    ],
)
def test_bad_short_policies(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        VersionPolicy.parse(text)
    assert info.value.message == message


def test_version_folders_and_policies(tmp_path: Path) -> None:
    for name in ("1", "00000123", "7", "tmp", "8.partial"):
        (tmp_path / name).mkdir()
    (tmp_path / "99").write_text("a file, not a version")
    found = list_versions(str(tmp_path))
    assert sorted(found) == [1, 7, 123]
    assert found[123].endswith("00000123")
    assert list_versions(str(tmp_path / "missing")) == {}
    assert aspired_versions(found, VersionPolicy()) == {123}
    assert aspired_versions(found, VersionPolicy("latest", 2)) == {7, 123}
    assert aspired_versions(found, VersionPolicy("all")) == {1, 7, 123}
    assert aspired_versions(found, VersionPolicy("specific", versions=(1, 5))) == {1}


def test_grpc_channel_arguments() -> None:
    from tfserve_lab.protocol.grpc.server import parse_channel_arguments

    assert parse_channel_arguments("grpc.max_connection_age_ms=1000, grpc.lb_policy_name=round_robin") == (
        ("grpc.max_connection_age_ms", 1000),
        ("grpc.lb_policy_name", "round_robin"),
    )
    assert parse_channel_arguments("") == ()
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_channel_arguments("novalue")
