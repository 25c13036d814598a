"""Kubernetes manifests that run this engine's exact config on tensorflow/serving (``k8s``)."""

from __future__ import annotations

import math
from typing import Any

from tfserve_lab.api import engine_calls
from tfserve_lab.api.load import capacity
from tfserve_lab.api.session import current, running_engine
from tfserve_lab.errors import ErrorCode, TfServeError

__all__ = ["k8s"]


def k8s(
    name: str | None = None,
    *,
    out: str | None = None,
    replicas: int = 1,
    gpu: bool = False,
    namespace: str = "ml-serving",
    image: str | None = None,
    model_uri: str = "pvc://models",
    kserve: bool = False,
    batching_file: str | None = None,
    target_rps: float | None = None,
    capacity_rps: float | None = None,
) -> tuple[list[str], str]:
    """Write Kubernetes manifests running this engine's exact config on tensorflow/serving.

    Args:
        name: The Deployment/Service name (default: the first model's name as a DNS label).
        out: The folder the manifests go to (default ``k8s-NAME``).
        replicas: Pods of the main Deployment.
        gpu: Use the ``-gpu`` image and ask for a GPU.
        namespace: Where everything goes.
        image: The TF Serving image (default: the release the manifests are tested with).
        model_uri: ``pvc://CLAIM[/SUBPATH]``, ``gs://BUCKET[/PREFIX]`` or ``s3://BUCKET[/PREFIX]``.
        kserve: Also write one KServe InferenceService per model.
        batching_file: A ``BatchingParameters`` file for the pods (a tune's ``write``); default: the
            batching the first model is served with now.
        target_rps: Requests/s the fleet must carry: sets the replicas and the autoscaler's floor to
            ``ceil(target_rps / (capacity_rps * target CPU utilization))``, and its ceiling to twice that.
        capacity_rps: Requests/s one replica sustains within the SLO (default: the last ``tune``'s best).

    Returns:
        The files written and the instructions to copy the model versions to ``model_uri``.
    """
    from tfserve_lab.batching_params import read_batching_parameters
    from tfserve_lab.deploy.kubernetes import render_manifests, write_manifests
    from tfserve_lab.deploy.options import K8sOptions, TrafficSplit, dns_label
    from tfserve_lab.deploy.storage import copy_instructions

    session = current()
    engine = running_engine()
    models = engine.models()
    if not models:
        raise TfServeError("The engine serves no models yet: deploy one first.", code=ErrorCode.FAILED_PRECONDITION)
    name = name or dns_label(models[0].name)
    sizing: dict[str, Any] = {}  # min_replicas, max_replicas
    if target_rps is not None:
        sustained = capacity_rps if capacity_rps is not None else capacity(models[0].name)
        if not sustained:
            raise TfServeError(
                f"--target-rps needs the requests/s one replica sustains: run %tfserve tune {models[0].name} first, "
                "or give --capacity-rps.",
                code=ErrorCode.FAILED_PRECONDITION,
            )
        utilization = K8sOptions.target_cpu_utilization / 100
        replicas = max(1, math.ceil(target_rps / (sustained * utilization)))
        sizing = {"min_replicas": replicas, "max_replicas": 2 * replicas}
    options = K8sOptions(
        name=name,
        namespace=namespace,
        replicas=replicas,
        gpu=gpu,
        image=image,
        model_uri=model_uri,
        kserve=kserve,
        **sizing,
    )
    batching = read_batching_parameters(batching_file) if batching_file else engine.batching(models[0].name)
    splits = [
        TrafficSplit(m.name, weights, labels=m.version_labels)
        for m in models
        if (weights := engine_calls.split_weights(m.name))
    ]
    manifests = render_manifests(
        models,
        options,
        batching=batching,
        monitoring_path=session.monitoring.path if session.monitoring.enable else None,
        splits=splits,
    )
    paths = write_manifests(manifests, out or f"k8s-{name}")
    return [str(p) for p in paths], copy_instructions(models, model_uri, namespace=namespace)
