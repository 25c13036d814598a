"""The text forms of versions that people type: a version or a label, ``VERSION=PERCENT`` and ``LABEL=VERSION``.

Magics, the dashboard, ``tfserve-lab k8s --split`` and the facade all read
these forms here, so one spelling is accepted (and refused) everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable

from tfserve_lab.errors import InvalidArgument

__all__ = ["LABELS_FORM", "WEIGHTS_FORM", "VersionSyntaxError", "parse_labels", "parse_weights", "version_or_label"]

WEIGHTS_FORM = "VERSION=PERCENT"
LABELS_FORM = "LABEL=VERSION"
_EXAMPLES = {WEIGHTS_FORM: "1=90 2=10", LABELS_FORM: "stable=1 canary=2"}


class VersionSyntaxError(InvalidArgument):
    """A piece of text that is not of the form asked for (``form``); ``item`` is the piece."""

    def __init__(self, form: str, item: str) -> None:
        super().__init__(f"Expected {form}, got {item!r} (as in {_EXAMPLES[form]}).")
        self.form = form
        self.item = item


def version_or_label(text: str) -> int | str:
    """A version number for a string of digits; any other text is a version label."""
    return int(text) if text.isdigit() else text


def _assignment(item: str, form: str) -> tuple[str, int]:
    """``KEY=NUMBER`` as its two sides; the number is digits only (no sign, no spaces)."""
    key, sep, value = item.partition("=")
    if not sep or not key or not value.isdigit():
        raise VersionSyntaxError(form, item)
    return key, int(value)


def _items(text: str | Iterable[str]) -> Iterable[str]:
    # One string holds pairs apart by spaces or commas; a sequence (argv) holds one pair per item.
    return text.replace(",", " ").split() if isinstance(text, str) else text


def parse_weights(text: str | Iterable[str]) -> dict[int | str, int]:
    """Split weights by version or label: ``"1=90 2=10"``, ``"stable=90,canary=10"`` or ``["1=90", "2=10"]``.

    Returns:
        Percent by version number (digits) or label (anything else); empty for empty text.

    Raises:
        VersionSyntaxError: For a piece that is not ``VERSION=PERCENT``.
    """
    weights: dict[int | str, int] = {}
    for item in _items(text):
        key, weight = _assignment(item, WEIGHTS_FORM)
        weights[version_or_label(key)] = weight
    return weights


def parse_labels(text: str | Iterable[str]) -> dict[str, int]:
    """Version labels: ``"stable=1 canary=2"`` or ``["stable=1", "canary=2"]``.

    Raises:
        VersionSyntaxError: For a piece that is not ``LABEL=VERSION``.
    """
    return dict(_assignment(item, LABELS_FORM) for item in _items(text))
