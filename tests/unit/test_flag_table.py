"""The flag table: TF Serving's main.cc flags, the README's table, ``--help`` and the parser agree."""

from __future__ import annotations

import dataclasses
import re

import pytest

from tests.conftest import ROOT
from tfserve_lab.config import ServerOptions
from tfserve_lab.errors import ConfigError
from tfserve_lab.flags import FLAGS, OWN_FLAGS, TF_SERVING_FLAGS, FlagSpec, parse_flags, usage

# tensorflow_serving/model_servers/main.cc, flag_list, in its order (tensorflow/serving@9d2bac00).
MAIN_CC_FLAGS = [
    "port", "grpc_socket_path", "rest_api_port", "rest_api_num_threads", "rest_api_timeout_in_ms",
    "rest_api_enable_cors_support", "enable_batching", "allow_version_labels_for_unavailable_models",
    "batching_parameters_file", "enable_per_model_batching_parameters", "model_config_file",
    "model_config_file_poll_wait_seconds", "model_name", "model_base_path", "num_load_threads",
    "num_unload_threads", "max_num_load_retries", "load_retry_interval_micros", "file_system_poll_wait_seconds",
    "flush_filesystem_caches", "tensorflow_session_parallelism", "tensorflow_session_config_file",
    "tensorflow_intra_op_parallelism", "tensorflow_inter_op_parallelism", "use_alts_credentials",
    "ssl_config_file", "platform_config_file", "per_process_gpu_memory_fraction", "saved_model_tags",
    "grpc_channel_arguments", "grpc_max_threads", "enable_model_warmup", "num_request_iterations_for_warmup",
    "version", "monitoring_config_file", "remove_unused_fields_from_bundle_metagraph", "prefer_tflite_model",
    "num_tflite_pools", "num_tflite_interpreters_per_pool", "enable_signature_method_name_check",
    "xla_cpu_compilation_enabled", "xla_gpu_compilation_enabled", "enable_profiler",
    "thread_pool_factory_config_file", "mixed_precision", "skip_initialize_tpu", "enable_grpc_healthcheck_service",
    "enable_serialization_as_tensor_content",
]  # fmt: skip
# server.h Options initialisers (and server.cc's constructor for model_name and saved_model_tags).
SERVER_H_DEFAULTS = {
    "port": "8500", "rest_api_port": "0", "rest_api_num_threads": "4 x CPUs", "rest_api_timeout_in_ms": "30000",
    "model_name": "default", "max_num_load_retries": "5", "load_retry_interval_micros": "60000000",
    "file_system_poll_wait_seconds": "1", "flush_filesystem_caches": "true", "saved_model_tags": "serve",
    "grpc_max_threads": "4 x CPUs", "enable_model_warmup": "true", "enable_profiler": "true",
    "remove_unused_fields_from_bundle_metagraph": "true", "num_tflite_pools": "CPUs",
    "num_tflite_interpreters_per_pool": "1", "per_process_gpu_memory_fraction": "0",
}  # fmt: skip


def readme_table() -> dict[str, tuple[str, str]]:
    """``--flag`` -> (default, status) from the README's configuration reference."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Configuration reference") :]
    section = section[: section.index("\n## ", 1)]
    rows = re.findall(r"^\| `--([a-z_0-9]+)` \| ([^|]+) \| ([^|]+) \| [^|]+ \|$", section, re.MULTILINE)
    return {name: (default.strip(), status.strip()) for name, default, status in rows}


def test_every_tf_serving_flag_is_listed_in_main_cc_order() -> None:
    assert [spec.name for spec in TF_SERVING_FLAGS] == MAIN_CC_FLAGS


def test_defaults_are_tf_servings() -> None:
    for spec in TF_SERVING_FLAGS:
        expected = SERVER_H_DEFAULTS.get(spec.name)
        if expected is None:  # every other flag defaults to false, 0 or ""
            expected = {bool: "false", int: "0", float: "0", str: '""'}[_kind(spec)]
        assert spec.default_text() == expected, spec.name


def test_readme_table_matches_the_flag_table() -> None:
    table = readme_table()
    assert list(table) == [spec.name for spec in (*TF_SERVING_FLAGS, *OWN_FLAGS)]
    for spec in FLAGS.values():
        assert table[spec.name] == (spec.default_text(), spec.status), spec.name


def test_help_lists_every_flag_with_its_default_and_status() -> None:
    lines = usage().splitlines()
    for spec in FLAGS.values():
        (line,) = [line for line in lines if line.startswith(f"  --{spec.name}=")]
        assert line.startswith(f"  --{spec.name}={spec.default_text()}\t{spec.help}")
        if spec.status in ("differs", "no effect", "refused"):
            assert line.endswith(f"[{spec.status}: {spec.note}]")
            assert spec.note


@pytest.mark.parametrize("spec", [s for s in FLAGS.values() if s.name != "version"], ids=lambda s: s.name)
def test_the_parser_takes_every_flag_or_refuses_it_with_its_reason(spec: FlagSpec) -> None:
    kind = _kind(spec)
    raw = {bool: "true", int: "3", float: "0.5", str: "/some/file"}[kind]
    if spec.status == "refused":
        with pytest.raises(ConfigError) as info:
            parse_flags([f"--{spec.name}={raw}"])
        assert info.value.message == f"Flag --{spec.name} is not supported by tfserve-lab: {spec.note}."
        return
    options = parse_flags([f"--{spec.name}={raw}"])
    assert getattr(options, spec.name) == kind(raw if kind is not bool else True)
    assert dataclasses.replace(options, **{spec.name: getattr(ServerOptions(), spec.name)}) == ServerOptions()


def _kind(spec: FlagSpec) -> type:
    if spec.name == "version":
        return bool
    annotation = {f.name: f.type for f in dataclasses.fields(ServerOptions)}.get(spec.name, "str")  # refused: files
    return {"bool": bool, "int": int, "float": float, "str": str}[str(annotation)]
