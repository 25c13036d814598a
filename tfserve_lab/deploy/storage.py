"""Where the cluster finds the models: a PVC or a bucket, the base paths it implies, and how to copy versions there.

TF Serving's official image reads ``gs://`` itself, so GCS base paths go into the
model config as they are. It has had no ``s3://`` file system since 2.7
(tensorflow/serving#1963), so an S3 store is copied into an ``emptyDir`` by an
``aws s3 sync`` init container and served from ``/models`` like a PVC.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from tfserve_lab.config import ModelConfig
from tfserve_lab.errors import ConfigError

__all__ = ["MODELS_MOUNT", "S3_SECRET", "ModelStore", "copy_instructions", "rewrite_base_paths"]

MODELS_MOUNT = "/models"
# Optional Secret whose keys become the sync container's environment (AWS_ACCESS_KEY_ID, ...).
S3_SECRET = "tfserve-lab-s3"
_COPY_POD = "tfserve-lab-copy"
_SCHEMES = ("pvc", "gs", "s3")


@dataclass(frozen=True)
class ModelStore:
    """A parsed ``--model-uri``: ``pvc://CLAIM[/SUBPATH]``, ``gs://BUCKET[/PREFIX]`` or ``s3://BUCKET[/PREFIX]``."""

    scheme: str
    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, uri: str) -> ModelStore:
        """Parse a model URI.

        Raises:
            ConfigError: for another scheme or a URI without a claim or bucket name.
        """
        scheme, sep, rest = uri.partition("://")
        bucket, _, prefix = rest.strip("/").partition("/")
        if not sep or scheme not in _SCHEMES or not bucket:
            raise ConfigError(f"Model URI {uri!r}: use pvc://CLAIM[/PATH], gs://BUCKET[/PATH] or s3://BUCKET[/PATH].")
        return cls(scheme, bucket, prefix.strip("/"))

    @property
    def uri(self) -> str:
        """The URI, normalised (no trailing slash)."""
        return f"{self.scheme}://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")

    def base_path(self, model: str) -> str:
        """The ``base_path`` TF Serving gets in the cluster for ``model``."""
        return f"{self.uri}/{model}" if self.scheme == "gs" else f"{MODELS_MOUNT}/{model}"

    def kserve_uri(self, model: str) -> str:
        """KServe's ``storageUri`` for ``model`` (its storage initializer reads all three schemes)."""
        return f"{self.uri}/{model}"

    def pod_storage(self, models: Sequence[str], sync_image: str) -> dict[str, Any]:
        """The ``volumes``, ``volumeMounts`` and ``initContainers`` a TF Serving pod needs to see the models."""
        if self.scheme == "gs":
            return {"volumes": [], "volumeMounts": [], "initContainers": []}
        mount: dict[str, Any] = {"name": "models", "mountPath": MODELS_MOUNT, "readOnly": True}
        if self.scheme == "pvc":
            if self.prefix:
                mount["subPath"] = self.prefix
            volume = {"name": "models", "persistentVolumeClaim": {"claimName": self.bucket, "readOnly": True}}
            return {"volumes": [volume], "volumeMounts": [mount], "initContainers": []}
        # s3: copy only the configured models' folders, once per pod start.
        filters = ["--exclude", "*"]
        for model in models:
            filters += ["--include", f"{model}/*"]
        sync = {
            "name": "fetch-models",
            "image": sync_image,
            "command": ["aws", "s3", "sync", self.uri, MODELS_MOUNT, "--only-show-errors", *filters],
            "envFrom": [{"secretRef": {"name": S3_SECRET, "optional": True}}],
            "volumeMounts": [{"name": "models", "mountPath": MODELS_MOUNT}],
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        }
        return {"volumes": [{"name": "models", "emptyDir": {}}], "volumeMounts": [mount], "initContainers": [sync]}


def rewrite_base_paths(models: Sequence[ModelConfig], model_uri: str) -> tuple[ModelConfig, ...]:
    """The engine's model configs with base paths moved to the cluster's model store.

    Args:
        models: the engine's configs (local base paths).
        model_uri: the store, as for ``ModelStore.parse``.

    Returns:
        The same configs (names, policies, labels) with ``base_path`` rewritten.
    """
    store = ModelStore.parse(model_uri)
    return tuple(replace(m, base_path=store.base_path(m.name)) for m in models)


def _local_versions(base_path: str) -> list[str]:
    try:
        names = os.listdir(base_path)
    except OSError:
        return []
    return sorted((n for n in names if n.isdigit() and os.path.isdir(os.path.join(base_path, n))), key=int)


def copy_instructions(models: Sequence[ModelConfig], model_uri: str, *, namespace: str = "ml-serving") -> str:
    """Shell commands that copy each model's exported version folders to the cluster's model store.

    Args:
        models: the engine's configs; their local base paths are the sources.
        model_uri: the store, as for ``ModelStore.parse``.
        namespace: where the PVC lives (for ``kubectl cp`` through a helper pod).

    Returns:
        A commented shell snippet, one block per model.
    """
    store = ModelStore.parse(model_uri)
    q = shlex.quote
    lines = [f"# Copy the exported version folders to {store.uri}"]
    if store.scheme == "pvc":
        root = f"{MODELS_MOUNT}/{store.prefix}" if store.prefix else MODELS_MOUNT
        spec = (
            '{"spec":{"containers":[{"name":"copy","image":"busybox:1.36","command":["sleep","3600"],'
            f'"volumeMounts":[{{"name":"models","mountPath":"{MODELS_MOUNT}"}}]}}],'
            f'"volumes":[{{"name":"models","persistentVolumeClaim":{{"claimName":"{store.bucket}"}}}}]}}}}'
        )
        kubectl = f"kubectl -n {namespace}"
        lines += [
            f"# PVC {store.bucket} must exist in namespace {namespace} (ReadOnlyMany or ReadWriteMany for >1 node).",
            f"{kubectl} run {_COPY_POD} --image=busybox:1.36 --restart=Never --overrides={q(spec)}",
            f"{kubectl} wait --for=condition=Ready pod/{_COPY_POD}",
        ]
    elif store.scheme == "gs":
        lines.append(
            "# TF Serving reads gs:// directly: grant the pods read access (Workload Identity, or a key file "
            "mounted from a Secret with GOOGLE_APPLICATION_CREDENTIALS pointing at it)."
        )
    else:
        lines.append(
            f"# Pods copy s3:// at start-up; put AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION (and "
            f"AWS_ENDPOINT_URL for MinIO) in Secret {S3_SECRET}, or use IRSA:"
        )
        lines.append(
            f"# kubectl -n {namespace} create secret generic {S3_SECRET} "
            "--from-literal=AWS_ACCESS_KEY_ID=... --from-literal=AWS_SECRET_ACCESS_KEY=... --from-literal=AWS_REGION=..."
        )
    for model in models:
        source = model.base_path.rstrip("/")
        versions = _local_versions(source)
        lines.append(f"# model {model.name}: versions {', '.join(versions) if versions else '(all folders)'}")
        if store.scheme == "pvc":
            target = f"{root}/{model.name}"
            lines.append(f"{kubectl} exec {_COPY_POD} -- mkdir -p {q(target)}")
            pairs = [(f"{source}/{v}", f"{target}/{v}") for v in versions] or [(source, target)]
            lines += [f"{kubectl} cp {q(src)} {q(f'{_COPY_POD}:{dst}')}" for src, dst in pairs]
        elif store.scheme == "gs":
            target = f"{store.uri}/{model.name}"
            sources = " ".join(q(f"{source}/{v}") for v in versions) or f"{q(source)}/*"
            lines.append(f"gsutil -m cp -r {sources} {q(target + '/')}")
        else:
            target = f"{store.uri}/{model.name}"
            pairs = [(f"{source}/{v}", f"{target}/{v}") for v in versions] or [(source, target)]
            lines += [f"aws s3 sync {q(src)} {q(dst)}" for src, dst in pairs]
    if store.scheme == "pvc":
        lines.append(f"{kubectl} delete pod {_COPY_POD}")
    return "\n".join(lines) + "\n"
