"""The REST server's flags (timeout, CORS, body limit, bearer token) and the CORS headers they call for."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DRAIN_FACTOR", "RestOptions", "cors_headers"]

# A body declared over the limit is still read (and dropped) up to this many times the limit, so the
# client reads the 413 instead of a reset connection; past that the connection is simply closed.
DRAIN_FACTOR = 4


@dataclass(frozen=True)
class RestOptions:
    """REST flags: timeout, CORS, body size limit, bearer token."""

    timeout_ms: int = 30000
    enable_cors: bool = False
    max_body_bytes: int = 64 * 1024 * 1024
    auth_token: str = ""


def cors_headers(options: RestOptions) -> tuple[tuple[str, str], ...]:
    """The CORS headers every answer carries with ``--rest_api_enable_cors_support`` (none without it)."""
    if not options.enable_cors:
        return ()
    allowed = "Content-Type, Authorization" if options.auth_token else "Content-Type"
    return (
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Methods", "POST, GET"),
        ("Access-Control-Allow-Headers", allowed),
    )
