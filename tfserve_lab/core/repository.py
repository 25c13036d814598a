"""Model repositories on disk: numeric version folders and version policies."""

from __future__ import annotations

import os
from collections.abc import Iterable

from tfserve_lab.config import VersionPolicy

__all__ = ["aspired_versions", "list_versions", "version_path"]


def list_versions(base_path: str) -> dict[int, str]:
    """Version folders under ``base_path`` by number.

    Only names made of digits count (``1``, ``00000123``), as in TF Serving's
    file-system storage path source; everything else is ignored. A missing or
    unreadable base path has no versions.
    """
    try:
        entries = list(os.scandir(base_path))
    except OSError:
        return {}
    versions: dict[int, str] = {}
    for entry in entries:
        if entry.name.isdigit() and entry.is_dir():
            number = int(entry.name)
            # With "1" and "001" both present, TF Serving keeps one; keep the first seen.
            versions.setdefault(number, entry.path)
    return versions


def aspired_versions(available: Iterable[int], policy: VersionPolicy) -> set[int]:
    """The versions a policy wants served, out of those on disk."""
    numbers = sorted(set(available))
    if policy.kind == "all":
        return set(numbers)
    if policy.kind == "specific":
        return set(numbers) & set(policy.versions)
    return set(numbers[-policy.num_versions :]) if numbers else set()


def version_path(base_path: str, version: int) -> str:
    """The folder of one version (existing spelling kept, else the plain number)."""
    return list_versions(base_path).get(version, os.path.join(base_path, str(version)))
