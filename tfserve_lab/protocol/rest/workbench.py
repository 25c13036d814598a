"""tfserve-lab's own REST routes beside TF Serving's: engine summary, live stats, unload.

The JupyterLab panel reaches these through the Jupyter server's proxy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import tornado.web

from tfserve_lab.core.engine import Engine
from tfserve_lab.errors import ErrorCode, TfServeError
from tfserve_lab.protocol.rest import codec
from tfserve_lab.protocol.rest.http_status import HTTP_STATUS

__all__ = ["StatsHandler", "SummaryHandler", "UnloadHandler", "engine_summary"]


def engine_summary(engine: Engine, splits: Callable[[str], dict[int, int]] | None = None) -> dict[str, Any]:
    """Models with their repository, policy, labels, split weights and version states."""
    models = []
    for model in engine.models():
        try:
            statuses = engine.status(model.name)
        except TfServeError:
            statuses = []
        models.append(
            {
                "name": model.name,
                "base_path": model.base_path,
                "policy": model.version_policy.describe(),
                "labels": dict(model.version_labels),
                "split": {str(v): w for v, w in (splits(model.name) if splits else {}).items()},
                "versions": [{"version": s.version, "state": s.state.name, "error": s.error_message} for s in statuses],
            }
        )
    return {"models": models}


class _JsonHandler(tornado.web.RequestHandler):
    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")

    def fail(self, exc: TfServeError) -> None:
        self.set_status(HTTP_STATUS.get(exc.code, 500))
        self.finish(codec.encode_error(exc.message))


class SummaryHandler(_JsonHandler):
    """GET /tfserve-lab/summary."""

    def initialize(self, summary: Callable[[], Mapping[str, Any]]) -> None:
        self.summary = summary

    def get(self) -> None:
        self.finish(orjson.dumps(self.summary()))


class StatsHandler(_JsonHandler):
    """GET /tfserve-lab/stats: the rolling statistics snapshot."""

    def initialize(self, stats: Callable[[], Mapping[str, Any]]) -> None:
        self.stats = stats

    def get(self) -> None:
        self.finish(orjson.dumps(self.stats(), option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY))


class UnloadHandler(_JsonHandler):
    """POST /tfserve-lab/models/NAME/versions/N/unload."""

    def initialize(self, unload: Callable[[str, int], None]) -> None:
        self.unload = unload

    async def post(self, name: str, version: str) -> None:
        try:
            # Unloading waits for requests in flight: off the loop.
            await asyncio.get_running_loop().run_in_executor(None, self.unload, name, int(version))
        except TfServeError as exc:
            self.fail(exc)
            return
        except ValueError:
            self.fail(TfServeError(f"Bad version {version!r}", code=ErrorCode.INVALID_ARGUMENT))
            return
        self.finish(orjson.dumps({"unloaded": True}))
