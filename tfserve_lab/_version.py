"""The package version, in one place (labextension/package.json must match; a test checks)."""

__version__ = "0.1.0"
