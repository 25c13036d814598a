"""The engine's live config as Kubernetes manifests for the official ``tensorflow/serving`` image.

One call turns the models (and batching and monitoring settings) the notebook
engine runs into plain manifest dicts: Namespace, a ConfigMap holding
``model_config.pbtxt``, ``batching.pbtxt`` and ``monitoring.pbtxt``,
Deployment(s), Service, HorizontalPodAutoscaler(s), Istio DestinationRule and
VirtualService, and optionally KServe InferenceServices. The ConfigMap's
``model_config.pbtxt`` is the engine's own config with base paths moved to the
model store, so parsing it back gives the engine's models.

Traffic splits and header routes (TF Serving has neither): real TF Serving only
picks a version from the URL, and an Istio route can rewrite a URL once per
route, not once per weighted destination, so a weighted split cannot be built
from URL rewrites into one Deployment. Instead, for every version named in a
split, a Deployment ``NAME-MODEL-vN`` serves the same config with that model
pinned to ``specific: N`` (labels pointing elsewhere dropped), and its pods carry
``tfserve-lab/subset: MODEL-vN``; the main Deployment (subset ``base``) serves
the engine's config unchanged. The DestinationRule declares one subset per
Deployment, and the VirtualService sends REST calls on ``/v1/models/MODEL`` and
``/v1/models/MODEL:VERB`` first by ``model-version: N`` header to subset
``MODEL-vN``, then by weight across the version subsets; everything else
(explicit ``/versions/N`` and ``/labels/L`` URLs, other models, gRPC, whose
model name is inside the request body, and metrics) goes to ``base``. Because
every pod serves every model, plain Service traffic without Istio still works.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tfserve_lab.batching_params import batching_to_text
from tfserve_lab.config import BatchingConfig, ModelConfig, VersionPolicy, model_configs_to_text
from tfserve_lab.deploy.istio import destination_rule, inference_services, virtual_service
from tfserve_lab.deploy.options import BASE_SUBSET, GPU_RESOURCE, K8sOptions, TrafficSplit, subset_name
from tfserve_lab.deploy.storage import ModelStore, copy_instructions, rewrite_base_paths
from tfserve_lab.errors import ConfigError

__all__ = [
    "BATCHING_FILE",
    "CONFIG_DIR",
    "MODEL_CONFIG_FILE",
    "MONITORING_FILE",
    "K8sOptions",
    "TrafficSplit",
    "batching_to_text",
    "copy_instructions",
    "monitoring_to_text",
    "render_manifests",
    "rewrite_base_paths",
    "write_manifests",
]

CONFIG_DIR = "/etc/tfserving"
MODEL_CONFIG_FILE = "model_config.pbtxt"
BATCHING_FILE = "batching.pbtxt"
MONITORING_FILE = "monitoring.pbtxt"
DEFAULT_MONITORING_PATH = "/monitoring/prometheus/metrics"
_CONTAINER = "tensorflow-serving"


def monitoring_to_text(path: str = DEFAULT_MONITORING_PATH) -> str:
    """A ``MonitoringConfig`` text proto (``--monitoring_config_file``) exposing Prometheus metrics at ``path``."""
    from google.protobuf import text_format

    from tfserve_lab.protos.monitoring_config_pb2 import MonitoringConfig

    message = MonitoringConfig()
    message.prometheus_config.enable = True
    message.prometheus_config.path = path
    return str(text_format.MessageToString(message))


def _pinned(models: Sequence[ModelConfig], model: str, version: int) -> tuple[ModelConfig, ...]:
    # TF Serving refuses labels on versions it does not serve, so labels pointing elsewhere go.
    return tuple(
        replace(
            m,
            version_policy=VersionPolicy("specific", versions=(version,)),
            version_labels={k: v for k, v in m.version_labels.items() if v == version},
        )
        if m.name == model
        else m
        for m in models
    )


def _labels(options: K8sOptions, subset: str | None = None) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/name": "tensorflow-serving",
        "app.kubernetes.io/instance": options.name,
        "app.kubernetes.io/managed-by": "tfserve-lab",
    }
    if subset is not None:
        # "version" is the label Istio's telemetry reads; "tfserve-lab/subset" is what subsets select on.
        labels |= {"tfserve-lab/subset": subset, "version": subset}
    return labels


def _meta(options: K8sOptions, name: str, subset: str | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": options.namespace, "labels": _labels(options, subset)}


def _deployment(
    options: K8sOptions,
    *,
    name: str,
    subset: str,
    config_file: str,
    replicas: int,
    probe_model: str,
    storage: dict[str, Any],
    batching: bool,
    monitoring_path: str | None,
    config_hash: str,
) -> dict[str, Any]:
    args = [f"--port={options.grpc_port}", f"--rest_api_port={options.rest_port}"]
    args.append(f"--model_config_file={CONFIG_DIR}/{config_file}")
    if batching:
        args += ["--enable_batching=true", f"--batching_parameters_file={CONFIG_DIR}/{BATCHING_FILE}"]
    if monitoring_path:
        args.append(f"--monitoring_config_file={CONFIG_DIR}/{MONITORING_FILE}")
    # The config hash makes `kubectl apply` roll the pods when the ConfigMap changes.
    annotations = {"tfserve-lab/config-hash": config_hash}
    if monitoring_path:
        annotations |= {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(options.rest_port),
            "prometheus.io/path": monitoring_path,
        }
    limits = {"cpu": options.cpu_limit, "memory": options.memory_limit}
    if options.gpu:
        limits[GPU_RESOURCE] = str(options.gpu_count)
    status = {"path": f"/v1/models/{quote(probe_model, safe='')}", "port": "http"}
    container = {
        "name": _CONTAINER,
        "image": options.container_image,
        # The image's entrypoint script adds --model_name/--model_base_path; call the server directly.
        "command": ["tensorflow_model_server"],
        "args": args,
        "ports": [
            {"name": "grpc", "containerPort": options.grpc_port, "protocol": "TCP"},
            {"name": "http", "containerPort": options.rest_port, "protocol": "TCP"},
        ],
        # A model status answers 200 once the server has the model; startup allows 10 minutes for big loads.
        "startupProbe": {"httpGet": status, "periodSeconds": 10, "failureThreshold": 60},
        "readinessProbe": {"httpGet": status, "periodSeconds": 10, "failureThreshold": 3},
        "livenessProbe": {"httpGet": status, "periodSeconds": 20, "failureThreshold": 3, "timeoutSeconds": 5},
        "resources": {"requests": {"cpu": options.cpu_request, "memory": options.memory_request}, "limits": limits},
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}, *storage["volumeMounts"]],
    }
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": [{"name": "config", "configMap": {"name": options.name}}, *storage["volumes"]],
    }
    if storage["initContainers"]:
        pod_spec["initContainers"] = storage["initContainers"]
    selector = {"app.kubernetes.io/instance": options.name, "tfserve-lab/subset": subset}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(options, name, subset),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": _labels(options, subset), "annotations": annotations},
                "spec": pod_spec,
            },
        },
    }


def _autoscaler(options: K8sOptions, deployment: str, low: int, high: int) -> dict[str, Any]:
    metric = {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": options.target_cpu_utilization}}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(options, deployment),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "minReplicas": low,
            "maxReplicas": high,
            "metrics": [{"type": "Resource", "resource": metric}],
        },
    }


def _service(options: K8sOptions) -> dict[str, Any]:
    # Selects every track's pods: Istio subsets must be subsets of the Service's endpoints.
    ports = [
        {"name": "grpc", "port": options.grpc_port, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "grpc"},
        {"name": "http", "port": options.rest_port, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"},
    ]
    spec = {"type": "ClusterIP", "selector": {"app.kubernetes.io/instance": options.name}, "ports": ports}
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(options, options.name), "spec": spec}


def render_manifests(
    models: Sequence[ModelConfig],
    options: K8sOptions,
    *,
    batching: BatchingConfig | None = None,
    monitoring_path: str | None = DEFAULT_MONITORING_PATH,
    splits: Sequence[TrafficSplit] = (),
) -> list[dict[str, Any]]:
    """Kubernetes manifests that run ``models`` on real TF Serving as the engine runs them.

    Args:
        models: the engine's model configs (local base paths; rewritten to ``options.model_uri``).
        options: cluster choices.
        batching: the engine's batching parameters; None when it does not batch.
        monitoring_path: where Prometheus metrics are served; None turns monitoring off.
        splits: per-model weighted version splits (and ``model-version`` header routes); they need Istio.

    Returns:
        Plain dicts in apply order: Namespace, ConfigMap, Deployment(s), Service,
        HorizontalPodAutoscaler(s), DestinationRule, VirtualService, InferenceService(s).

    Raises:
        ConfigError: for no models, a split of an unknown model, invalid batching or names that collide.
    """
    if not models:
        raise ConfigError("No models to deploy: serve at least one model first.")
    store = ModelStore.parse(options.model_uri)
    cluster = rewrite_base_paths(models, options.model_uri)
    known = {m.name for m in models}
    if splits and not options.istio:
        raise ConfigError("Traffic splits need Istio: drop the splits or keep the Istio resources.")
    if len({s.model for s in splits}) != len(splits):
        raise ConfigError("Each model takes at most one traffic split.")
    for split in splits:
        if split.model not in known:
            raise ConfigError(f"Traffic split names model {split.model}, which is not served.")
    if batching is not None:
        batching.validate()

    data = {MODEL_CONFIG_FILE: model_configs_to_text(cluster)}
    if batching is not None:
        data[BATCHING_FILE] = batching_to_text(batching)
    if monitoring_path:
        data[MONITORING_FILE] = monitoring_to_text(monitoring_path)
    low, high = options.autoscale_range
    # (subset, config file, replicas, autoscaler max, model whose status the probes read)
    tracks = [(BASE_SUBSET, MODEL_CONFIG_FILE, options.replicas, high, models[0].name)]
    for split in splits:
        for version, weight in split.weights.items():
            if not weight and not split.header_routes:
                continue  # nothing would ever reach it
            subset = subset_name(split.model, version)
            key = f"model_config.{subset}.pbtxt"
            data[key] = model_configs_to_text(_pinned(cluster, split.model, version))
            share = max(1, math.ceil(options.replicas * weight / 100))
            tracks.append((subset, key, share, max(share, math.ceil(high * weight / 100)), split.model))
    subsets = [t[0] for t in tracks]
    if len(set(subsets)) != len(subsets):
        raise ConfigError(f"Model names collide once made DNS-safe: {', '.join(sorted(subsets))}.")
    config_hash = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    manifests: list[dict[str, Any]] = []
    if options.create_namespace:
        namespace = {"name": options.namespace, "labels": {"app.kubernetes.io/managed-by": "tfserve-lab"}}
        manifests.append({"apiVersion": "v1", "kind": "Namespace", "metadata": namespace})
    manifests.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(options, options.name), "data": data})
    storage = store.pod_storage([m.name for m in models], options.s3_sync_image)
    scaling: list[tuple[str, int, int]] = []
    for subset, key, replicas, top, probe_model in tracks:
        name = options.name if subset == BASE_SUBSET else f"{options.name}-{subset}"
        if len(name) > 63:
            raise ConfigError(f"Deployment name {name} is longer than 63 characters: use a shorter NAME.")
        manifests.append(
            _deployment(
                options,
                name=name,
                subset=subset,
                config_file=key,
                replicas=replicas,
                probe_model=probe_model,
                storage=storage,
                batching=batching is not None,
                monitoring_path=monitoring_path or None,
                config_hash=config_hash,
            )
        )
        scaling.append((name, low if subset == BASE_SUBSET else replicas, top))
    manifests.append(_service(options))
    manifests += [_autoscaler(options, name, floor, top) for name, floor, top in scaling]
    if options.istio:
        meta = _meta(options, options.name)
        manifests.append(destination_rule(options, meta, subsets))
        manifests.append(virtual_service(options, meta, splits))
    if options.kserve:
        # Not the Service's selector labels: KServe copies them onto its own pods.
        labels = {"app.kubernetes.io/managed-by": "tfserve-lab", "app.kubernetes.io/part-of": options.name}
        manifests += inference_services(models, options, store, labels)
    return manifests


def _yaml_dump(documents: Sequence[dict[str, Any]]) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        # Manifests share sub-dicts (probes, matches); kubectl users expect no &anchors.
        def ignore_aliases(self, data: Any) -> bool:
            return True

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        # Text protos read better as literal blocks than as one escaped line.
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return yaml.dump_all(documents, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=1000)


def write_manifests(manifests: Sequence[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """Write one YAML file per kind (numbered in apply order), ``all.yaml``, and the ConfigMap's text protos.

    Args:
        manifests: as ``render_manifests`` returns them.
        out_dir: created if missing; files in it with the same names are replaced.

    Returns:
        The paths written, in order.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for manifest in manifests:
        by_kind.setdefault(manifest["kind"], []).append(manifest)
    written: list[Path] = []
    for index, (kind, documents) in enumerate(by_kind.items(), start=1):
        path = out / f"{index:02d}-{kind.lower()}.yaml"
        path.write_text(_yaml_dump(documents), encoding="utf-8")
        written.append(path)
    path = out / "all.yaml"
    path.write_text(_yaml_dump(manifests), encoding="utf-8")
    written.append(path)
    for config_map in by_kind.get("ConfigMap", [])[:1]:
        for key, value in config_map["data"].items():
            path = out / key
            path.write_text(value, encoding="utf-8")
            written.append(path)
    return written
