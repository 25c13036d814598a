"""One real ``tfserve-lab serve`` process for the protocol tests, serving TF Serving's testdata."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.server_process import ServerProcess

CONFIG = """
model_config_list {
  config { name: "half_plus_two" base_path: "%(td)s/saved_model_half_plus_two_cpu" model_platform: "tensorflow" }
  config { name: "tf2" base_path: "%(td)s/saved_model_half_plus_two_tf2_cpu" model_platform: "tensorflow" }
  config { name: "half_plus_three" base_path: "%(td)s/saved_model_half_plus_three" model_platform: "tensorflow" }
  config {
    name: "two"
    base_path: "%(td)s/saved_model_half_plus_two_2_versions"
    model_platform: "tensorflow"
    model_version_policy { all {} }
    version_labels { key: "stable" value: 123 }
    version_labels { key: "canary" value: 124 }
  }
  config { name: "counter" base_path: "%(td)s/saved_model_counter" model_platform: "tensorflow" }
  config { name: "matrix" base_path: "%(td)s/matrix_half_plus_two" model_platform: "tensorflow" }
  config { name: "with_config" base_path: "%(td)s/saved_model_half_plus_two_cpu_with_saved_model_config" }
}
"""


@pytest.fixture(scope="session")
def server(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with every TF Serving test model, a Unix socket, and labels."""
    tmp = tmp_path_factory.mktemp("serve")
    config = tmp / "models.config"
    config.write_text(CONFIG % {"td": testdata})
    proc = ServerProcess(
        [
            f"--model_config_file={config}",
            f"--grpc_socket_path={tmp / 'grpc.sock'}",
            "--allow_version_labels_for_unavailable_models",
        ],
        log_path=tmp / "server.log",
    )
    proc.socket_path = tmp / "grpc.sock"
    try:
        proc.wait_ready("matrix")
        yield proc
    finally:
        proc.stop()
