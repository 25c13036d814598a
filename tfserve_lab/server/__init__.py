"""The serving session: one engine with its REST and gRPC servers, built from TF Serving's flags.

``options`` resolves the flags; ``session`` runs what they resolve to.
"""

from tfserve_lab.server.options import default_loader, resolve_options
from tfserve_lab.server.session import ServingSession

__all__ = ["ServingSession", "default_loader", "resolve_options"]
