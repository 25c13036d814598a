"""What a Kubernetes deployment is asked for: cluster options, traffic splits and the names they produce."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from tfserve_lab.errors import ConfigError
from tfserve_lab.version_syntax import VersionSyntaxError, parse_weights

__all__ = ["DEFAULT_IMAGE", "K8sOptions", "TrafficSplit", "dns_label", "subset_name"]

# The TF Serving release that matches the TensorFlow this package is built against.
DEFAULT_IMAGE = "tensorflow/serving:2.21.0"
GPU_RESOURCE = "nvidia.com/gpu"
BASE_SUBSET = "base"

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Room left in a 63-character name for the "-<model>-v<N>" of a version Deployment.
_MAX_NAME = 40


def dns_label(text: str) -> str:
    """``text`` as an RFC 1123 label: lower case, letters, digits and dashes (``half_plus_two`` -> ``half-plus-two``)."""
    label = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if not label or not label[0].isalpha():
        label = f"m-{label}".rstrip("-")
    return label[:63].rstrip("-")


def subset_name(model: str, version: int) -> str:
    """The Istio subset (and pod label value) of one pinned model version."""
    return f"{dns_label(model)}-v{version}"


@dataclass(frozen=True)
class TrafficSplit:
    """How REST traffic for one model is shared between its versions.

    Attributes:
        model: the model name, as in the model config.
        weights: version -> percent of requests; the percents add up to 100.
        header_routes: also route requests carrying ``model-version: N`` (or ``vN``, or a label of
            version N) to version N.
        labels: the model's version labels, for the header routes that name one.
    """

    model: str
    weights: Mapping[int, int]
    header_routes: bool = True
    labels: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        weights = {int(v): int(w) for v, w in sorted(self.weights.items())}
        if not weights:
            raise ConfigError(f"Traffic split for model {self.model} names no versions.")
        if any(v < 0 for v in weights) or any(not 0 <= w <= 100 for w in weights.values()):
            raise ConfigError(f"Traffic split for model {self.model}: versions must be >= 0 and weights 0..100.")
        if sum(weights.values()) != 100:
            raise ConfigError(
                f"Traffic split for model {self.model}: weights add up to {sum(weights.values())}, not 100."
            )
        # A private sorted copy: the caller's dict may change after the split is made.
        object.__setattr__(self, "weights", weights)

    @classmethod
    def parse(cls, text: str, *, header_routes: bool = True) -> TrafficSplit:
        """Parse the command-line form ``MODEL:1=90,2=10``.

        Raises:
            ConfigError: when the text is not of that form or the weights do not add up to 100.
        """
        model, sep, rest = text.partition(":")
        try:
            parsed = parse_weights(item.strip() for item in rest.split(","))
        except VersionSyntaxError:
            parsed = {}
        # Manifests route by version number: a label has no Deployment of its own.
        weights = {v: w for v, w in parsed.items() if isinstance(v, int)}
        if not sep or not model or not weights or len(weights) != len(parsed):
            raise ConfigError(f"Traffic split {text!r}: write it as MODEL:VERSION=PERCENT,..., as in m:1=90,2=10.")
        return cls(model, weights, header_routes)


@dataclass(frozen=True)
class K8sOptions:
    """Cluster-side choices for the manifests; the models and batching come from the engine.

    Attributes:
        name: the Deployment/Service name (RFC 1123 label, at most 40 characters).
        namespace: where everything goes.
        replicas: pods of the main Deployment; also the autoscaler's floor unless ``min_replicas`` says otherwise.
        gpu: use the ``-gpu`` image and ask for ``gpu_count`` of ``nvidia.com/gpu``.
        image: the TF Serving image; ``tensorflow/serving:2.21.0`` (``-gpu`` with ``gpu``) when None.
        model_uri: ``pvc://CLAIM[/SUBPATH]``, ``gs://BUCKET[/PREFIX]`` or ``s3://BUCKET[/PREFIX]``.
        min_replicas, max_replicas, target_cpu_utilization: the HorizontalPodAutoscaler.
        kserve: also emit one KServe InferenceService per model.
        istio: emit the DestinationRule and VirtualService (and per-version Deployments for splits).
        create_namespace: emit the Namespace object first.
        s3_sync_image: the init container that copies an s3:// model store into the pod.
    """

    name: str
    namespace: str = "ml-serving"
    replicas: int = 1
    gpu: bool = False
    image: str | None = None
    model_uri: str = "pvc://models"
    cpu_request: str = "1"
    memory_request: str = "2Gi"
    cpu_limit: str = "4"
    memory_limit: str = "8Gi"
    gpu_count: int = 1
    min_replicas: int | None = None
    max_replicas: int | None = None
    target_cpu_utilization: int = 70
    kserve: bool = False
    istio: bool = True
    create_namespace: bool = True
    rest_port: int = 8501
    grpc_port: int = 8500
    s3_sync_image: str = "amazon/aws-cli:2.22.0"

    def __post_init__(self) -> None:
        if not _DNS_LABEL.match(self.name) or len(self.name) > _MAX_NAME:
            raise ConfigError(
                f"Deployment name {self.name!r} must be lower-case letters, digits and dashes, "
                f"start with a letter and be at most {_MAX_NAME} characters."
            )
        if not _DNS_LABEL.match(self.namespace):
            raise ConfigError(f"Namespace {self.namespace!r} must be lower-case letters, digits and dashes.")
        if self.replicas < 1 or self.gpu_count < 1:
            raise ConfigError("replicas and gpu_count must be at least 1.")
        low, high = self.autoscale_range
        if not 1 <= low <= high:
            raise ConfigError(f"Autoscaler range {low}..{high} is empty: max_replicas must be >= min_replicas >= 1.")
        if not 1 <= self.target_cpu_utilization <= 100:
            raise ConfigError("target_cpu_utilization is a percent: 1..100.")
        if self.rest_port == self.grpc_port or not all(0 < p < 65536 for p in (self.rest_port, self.grpc_port)):
            raise ConfigError("rest_port and grpc_port must be two different ports in 1..65535.")

    @property
    def container_image(self) -> str:
        """The image the pods run."""
        if self.image:
            return self.image
        return f"{DEFAULT_IMAGE}-gpu" if self.gpu else DEFAULT_IMAGE

    @property
    def autoscale_range(self) -> tuple[int, int]:
        """(minReplicas, maxReplicas) of the main Deployment's autoscaler."""
        low = self.replicas if self.min_replicas is None else self.min_replicas
        high = max(low, 3 * self.replicas) if self.max_replicas is None else self.max_replicas
        return low, high

    @property
    def service_host(self) -> str:
        """The Service's cluster DNS name, as Istio resources name it."""
        return f"{self.name}.{self.namespace}.svc.cluster.local"
