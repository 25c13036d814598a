"""The facade that magics, widgets and plain Python call: one engine per process.

Every function returns typed results and raises ``TfServeError`` for user
errors; nothing here prints. ``import tfserve_lab.api as tfs`` gives all of it:

- session: ``start``, ``stop``, ``status``, ``current``, ``reload``
- models: ``deploy``, ``undeploy``, ``predict``; SavedModels: ``export``, ``inspect``
- traffic: ``label``, ``split``, ``split_weights``, ``shadow``, ``shadow_records``, ``resolve_version``
- workbench: ``compare``, ``compare_shadow``, ``bench``, ``tune``, ``profile``, ``capture``,
  ``set_batching``, ``batching``, ``live_stats``, ``k8s``
- the text forms people type: ``parse_weights`` (``VERSION=PERCENT``), ``parse_labels``
  (``LABEL=VERSION``), ``version_or_label``
"""

from __future__ import annotations

from tfserve_lab.api.compare_stats import OutputStats, output_stats
from tfserve_lab.api.comparison import Comparison, compare, compare_shadow
from tfserve_lab.api.live_batching import batching, set_batching
from tfserve_lab.api.load import bench, profile, tune
from tfserve_lab.api.manifests import k8s
from tfserve_lab.api.models import MODELS_DIR, DeployResult, Progress, deploy, predict, undeploy
from tfserve_lab.api.recording import capture
from tfserve_lab.api.saved_models import export, inspect
from tfserve_lab.api.session import EngineStatus, ModelStatus, current, live_stats, reload, start, status, stop
from tfserve_lab.api.traffic import label, resolve_version, shadow, shadow_records, split, split_weights
from tfserve_lab.version_syntax import VersionSyntaxError, parse_labels, parse_weights, version_or_label

__all__ = [
    "MODELS_DIR",
    "Comparison",
    "DeployResult",
    "EngineStatus",
    "ModelStatus",
    "OutputStats",
    "Progress",
    "VersionSyntaxError",
    "batching",
    "bench",
    "capture",
    "compare",
    "compare_shadow",
    "current",
    "deploy",
    "export",
    "inspect",
    "k8s",
    "label",
    "live_stats",
    "output_stats",
    "parse_labels",
    "parse_weights",
    "predict",
    "profile",
    "reload",
    "resolve_version",
    "set_batching",
    "shadow",
    "shadow_records",
    "split",
    "split_weights",
    "start",
    "status",
    "stop",
    "tune",
    "undeploy",
    "version_or_label",
]
