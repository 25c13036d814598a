"""Istio DestinationRule/VirtualService for version splits and header routes, and KServe InferenceServices.

The design (one pinned Deployment per split version, selected as a subset) is
described in ``tfserve_lab.deploy.kubernetes``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tfserve_lab.config import ModelConfig
from tfserve_lab.deploy.options import BASE_SUBSET, GPU_RESOURCE, K8sOptions, TrafficSplit, dns_label, subset_name
from tfserve_lab.deploy.storage import ModelStore

__all__ = ["ISTIO_API", "KSERVE_API", "VERSION_HEADER", "destination_rule", "inference_services", "virtual_service"]

# v1beta1 is served by every Istio still in use (v1 only from 1.22 on).
ISTIO_API = "networking.istio.io/v1beta1"
KSERVE_API = "serving.kserve.io/v1beta1"
VERSION_HEADER = "model-version"


def destination_rule(options: K8sOptions, metadata: Mapping[str, Any], subsets: Sequence[str]) -> dict[str, Any]:
    """One subset per Deployment track, selected by the pods' ``tfserve-lab/subset`` label.

    Args:
        options: cluster choices (the Service host).
        metadata: name, namespace and labels of the resource.
        subsets: ``base`` first, then ``MODEL-vN`` per split version.
    """
    return {
        "apiVersion": ISTIO_API,
        "kind": "DestinationRule",
        "metadata": dict(metadata),
        "spec": {
            "host": options.service_host,
            "subsets": [{"name": s, "labels": {"tfserve-lab/subset": s}} for s in subsets],
        },
    }


def _version_header_matches(options: K8sOptions, split: TrafficSplit, version: int) -> list[dict[str, Any]]:
    """What pins ``version`` in the engine's router: ``N`` or ``vN`` (either case), or a label naming it."""
    matches = _model_matches(options, split.model, {VERSION_HEADER: {"regex": f"^[vV]?{version}$"}})
    for label in sorted(label for label, target in split.labels.items() if target == version):
        matches += _model_matches(options, split.model, {VERSION_HEADER: {"exact": label}})
    return matches


def _model_matches(options: K8sOptions, model: str, headers: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    # Status (/v1/models/M) and the verbs (/v1/models/M:predict, :classify, ...); the version-less
    # URLs only, so /versions/N and /labels/L keep reaching the base track that serves them all.
    matches: list[dict[str, Any]] = [
        {"uri": {"exact": f"/v1/models/{model}"}, "port": options.rest_port},
        {"uri": {"prefix": f"/v1/models/{model}:"}, "port": options.rest_port},
    ]
    if headers:
        for match in matches:
            match["headers"] = dict(headers)
    return matches


def virtual_service(options: K8sOptions, metadata: Mapping[str, Any], splits: Sequence[TrafficSplit]) -> dict[str, Any]:
    """Header routes, then weighted routes per split model, then everything to ``base``.

    Args:
        options: cluster choices (the Service host, the REST port).
        metadata: name, namespace and labels of the resource.
        splits: the engine's traffic splits; none gives a single route to ``base``.
    """
    host = options.service_host

    def destination(subset: str) -> dict[str, Any]:
        return {"host": host, "subset": subset, "port": {"number": options.rest_port}}

    routes: list[dict[str, Any]] = []
    for split in splits:
        prefix = dns_label(split.model)
        if split.header_routes:
            for version in split.weights:
                subset = subset_name(split.model, version)
                routes.append(
                    {
                        "name": f"{subset}-header",
                        "match": _version_header_matches(options, split, version),
                        "route": [{"destination": destination(subset)}],
                    }
                )
        # Zero-weight versions stay reachable by header only.
        weighted = [
            {"destination": destination(subset_name(split.model, v)), "weight": w}
            for v, w in split.weights.items()
            if w
        ]
        routes.append({"name": f"{prefix}-split", "match": _model_matches(options, split.model), "route": weighted})
    # No port: gRPC stays on the gRPC port and REST on the REST port.
    routes.append({"name": "default", "route": [{"destination": {"host": host, "subset": BASE_SUBSET}}]})
    return {
        "apiVersion": ISTIO_API,
        "kind": "VirtualService",
        "metadata": dict(metadata),
        "spec": {"hosts": [host], "http": routes},
    }


def inference_services(
    models: Sequence[ModelConfig], options: K8sOptions, store: ModelStore, labels: Mapping[str, str]
) -> list[dict[str, Any]]:
    """One KServe InferenceService with the TensorFlow predictor per model.

    KServe's TensorFlow runtime serves one model named after the InferenceService
    and the latest version under ``storageUri``: version policies, labels, batching
    and splits stay with the Deployment. Model names are made DNS-safe for the name.
    """
    image = options.container_image
    runtime_version = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else "latest"
    limits = {"cpu": options.cpu_limit, "memory": options.memory_limit}
    if options.gpu:
        limits[GPU_RESOURCE] = str(options.gpu_count)
    low, high = options.autoscale_range
    services = []
    for model in models:
        predictor = {
            "minReplicas": low,
            "maxReplicas": high,
            "tensorflow": {
                "storageUri": store.kserve_uri(model.name),
                "runtimeVersion": runtime_version,
                "resources": {
                    "requests": {"cpu": options.cpu_request, "memory": options.memory_request},
                    "limits": limits,
                },
            },
        }
        services.append(
            {
                "apiVersion": KSERVE_API,
                "kind": "InferenceService",
                "metadata": {
                    "name": dns_label(model.name),
                    "namespace": options.namespace,
                    "labels": dict(labels),
                    "annotations": {"serving.kserve.io/enable-prometheus-scraping": "true"},
                },
                "spec": {"predictor": predictor},
            }
        )
    return services
