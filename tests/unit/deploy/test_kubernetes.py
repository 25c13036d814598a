"""Kubernetes manifests from the engine's config: schema-valid, round-trippable, GPU/CPU and split aware."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from google.protobuf import text_format

from tfserve_lab.batching_params import parse_batching_parameters
from tfserve_lab.config import BatchingConfig, ModelConfig, VersionPolicy, parse_model_server_config
from tfserve_lab.core.router import VERSION_HEADER_VALUE
from tfserve_lab.deploy.cli import k8s_main
from tfserve_lab.deploy.kubernetes import (
    K8sOptions,
    TrafficSplit,
    batching_to_text,
    copy_instructions,
    monitoring_to_text,
    render_manifests,
    rewrite_base_paths,
    write_manifests,
)
from tfserve_lab.errors import ConfigError
from tfserve_lab.flags import parse_flags
from tfserve_lab.protos.monitoring_config_pb2 import MonitoringConfig
from tfserve_lab.protos.session_bundle_config_pb2 import BatchingParameters

# The oldest Kubernetes still commonly run, and the newest schemas the installed package ships (offline).
K8S_VERSIONS = ("1.27", kubernetes_validate.utils.latest_version())
CORE_APIS = {"v1", "apps/v1", "autoscaling/v2"}

MODELS = (
    ModelConfig(
        "half_plus_two",
        "/work/exports/half_plus_two",
        version_policy=VersionPolicy("specific", versions=(1, 2, 3)),
        version_labels={"stable": 1, "canary": 2},
    ),
    ModelConfig("counter", "/work/exports/counter", version_policy=VersionPolicy("latest", num_versions=2)),
)
BATCHING = BatchingConfig(
    max_batch_size=8,
    batch_timeout_micros=2000,
    max_enqueued_batches=100,
    num_batch_threads=4,
    allowed_batch_sizes=(2, 4, 8),
    pad_variable_length_inputs=True,
)
SPLIT = TrafficSplit("half_plus_two", {1: 90, 2: 10, 3: 0})


def render(**overrides: Any) -> list[dict[str, Any]]:
    splits = overrides.pop("splits", (SPLIT,))
    batching = overrides.pop("batching", BATCHING)
    monitoring = overrides.pop("monitoring_path", "/monitoring/prometheus/metrics")
    options = K8sOptions(name="demo", **overrides)
    return render_manifests(MODELS, options, batching=batching, monitoring_path=monitoring, splits=splits)


def of_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


def config_map(manifests: list[dict[str, Any]]) -> dict[str, str]:
    (found,) = of_kind(manifests, "ConfigMap")
    return found["data"]


VARIANTS = {
    "cpu": {},
    "gpu": {"gpu": True, "replicas": 3},
    "gs": {"model_uri": "gs://bucket/exports"},
    "s3": {"model_uri": "s3://bucket/exports", "kserve": True},
    "pvc-subpath": {"model_uri": "pvc://shared/team/models", "namespace": "team-a"},
    "no-istio": {"istio": False, "splits": (), "batching": None, "monitoring_path": None},
}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("k8s_version", K8S_VERSIONS)
def test_core_manifests_validate_against_kubernetes_schemas(variant: str, k8s_version: str, tmp_path: Path) -> None:
    manifests = render(**VARIANTS[variant])
    # Validate what lands on disk, not only the dicts.
    write_manifests(manifests, tmp_path)
    loaded = list(yaml.safe_load_all((tmp_path / "all.yaml").read_text()))
    assert loaded == manifests
    core = [m for m in loaded if m["apiVersion"] in CORE_APIS]
    kinds = {m["kind"] for m in core}
    assert {"Namespace", "ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler"} <= kinds
    for manifest in core:
        kubernetes_validate.validate(manifest, desired_version=k8s_version, strict=True)


def test_manifest_order_and_files(tmp_path: Path) -> None:
    manifests = render(kserve=True)
    kinds = [m["kind"] for m in manifests]
    assert kinds == [
        "Namespace",
        "ConfigMap",
        *["Deployment"] * 4,
        "Service",
        *["HorizontalPodAutoscaler"] * 4,
        "DestinationRule",
        "VirtualService",
        *["InferenceService"] * 2,
    ]
    paths = write_manifests(manifests, tmp_path / "out")
    names = [p.name for p in paths]
    assert names[:9] == [
        "01-namespace.yaml",
        "02-configmap.yaml",
        "03-deployment.yaml",
        "04-service.yaml",
        "05-horizontalpodautoscaler.yaml",
        "06-destinationrule.yaml",
        "07-virtualservice.yaml",
        "08-inferenceservice.yaml",
        "all.yaml",
    ]
    assert {"model_config.pbtxt", "batching.pbtxt", "monitoring.pbtxt"} <= set(names)
    assert len(list(yaml.safe_load_all((tmp_path / "out" / "03-deployment.yaml").read_text()))) == 4
    assert (tmp_path / "out" / "model_config.pbtxt").read_text() == config_map(manifests)["model_config.pbtxt"]


# Istio and KServe CRDs are not in kubernetes-validate: these hold the fields their CRDs require
# (and forbid unknown ones where we write them, to catch misspelt keys).
_STRING_MATCH = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "properties": {"exact": {"type": "string"}, "prefix": {"type": "string"}, "regex": {"type": "string"}},
    "additionalProperties": False,
}
_DESTINATION = {
    "type": "object",
    "required": ["host"],
    "properties": {
        "host": {"type": "string", "minLength": 1},
        "subset": {"type": "string"},
        "port": {"type": "object", "required": ["number"], "properties": {"number": {"type": "integer"}}},
    },
    "additionalProperties": False,
}
_METADATA = {"type": "object", "required": ["name", "namespace"]}
CRD_SCHEMAS: dict[str, dict[str, Any]] = {
    "VirtualService": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"enum": ["networking.istio.io/v1beta1", "networking.istio.io/v1"]},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["hosts", "http"],
                "properties": {
                    "hosts": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                    "http": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["route"],
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string"},
                                "match": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "properties": {
                                            "uri": _STRING_MATCH,
                                            "port": {"type": "integer"},
                                            "headers": {"type": "object", "additionalProperties": _STRING_MATCH},
                                        },
                                    },
                                },
                                "route": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {
                                        "type": "object",
                                        "required": ["destination"],
                                        "additionalProperties": False,
                                        "properties": {
                                            "destination": _DESTINATION,
                                            "weight": {"type": "integer", "minimum": 0, "maximum": 100},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    "DestinationRule": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"enum": ["networking.istio.io/v1beta1", "networking.istio.io/v1"]},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["host"],
                "properties": {
                    "host": {"type": "string", "minLength": 1},
                    "subsets": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string"},
                                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                            },
                        },
                    },
                },
            },
        },
    },
    "InferenceService": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "serving.kserve.io/v1beta1"},
            "metadata": {**_METADATA, "properties": {"name": {"pattern": "^[a-z]([-a-z0-9]*[a-z0-9])?$"}}},
            "spec": {
                "type": "object",
                "required": ["predictor"],
                "properties": {
                    "predictor": {
                        "type": "object",
                        "required": ["tensorflow"],
                        "properties": {
                            "minReplicas": {"type": "integer", "minimum": 0},
                            "maxReplicas": {"type": "integer", "minimum": 0},
                            "tensorflow": {
                                "type": "object",
                                "required": ["storageUri"],
                                "additionalProperties": False,
                                "properties": {
                                    "storageUri": {"type": "string", "pattern": "^(pvc|gs|s3)://"},
                                    "runtimeVersion": {"type": "string"},
                                    "resources": {"type": "object"},
                                },
                            },
                        },
                    }
                },
            },
        },
    },
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_istio_and_kserve_resources_have_required_fields(variant: str) -> None:
    manifests = render(**{**VARIANTS[variant], "kserve": True})
    for manifest in manifests:
        if manifest["kind"] in CRD_SCHEMAS:
            jsonschema.validate(manifest, CRD_SCHEMAS[manifest["kind"]])
    deployments = of_kind(manifests, "Deployment")
    (service,) = of_kind(manifests, "Service")
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in deployments]
    # The Service reaches every track; each Deployment's selector matches its own pods only.
    selector = service["spec"]["selector"].items()
    assert all(selector <= labels.items() for labels in pod_labels)
    for deployment, labels in zip(deployments, pod_labels, strict=True):
        own = deployment["spec"]["selector"]["matchLabels"].items()
        assert [other for other in pod_labels if own <= other.items()] == [labels]
    # KServe's pods must not join the Service.
    for isvc in of_kind(manifests, "InferenceService"):
        assert not selector <= isvc["metadata"]["labels"].items()
    if VARIANTS[variant].get("istio") is False:
        assert not of_kind(manifests, "VirtualService")
        assert not of_kind(manifests, "DestinationRule")
        return
    (rule,) = of_kind(manifests, "DestinationRule")
    (virtual,) = of_kind(manifests, "VirtualService")
    subsets = {s["name"]: s["labels"] for s in rule["spec"]["subsets"]}
    for labels in subsets.values():  # every subset selects exactly one Deployment's pods
        assert sum(labels.items() <= p.items() for p in pod_labels) == 1
    assert (
        virtual["spec"]["hosts"]
        == [rule["spec"]["host"]]
        == [f"demo.{service['metadata']['namespace']}.svc.cluster.local"]
    )
    for route in virtual["spec"]["http"]:
        destinations = route["route"]
        assert {d["destination"]["subset"] for d in destinations} <= subsets.keys()
        if len(destinations) > 1:
            assert sum(d["weight"] for d in destinations) == 100
    assert "match" not in virtual["spec"]["http"][-1], "the last route catches everything"


def weighted_routes(manifests: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    (virtual,) = of_kind(manifests, "VirtualService")
    return {
        r["name"]: {d["destination"]["subset"]: d.get("weight", 100) for d in r["route"]}
        for r in virtual["spec"]["http"]
    }


def header_values(manifests: list[dict[str, Any]], route: str) -> list[dict[str, str]]:
    (virtual,) = of_kind(manifests, "VirtualService")
    (found,) = [r for r in virtual["spec"]["http"] if r["name"] == route]
    return [m["headers"]["model-version"] for m in found["match"]]


def test_header_routes_match_the_routers_version_forms_and_labels() -> None:
    # The engine pins version N for "N", "vN", "VN" and a label of N: so does the cluster.
    split = TrafficSplit("half_plus_two", {1: 90, 2: 10}, labels={"stable": 1, "canary": 2, "old": 7})
    manifests = render(splits=(split,))
    (virtual,) = of_kind(manifests, "VirtualService")
    jsonschema.validate(virtual, CRD_SCHEMAS["VirtualService"])
    assert (
        header_values(manifests, "half-plus-two-v1-header") == [{"regex": "^[vV]?1$"}] * 2 + [{"exact": "stable"}] * 2
    )
    assert (
        header_values(manifests, "half-plus-two-v2-header") == [{"regex": "^[vV]?2$"}] * 2 + [{"exact": "canary"}] * 2
    )
    pattern = re.compile("^[vV]?1$")  # RE2 and Python agree on this syntax
    for value in ("1", "v1", "V1", "01", "v01", "x1", "1v", "11", "v", ""):
        number = VERSION_HEADER_VALUE.fullmatch(value)
        assert bool(pattern.search(value)) == (number is not None and int(number.group(1)) == 1), value
    names = [r["name"] for r in virtual["spec"]["http"]]
    assert names == ["half-plus-two-v1-header", "half-plus-two-v2-header", "half-plus-two-split", "default"]


def test_split_weights_and_header_routes_appear_in_the_virtual_service() -> None:
    manifests = render()
    routes = weighted_routes(manifests)
    assert routes["half-plus-two-split"] == {"half-plus-two-v1": 90, "half-plus-two-v2": 10}
    for version in (1, 2, 3):  # the 0% version stays reachable by header
        assert routes[f"half-plus-two-v{version}-header"] == {f"half-plus-two-v{version}": 100}
    assert routes["default"] == {"base": 100}
    (virtual,) = of_kind(manifests, "VirtualService")
    header_route = next(r for r in virtual["spec"]["http"] if r["name"] == "half-plus-two-v2-header")
    assert [m["headers"]["model-version"] for m in header_route["match"]] == [{"regex": "^[vV]?2$"}] * 2
    assert {next(iter(m["uri"].values())) for m in header_route["match"]} == {
        "/v1/models/half_plus_two",
        "/v1/models/half_plus_two:",
    }
    names = [r["name"] for r in virtual["spec"]["http"]]
    assert names.index("half-plus-two-v1-header") < names.index("half-plus-two-split") < names.index("default")

    quiet = render(splits=(TrafficSplit("counter", {1: 50, 2: 50, 3: 0}, header_routes=False),))
    assert weighted_routes(quiet) == {"counter-split": {"counter-v1": 50, "counter-v2": 50}, "default": {"base": 100}}
    # Without header routes a 0% version has no way in, so it gets no Deployment.
    assert [d["metadata"]["name"] for d in of_kind(quiet, "Deployment")] == [
        "demo",
        "demo-counter-v1",
        "demo-counter-v2",
    ]


def test_split_versions_run_pinned_deployments() -> None:
    manifests = render(replicas=4)
    data = config_map(manifests)
    cluster = rewrite_base_paths(MODELS, "pvc://models")
    by_name = {d["metadata"]["name"]: d for d in of_kind(manifests, "Deployment")}
    assert set(by_name) == {"demo", "demo-half-plus-two-v1", "demo-half-plus-two-v2", "demo-half-plus-two-v3"}
    # Replicas follow the weights (at least one pod, so header routes always have a target).
    assert {n: d["spec"]["replicas"] for n, d in by_name.items()} == {
        "demo": 4,
        "demo-half-plus-two-v1": 4,
        "demo-half-plus-two-v2": 1,
        "demo-half-plus-two-v3": 1,
    }
    for version, labels in ((1, {"stable": 1}), (2, {"canary": 2}), (3, {})):
        args = by_name[f"demo-half-plus-two-v{version}"]["spec"]["template"]["spec"]["containers"][0]["args"]
        key = f"model_config.half-plus-two-v{version}.pbtxt"
        assert f"--model_config_file=/etc/tfserving/{key}" in args
        pinned, counter = parse_model_server_config(data[key])
        assert pinned.version_policy == VersionPolicy("specific", versions=(version,))
        assert dict(pinned.version_labels) == labels
        assert (pinned.name, pinned.base_path, counter) == (cluster[0].name, cluster[0].base_path, cluster[1])


def test_model_config_round_trip_gives_the_engine_config() -> None:
    for uri, base in (
        ("pvc://models", "/models/{}"),
        ("pvc://shared/team/", "/models/{}"),
        ("s3://bucket/exports", "/models/{}"),
        ("gs://bucket/exports/", "gs://bucket/exports/{}"),
    ):
        manifests = render(model_uri=uri)
        parsed = parse_model_server_config(config_map(manifests)["model_config.pbtxt"])
        assert parsed == rewrite_base_paths(MODELS, uri)
        assert [m.base_path for m in parsed] == [base.format(m.name) for m in MODELS]
        # Everything but the base path is the engine's own config.
        assert [(m.name, m.version_policy, dict(m.version_labels)) for m in parsed] == [
            (m.name, m.version_policy, dict(m.version_labels)) for m in MODELS
        ]


@pytest.mark.parametrize(
    "config",
    [
        BATCHING,
        BatchingConfig(),
        BatchingConfig(
            max_batch_size=64,
            enable_large_batch_splitting=True,
            max_execution_batch_size=16,
            allowed_batch_sizes=(8, 16),
            thread_pool_name='pool "A"',
        ),
    ],
)
def test_batching_round_trip_through_tf_servings_proto(config: BatchingConfig) -> None:
    text = config_map(render(batching=config))["batching.pbtxt"]
    assert text == batching_to_text(config)
    message = text_format.Parse(text, BatchingParameters())
    for name in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads"):
        assert message.HasField(name)
        assert getattr(message, name).value == getattr(config, name)
    assert message.thread_pool_name.value == config.thread_pool_name
    assert message.enable_large_batch_splitting.value == config.enable_large_batch_splitting
    assert message.HasField("max_execution_batch_size") == (config.max_execution_batch_size is not None)
    assert tuple(message.allowed_batch_sizes) == config.allowed_batch_sizes
    assert message.pad_variable_length_inputs == config.pad_variable_length_inputs
    assert parse_batching_parameters(text) == config


def test_shared_tf_serving_config_files_round_trip(testdata: Path) -> None:
    batching = parse_batching_parameters((testdata / "batching_config.txt").read_text())
    assert (batching.max_batch_size, batching.num_batch_threads, batching.max_enqueued_batches) == (128, 8, 1000000)
    assert parse_batching_parameters(batching_to_text(batching)) == batching
    ours = text_format.Parse(monitoring_to_text("/monitoring/prometheus/metrics"), MonitoringConfig())
    theirs = text_format.Parse((testdata / "monitoring_config.txt").read_text(), MonitoringConfig())
    assert ours == theirs


def test_container_runs_the_engines_flags_and_tfserve_lab_serve_accepts_them() -> None:
    (deployment, *_) = of_kind(render(), "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["tensorflow_model_server"]
    assert container["args"] == [
        "--port=8500",
        "--rest_api_port=8501",
        "--model_config_file=/etc/tfserving/model_config.pbtxt",
        "--enable_batching=true",
        "--batching_parameters_file=/etc/tfserving/batching.pbtxt",
        "--monitoring_config_file=/etc/tfserving/monitoring.pbtxt",
    ]
    assert {p["containerPort"] for p in container["ports"]} == {8500, 8501}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/v1/models/half_plus_two", "port": "http"}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/monitoring/prometheus/metrics"
    assert annotations["prometheus.io/port"] == "8501"
    # The same flags start the standalone engine.
    options = parse_flags(container["args"])
    assert (options.port, options.rest_api_port) == (8500, 8501)
    assert options.model_config_file == "/etc/tfserving/model_config.pbtxt"


def test_monitoring_and_batching_off_leave_no_trace() -> None:
    manifests = render(batching=None, monitoring_path=None, splits=())
    assert set(config_map(manifests)) == {"model_config.pbtxt"}
    (deployment,) = of_kind(manifests, "Deployment")
    template = deployment["spec"]["template"]
    assert template["spec"]["containers"][0]["args"] == [
        "--port=8500",
        "--rest_api_port=8501",
        "--model_config_file=/etc/tfserving/model_config.pbtxt",
    ]
    assert not any(k.startswith("prometheus.io/") for k in template["metadata"]["annotations"])


def diff(a: Any, b: Any, path: str = "") -> set[str]:
    """Paths where two JSON-like values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return set().union(*(diff(a.get(k), b.get(k), f"{path}.{k}") for k in a.keys() | b.keys()))
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return set().union(*(diff(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b, strict=True))))
    return set() if a == b else {path}


def test_gpu_and_cpu_differ_exactly_in_image_and_gpu_limits() -> None:
    cpu, gpu = render(kserve=True), render(kserve=True, gpu=True)
    assert len(cpu) == len(gpu)
    changed = {f"{c['kind']}/{c['metadata']['name']}{p}" for c, g in zip(cpu, gpu, strict=True) for p in diff(c, g)}
    container = ".spec.template.spec.containers[0]"
    expected = set()
    for name in ("demo", "demo-half-plus-two-v1", "demo-half-plus-two-v2", "demo-half-plus-two-v3"):
        expected |= {
            f"Deployment/{name}{container}.image",
            f"Deployment/{name}{container}.resources.limits.nvidia.com/gpu",
        }
    for name in ("half-plus-two", "counter"):
        predictor = f"InferenceService/{name}.spec.predictor.tensorflow"
        expected |= {f"{predictor}.runtimeVersion", f"{predictor}.resources.limits.nvidia.com/gpu"}
    assert changed == expected
    images = {d["spec"]["template"]["spec"]["containers"][0]["image"] for d in of_kind(gpu, "Deployment")}
    assert images == {"tensorflow/serving:2.21.0-gpu"}
    (limits,) = {
        str(d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]) for d in of_kind(gpu, "Deployment")
    }
    assert "'nvidia.com/gpu': '1'" in limits
    assert of_kind(gpu, "InferenceService")[0]["spec"]["predictor"]["tensorflow"]["runtimeVersion"] == "2.21.0-gpu"
    custom = of_kind(render(gpu=True, image="registry.local/serving:2.19.1-gpu"), "Deployment")[0]
    assert custom["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/serving:2.19.1-gpu"


def test_model_stores_shape_the_pods() -> None:
    pod = of_kind(render(model_uri="s3://bucket/exports"), "Deployment")[0]["spec"]["template"]["spec"]
    (sync,) = pod["initContainers"]
    assert sync["command"][:5] == ["aws", "s3", "sync", "s3://bucket/exports", "/models"]
    assert "half_plus_two/*" in sync["command"]
    assert "counter/*" in sync["command"]
    assert {v["name"]: next(k for k in v if k != "name") for v in pod["volumes"]} == {
        "config": "configMap",
        "models": "emptyDir",
    }
    pod = of_kind(render(model_uri="gs://bucket/exports"), "Deployment")[0]["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    assert [v["name"] for v in pod["volumes"]] == ["config"]
    pod = of_kind(render(model_uri="pvc://shared/team"), "Deployment")[0]["spec"]["template"]["spec"]
    assert pod["volumes"][1]["persistentVolumeClaim"] == {"claimName": "shared", "readOnly": True}
    assert pod["containers"][0]["volumeMounts"][1] == {
        "name": "models",
        "mountPath": "/models",
        "readOnly": True,
        "subPath": "team",
    }
    isvc = of_kind(render(model_uri="pvc://shared/team", kserve=True), "InferenceService")
    assert [i["spec"]["predictor"]["tensorflow"]["storageUri"] for i in isvc] == [
        "pvc://shared/team/half_plus_two",
        "pvc://shared/team/counter",
    ]


def test_copy_instructions_name_each_version_folder(tmp_path: Path) -> None:
    for version in ("1", "2", "10"):
        (tmp_path / "half_plus_two" / version).mkdir(parents=True)
    (tmp_path / "half_plus_two" / "notes").mkdir()
    models = [
        ModelConfig("half_plus_two", str(tmp_path / "half_plus_two")),
        ModelConfig("counter", "/elsewhere/counter"),
    ]
    gs = copy_instructions(models, "gs://bucket/exports")
    assert (
        f"gsutil -m cp -r {tmp_path}/half_plus_two/1 {tmp_path}/half_plus_two/2 {tmp_path}/half_plus_two/10 gs://bucket/exports/half_plus_two/"
        in gs
    )
    assert "gsutil -m cp -r /elsewhere/counter/* gs://bucket/exports/counter/" in gs
    assert "GOOGLE_APPLICATION_CREDENTIALS" in gs
    assert "notes" not in gs
    s3 = copy_instructions(models, "s3://bucket")
    assert f"aws s3 sync {tmp_path}/half_plus_two/10 s3://bucket/half_plus_two/10" in s3
    assert "AWS_ACCESS_KEY_ID" in s3
    pvc = copy_instructions(models, "pvc://shared/team", namespace="team-a")
    assert "kubectl -n team-a run tfserve-lab-copy" in pvc
    assert '"claimName":"shared"' in pvc
    assert f"kubectl -n team-a cp {tmp_path}/half_plus_two/2 tfserve-lab-copy:/models/team/half_plus_two/2" in pvc
    assert pvc.rstrip().endswith("kubectl -n team-a delete pod tfserve-lab-copy")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: render(splits=(TrafficSplit("nope", {1: 100}),)), "not served"),
        (lambda: TrafficSplit("m", {1: 60, 2: 30}), "add up to 90"),
        (lambda: TrafficSplit.parse("m=1=90"), "MODEL:VERSION=PERCENT"),
        (lambda: render(istio=False), "need Istio"),
        (lambda: render(model_uri="http://models"), "pvc://CLAIM"),
        (lambda: K8sOptions(name="Bad_Name"), "lower-case"),
        (lambda: K8sOptions(name="ok", replicas=5, max_replicas=2), "Autoscaler range"),
        (
            lambda: render(batching=BatchingConfig(max_batch_size=8, allowed_batch_sizes=(4,))),
            "must match max_batch_size",
        ),
        (lambda: render_manifests((), K8sOptions(name="demo")), "No models"),
    ],
)
def test_bad_inputs_raise_config_errors(call: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call()


def test_cli_writes_manifests_and_prints_copy_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "exports" / "half_plus_two" / "1").mkdir(parents=True)
    config = tmp_path / "models.config"
    config.write_text(
        'model_config_list { config { name: "half_plus_two" base_path: "%s" model_platform: "tensorflow" } }'
        % (tmp_path / "exports" / "half_plus_two")
    )
    batching = tmp_path / "batching.config"
    batching.write_text(batching_to_text(BATCHING))
    out = tmp_path / "k8s"
    argv = [
        f"--model_config_file={config}",
        f"--batching_parameters_file={batching}",
        "--replicas=2",
        "--gpu",
        "--namespace=serving",
        f"--out={out}",
        "--model-uri=gs://bucket/exports",
        "--split=half_plus_two:1=80,2=20",
        "--kserve",
    ]
    assert k8s_main(argv) == 0
    printed = capsys.readouterr().out
    assert f"{out}/all.yaml" in printed
    assert "gsutil -m cp -r" in printed
    manifests = list(yaml.safe_load_all((out / "all.yaml").read_text()))
    (deployment, *_) = of_kind(manifests, "Deployment")
    assert deployment["metadata"] == {**deployment["metadata"], "name": "half-plus-two", "namespace": "serving"}
    assert deployment["spec"]["replicas"] == 2
    assert weighted_routes(manifests)["half-plus-two-split"] == {"half-plus-two-v1": 80, "half-plus-two-v2": 20}
    assert parse_batching_parameters((out / "batching.pbtxt").read_text()) == BATCHING
    (model,) = parse_model_server_config((out / "model_config.pbtxt").read_text())
    assert model.base_path == "gs://bucket/exports/half_plus_two"

    assert (
        k8s_main(["demo", "--model_name=m", f"--model_base_path={tmp_path}", f"--out={tmp_path / 'b'}", "--no-istio"])
        == 0
    )
    assert not (tmp_path / "b" / "07-virtualservice.yaml").exists()


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--replicas=x", "--model_base_path=/m"],
        ["--nope", "--model_base_path=/m"],
        ["--model_base_path=/m", "--split=m"],
        ["--model_base_path=/m", "--model_name=m", "--split=other:1=100"],
        ["--model_base_path=/m", "--model-uri=ftp://x"],
        ["--model_base_path=/m", "--model_config_file=/c"],
        ["--model_config_file=/does/not/exist"],
        ["Bad_Name", "--model_base_path=/m"],
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert k8s_main([*argv, f"--out={tmp_path}/out"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith("tfserve-lab k8s")
    assert not (tmp_path / "out").exists()
