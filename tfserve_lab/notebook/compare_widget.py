"""The compare widget: pick a model, two versions and data variables from lists, then run the report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
import numpy as np
from IPython.display import display

from tfserve_lab import api
from tfserve_lab.errors import TfServeError
from tfserve_lab.notebook.compare import CompareReport, compare

__all__ = ["CompareWidget"]

_NONE = "(none)"


def _array_variables(namespace: Mapping[str, Any]) -> list[str]:
    """Names of the notebook's arrays (and dicts of arrays) that can feed a model, sorted."""
    names = []
    for name, value in namespace.items():
        if name.startswith("_"):
            continue
        if isinstance(value, np.ndarray) or (
            isinstance(value, Mapping) and value and all(isinstance(v, np.ndarray) for v in value.values())
        ):
            names.append(name)
    return sorted(names)


class CompareWidget(widgets.VBox):
    """Dropdowns for model, versions A and B, data and labels; Run shows the compare report below."""

    def __init__(self, namespace: Mapping[str, Any], model: str | None = None) -> None:
        self._namespace = namespace
        self.model = widgets.Dropdown(description="Model")
        self.version_a = widgets.Dropdown(description="A")
        self.version_b = widgets.Dropdown(description="B")
        self.data = widgets.Dropdown(description="Data")
        self.labels = widgets.Dropdown(description="Labels")
        self.run_button = widgets.Button(description="Compare", button_style="primary")
        self.message = widgets.HTML()
        self.output = widgets.Output()
        self.report: CompareReport | None = None
        self.model.observe(lambda _: self._fill_versions(), names="value")
        self.run_button.on_click(lambda _: self.run())
        super().__init__(
            [
                widgets.HBox([self.model, self.version_a, self.version_b]),
                widgets.HBox([self.data, self.labels, self.run_button]),
                self.message,
                self.output,
            ]
        )
        self.refresh(model)

    def refresh(self, model: str | None = None) -> None:
        """Re-read the served models and the notebook's variables."""
        models = [m.name for m in api.status().models]
        self.model.options = models
        if model in models:
            self.model.value = model
        variables = _array_variables(self._namespace)
        self.data.options = variables
        self.labels.options = [_NONE, *variables]
        self._fill_versions()

    def _fill_versions(self) -> None:
        status = next((m for m in api.status().models if m.name == self.model.value), None)
        choices: list[tuple[str, int | str]] = []
        if status is not None:
            served = [v.version for v in status.versions if v.state.name == "AVAILABLE"]
            choices = [(str(v), v) for v in sorted(served)]
            choices += [(f"{label} (v{v})", label) for label, v in sorted(status.labels.items())]
        self.version_a.options = choices
        self.version_b.options = choices
        if len(choices) >= 2:
            self.version_a.value, self.version_b.value = choices[0][1], choices[1][1]

    def run(self) -> CompareReport | None:
        """Run the report for the current choices; a user error shows as one line."""
        self.message.value = ""
        if self.model.value is None or self.data.value is None or self.version_a.value is None:
            self.message.value = "<span style='color:#b00'>Pick a model, two versions and a data variable.</span>"
            return None
        labels = None if self.labels.value in (None, _NONE) else self._namespace[self.labels.value]
        try:
            report = compare(
                self.model.value, self.version_a.value, self.version_b.value, self._namespace[self.data.value], labels
            )
        except (TfServeError, KeyError, ValueError) as exc:
            text = exc.message if isinstance(exc, TfServeError) else str(exc)
            self.message.value = f"<span style='color:#b00'>{text}</span>"
            return None
        self.report = report
        self.output.clear_output()
        with self.output:
            display(report)
        return report
