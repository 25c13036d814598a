"""Drives the registry toward the aspired versions: polls repositories, loads, unloads.

Runs on its own daemon thread (loads block for seconds in TensorFlow). A poll
loads every aspired version first and unloads the versions it replaces only
afterwards, and only once an aspired version is AVAILABLE, so a model never
goes dark during a swap (TF Serving's availability-preserving policy).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tfserve_lab.core.events import LoadProgress
from tfserve_lab.core.progress import reporting
from tfserve_lab.core.registry import ModelEntry, Registry, VersionRecord
from tfserve_lab.core.repository import aspired_versions, list_versions
from tfserve_lab.core.servables.base import Servable
from tfserve_lab.core.types import VersionState
from tfserve_lab.errors import ErrorCode, TfServeError

__all__ = ["Watcher", "WatcherOptions", "no_versions_message"]

log = logging.getLogger("tfserve_lab")

Loader = Callable[[str], Servable]


def no_versions_message(name: str, base_path: str) -> str:
    """TF Serving's words for a base path that holds no numeric version folder."""
    return (
        f"No versions of servable {name} found under base path {base_path}. "
        "Did you forget to name your leaf directory as a number (eg. '/1/')?"
    )


@dataclass(frozen=True)
class WatcherOptions:
    """Polling and retry settings (``--file_system_poll_wait_seconds`` and friends)."""

    poll_wait_seconds: float = 1.0
    max_num_load_retries: int = 5
    load_retry_interval_seconds: float = 60.0
    unload_timeout_seconds: float | None = None
    # --num_load_threads / --num_unload_threads: 0 loads (unloads) one after another on the watcher thread,
    # N runs up to N at once, as TF Serving's manager does with its thread pools.
    num_load_threads: int = 0
    num_unload_threads: int = 0


class Watcher:
    """Polls every configured model's base path and applies its version policy."""

    def __init__(
        self,
        registry: Registry,
        loader: Loader,
        options: WatcherOptions,
        on_progress: Callable[[LoadProgress], None] | None = None,
    ) -> None:
        self._registry = registry
        self._on_progress = on_progress
        self._empty_warned: set[str] = set()
        self._loader = loader
        self._options = options
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start polling in the background (a poll interval of 0 or less polls never)."""
        if self._options.poll_wait_seconds <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="tfserve-watcher", daemon=True)
        self._thread.start()

    def stop(self, *, unload: bool = True) -> None:
        """Stop polling; with ``unload``, unload every version (waiting for requests in flight)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if unload:
            with self._poll_lock:
                for key, entry in self._registry.entries():
                    for record in list(entry.records.values()):
                        self._unload(entry, record)
                    entry.removed = True
                    self._registry.drop(key)

    def poke(self) -> None:
        """Poll now instead of at the next interval."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._options.poll_wait_seconds)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.poll_once()
            except Exception:
                log.exception("Polling the model repositories failed")

    def poll_once(self) -> None:
        """One reconciliation pass over every model (blocking while it loads).

        Every aspired version of every model loads first; then the versions no
        longer aspired unload, for each model only once one of its aspired
        versions is AVAILABLE.
        """
        with self._poll_lock:
            loads: list[tuple[ModelEntry, VersionRecord]] = []
            aspired_by_entry: list[tuple[ModelEntry, set[int]]] = []
            for key, entry in self._registry.entries():
                if entry.removed:
                    self._run_jobs(
                        self._unload, [(entry, r) for r in entry.records.values()], self._options.num_unload_threads
                    )
                    self._registry.drop(key)
                    continue
                on_disk = list_versions(entry.config.base_path)
                self._warn_when_empty(entry, on_disk)
                aspired = aspired_versions(on_disk, entry.config.version_policy)
                aspired_by_entry.append((entry, set(aspired)))
                for version in sorted(aspired, reverse=True):
                    record = self._registry.record(entry, version, on_disk[version])
                    if record.state is VersionState.START and time.monotonic() >= record.next_attempt_at:
                        loads.append((entry, record))
            self._run_jobs(self._load, loads, self._options.num_load_threads)
            unloads = [
                (entry, record)
                for entry, aspired in aspired_by_entry
                if not aspired
                or any(entry.records[v].state is VersionState.AVAILABLE for v in aspired if v in entry.records)
                for version, record in list(entry.records.items())
                if version not in aspired
            ]
            self._run_jobs(self._unload, unloads, self._options.num_unload_threads)

    def _warn_when_empty(self, entry: ModelEntry, on_disk: dict[int, str]) -> None:
        """TF Serving's warning for a base path without version folders, once until versions appear."""
        name = entry.config.name
        if on_disk:
            self._empty_warned.discard(name)
        elif name not in self._empty_warned:
            self._empty_warned.add(name)
            log.warning(no_versions_message(name, entry.config.base_path))

    @staticmethod
    def _run_jobs(
        work: Callable[[ModelEntry, VersionRecord], None],
        jobs: Sequence[tuple[ModelEntry, VersionRecord]],
        threads: int,
    ) -> None:
        """Run loads or unloads one after another, or up to ``threads`` at once."""
        if threads <= 0 or len(jobs) < 2:
            for entry, record in jobs:
                work(entry, record)
            return
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tfserve-load") as pool:
            for future in [pool.submit(work, entry, record) for entry, record in jobs]:
                future.result()

    def _load(self, entry: ModelEntry, record: VersionRecord) -> None:
        name = entry.config.name
        self._registry.mark(entry, record, VersionState.LOADING)
        log.info("Loading servable version {name: %s version: %d}", name, record.version)
        started = time.monotonic()
        on_progress = self._on_progress

        def progress(stage: str, done: int, total: int) -> None:
            if on_progress is not None:
                on_progress(LoadProgress(name, record.version, stage, done, total))

        try:
            with reporting(progress):
                servable = self._loader(record.path)
        except Exception as exc:  # noqa: BLE001 - any loader failure is reported on the version, never fatal
            code = exc.code if isinstance(exc, TfServeError) else ErrorCode.UNKNOWN
            message = exc.message if isinstance(exc, TfServeError) else f"{type(exc).__name__}: {exc}"
            record.attempts += 1
            final = record.attempts > self._options.max_num_load_retries
            record.next_attempt_at = time.monotonic() + self._options.load_retry_interval_seconds
            self._registry.set_failed(entry, record, code, message, final=final)
            log.error(
                "Loading servable: {name: %s version: %d} failed: %s%s",
                name,
                record.version,
                message,
                "" if final else f" (retry {record.attempts} of {self._options.max_num_load_retries})",
            )
            return
        elapsed = time.monotonic() - started
        self._registry.set_servable(entry, record, servable, load_latency_s=elapsed)
        log.info("Successfully loaded servable version {name: %s version: %d}", name, record.version)

    def _unload(self, entry: ModelEntry, record: VersionRecord) -> None:
        if record.state is not VersionState.AVAILABLE:
            if record.state in (VersionState.START, VersionState.LOADING):
                self._registry.mark(entry, record, VersionState.END)
            return
        servable = self._registry.begin_unload(entry, record, self._options.unload_timeout_seconds)
        if servable is not None:
            try:
                servable.close()
            except Exception:
                log.exception("Closing %s version %d failed", entry.config.name, record.version)
        self._registry.mark(entry, record, VersionState.END)
        log.info("Done unloading servable version {name: %s version: %d}", entry.config.name, record.version)
