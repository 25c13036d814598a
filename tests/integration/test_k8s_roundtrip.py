"""The Kubernetes manifests carry the engine's exact config: `tfserve-lab serve` runs them as written."""

from __future__ import annotations

import shutil
from pathlib import Path

import requests
import yaml

from tests.integration.server_process import ServerProcess
from tfserve_lab.batching_params import parse_batching_parameters
from tfserve_lab.config import BatchingConfig, ModelConfig, VersionPolicy, parse_model_server_config
from tfserve_lab.deploy.kubernetes import CONFIG_DIR, render_manifests, write_manifests
from tfserve_lab.deploy.options import K8sOptions


def test_manifests_round_trip_into_a_serving_process(testdata: Path, tmp_path: Path) -> None:
    models = (
        ModelConfig(
            "two",
            str(testdata / "saved_model_half_plus_two_2_versions"),
            version_policy=VersionPolicy("all"),
            version_labels={"stable": 123, "canary": 124},
        ),
        ModelConfig("three", str(testdata / "saved_model_half_plus_three")),
    )
    batching = BatchingConfig(max_batch_size=16, batch_timeout_micros=500, num_batch_threads=2, max_enqueued_batches=50)
    manifests = render_manifests(models, K8sOptions(name="serving", model_uri="pvc://models"), batching=batching)
    out = tmp_path / "k8s"
    write_manifests(manifests, out)

    config_map = next(m for m in manifests if m["kind"] == "ConfigMap")
    model_config = config_map["data"]["model_config.pbtxt"]
    assert parse_batching_parameters(config_map["data"]["batching.pbtxt"]) == batching
    in_cluster = parse_model_server_config(model_config)
    assert [(m.name, m.version_policy, dict(m.version_labels)) for m in in_cluster] == [
        (m.name, m.version_policy, dict(m.version_labels)) for m in models
    ]
    assert [m.base_path for m in in_cluster] == ["/models/two", "/models/three"]
    assert (out / "all.yaml").is_file()
    assert any(doc["kind"] == "Deployment" for doc in yaml.safe_load_all((out / "all.yaml").read_text()) if doc)

    # Lay the model store out locally where the PVC would be mounted, and the ConfigMap where it would be.
    store, config_dir = tmp_path / "models", tmp_path / "etc"
    shutil.copytree(testdata / "saved_model_half_plus_two_2_versions", store / "two")
    shutil.copytree(testdata / "saved_model_half_plus_three", store / "three")
    config_dir.mkdir()
    for name, text in config_map["data"].items():
        (config_dir / name).write_text(text.replace("/models/", f"{store}/"))

    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    flags = [
        arg.replace(CONFIG_DIR, str(config_dir))
        for arg in container.get("args", [])
        if not arg.startswith(("--port=", "--rest_api_port="))
    ]
    server = ServerProcess(flags, log_path=tmp_path / "serve.log")
    try:
        server.wait_ready("three")
        url = server.url
        assert requests.post(
            f"{url}/v1/models/two/labels/canary:predict", json={"instances": [1.0]}, timeout=10
        ).json() == {"predictions": [2.5]}
        assert requests.post(f"{url}/v1/models/three:predict", json={"instances": [1.0]}, timeout=10).json() == {
            "predictions": [3.5]
        }
        statuses = requests.get(f"{url}/v1/models/two", timeout=10).json()["model_version_status"]
        assert sorted(s["version"] for s in statuses) == ["123", "124"]
        metrics = requests.get(f"{url}/monitoring/prometheus/metrics", timeout=10)
        assert metrics.status_code == 200
    finally:
        server.stop()
