"""tfserve-lab: a TensorFlow Serving workbench for Jupyter.

Importing the package is light: TensorFlow, tornado and grpc load only when
an engine starts.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
