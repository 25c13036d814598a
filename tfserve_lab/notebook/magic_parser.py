"""The ``%tfserve`` command line: every command's arguments and help, parsed without exiting the kernel."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from tfserve_lab import api
from tfserve_lab.interpreter import DEFAULT_SWITCH_INTERVAL_S

__all__ = ["HelpShown", "UsageError", "build_parser"]


class UsageError(Exception):
    """A bad command line; its message is the one line to print."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, and prints help where asked."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            raise UsageError(message.strip())
        raise HelpShown


class HelpShown(Exception):
    """--help was printed; nothing else to do."""


_VOCABULARY = """words used by every command:
  NAME         a served model's name (the URL's /v1/models/NAME)
  VERSION      a version number; LABEL: a version label (stable, canary), TF Serving's version_labels
  --base-path  TF Serving's base_path: the folder holding a model's numeric version folders (models/NAME)
  --models-dir the folder holding one base path per model (default: models)
  --version / --label   which version a command acts on
use %tfserve COMMAND --help for a command's flags"""


def _numbers(kind: type) -> Callable[[str], tuple[Any, ...]]:
    def parse(text: str) -> tuple[Any, ...]:
        try:
            return tuple(kind(item) for item in text.split(",") if item.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None

    return parse


def _add_load_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", choices=("rest", "grpc"), default="rest")
    parser.add_argument("--rows", type=int, default=1, help="rows per request")
    parser.add_argument(
        "--data", metavar="VAR", help="variable holding what to send (default: made from the signature)"
    )


def _add_repository_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models-dir", default=api.MODELS_DIR, help="the folder holding one base path per model (default: models)"
    )
    parser.add_argument(
        "--base-path",
        help="TF Serving's base_path: the folder holding the numeric version folders (default: MODELS_DIR/NAME)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser of every ``%tfserve`` command; it raises ``UsageError`` or ``HelpShown`` instead of exiting."""
    parser = _Parser(
        prog="%tfserve",
        description="Serve TensorFlow models from this notebook, TF Serving-compatible.",
        epilog=_VOCABULARY,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    start = commands.add_parser("start", help="start the serving engine in this kernel")
    start.add_argument("--rest-port", type=int, default=8501, help="REST port (0 picks a free one)")
    start.add_argument("--grpc-port", type=int, default=8500, help="gRPC port (0 picks a free one)")
    start.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 exposes the engine)")
    start.add_argument("--enable-batching", action="store_true", help="batch requests on the server")
    start.add_argument("--batching-parameters", metavar="FILE", help="BatchingParameters text proto")
    start.add_argument("--monitoring", metavar="FILE", help="MonitoringConfig text proto (default: on, standard path)")
    start.add_argument("--poll", type=float, default=1.0, help="seconds between model repository polls")
    start.add_argument(
        "--profiler", action="store_true", help="answer TensorFlow's profiler on the gRPC port (TensorBoard Profile)"
    )
    start.add_argument(
        "--switch-interval-ms",
        type=float,
        default=DEFAULT_SWITCH_INTERVAL_S * 1e3,
        help="the interpreter's GIL switch interval while the engine runs, so a busy cell cannot stall it "
        "(0 leaves Python's own, 5 ms)",
    )

    commands.add_parser("stop", help="stop the engine")
    commands.add_parser("status", help="engine, models, versions, states and labels")
    commands.add_parser("help", help="this help")

    export = commands.add_parser("export", help="write a Keras/TF model as the next SavedModel version")
    export.add_argument("model_var", metavar="MODEL_VAR")
    export.add_argument("name", metavar="NAME")
    _add_repository_flags(export)
    export.add_argument("--version", type=int)
    export.add_argument("--warmup-data", metavar="SAMPLE_VAR", help="variable holding inputs written as warmup records")

    inspect = commands.add_parser("inspect", help="tag sets and signatures of a SavedModel")
    inspect.add_argument("target", metavar="NAME|PATH", help="a model name, a base path or a SavedModel folder")
    inspect.add_argument("--version", type=int)
    _add_repository_flags(inspect)

    deploy = commands.add_parser("deploy", help="serve a model repository, or a live Keras model")
    deploy.add_argument("first", metavar="NAME|MODEL_VAR")
    deploy.add_argument("second", nargs="?", metavar="NAME")
    _add_repository_flags(deploy)
    deploy.add_argument("--policy", help="latest:N, all or specific:V1,V2")
    deploy.add_argument("--no-wait", action="store_true", help="return at once instead of waiting for AVAILABLE")

    undeploy = commands.add_parser("undeploy", help="stop serving a model or one version")
    undeploy.add_argument("name", metavar="NAME")
    undeploy.add_argument("--version", type=int)

    label = commands.add_parser("label", help="point labels at versions: stable=1 canary=2")
    label.add_argument("name", metavar="NAME")
    label.add_argument("assignments", nargs="+", metavar="LABEL=VERSION")

    predict = commands.add_parser("predict", help="run a model on a variable's data")
    predict.add_argument("name", metavar="NAME")
    predict.add_argument("data_var", metavar="DATA_VAR")
    which = predict.add_mutually_exclusive_group()
    which.add_argument("--version", type=int)
    which.add_argument("--label")
    predict.add_argument("--signature", default="")

    split = commands.add_parser(
        "split",
        help="route unversioned traffic by weight: 1=90 2=10 (or labels)",
        description="Route requests that name no version by weight. A 'model-version' HTTP header (or gRPC "
        "metadata key) still pins a version ahead of the split, as the TF Serving tutorial's Istio rule does: "
        "'model-version: v1' (or 1, V1, or a label such as canary).",
        epilog="example: %tfserve split my_model 1=90 2=10, then curl -H 'model-version: v1' "
        "-d '{\"instances\": [[1.0]]}' localhost:8501/v1/models/my_model:predict is always served by version 1",
    )
    split.add_argument("name", metavar="NAME")
    split.add_argument("weights", nargs="*", metavar="VERSION=PERCENT")
    split.add_argument("--off", action="store_true", help="end the split")

    shadow = commands.add_parser("shadow", help="copy live traffic to a candidate version and record its answers")
    shadow.add_argument("name", metavar="NAME")
    shadow.add_argument("--candidate", metavar="VERSION|LABEL", help="the version that gets the copies")
    shadow.add_argument("--off", action="store_true", help="end shadowing")

    k8s = commands.add_parser("k8s", help="write Kubernetes manifests running this config on tensorflow/serving")
    k8s.add_argument("name", nargs="?", metavar="NAME")
    k8s.add_argument("--replicas", type=int, default=1)
    k8s.add_argument("--gpu", action="store_true")
    k8s.add_argument("--namespace", default="ml-serving")
    k8s.add_argument("--image")
    k8s.add_argument("--out")
    k8s.add_argument("--model-uri", default="pvc://models")
    k8s.add_argument("--kserve", action="store_true")
    k8s.add_argument("--batching-file", metavar="PBTXT", help="batching for the pods (default: as served now)")
    k8s.add_argument("--target-rps", type=float, help="requests/s the fleet must carry: sets replicas and the HPA")
    k8s.add_argument("--capacity-rps", type=float, help="requests/s one replica sustains (default: the last tune's)")

    compare = commands.add_parser("compare", help="compare two versions on the same data, or over shadow traffic")
    compare.add_argument("name", nargs="?", metavar="NAME", help="without A, B and --data: the compare widget")
    # A and B are optional only so that `compare NAME --shadow` parses; _cmd_compare requires them otherwise.
    compare.add_argument("a", nargs="?", metavar="A", help="version or label")
    compare.add_argument("b", nargs="?", metavar="B", help="version or label")
    compare.add_argument("--data", metavar="VAR", help="variable holding the inputs")
    compare.add_argument("--targets", metavar="VAR", help="variable holding the true classes or values")
    # In %tfserve a label is a version label: --labels, given for the targets, answers with a pointer to --targets.
    compare.add_argument("--labels", dest="old_labels", metavar="VAR", help=argparse.SUPPRESS)
    compare.add_argument("--batch-size", type=int, default=256)
    compare.add_argument("--repeats", type=int, default=1, help="calls per batch and version (latency samples)")
    compare.add_argument("--shadow", action="store_true", help="report over the recorded shadow traffic")
    compare.add_argument(
        "--capture", metavar="CAPTURE_VAR", help="both versions on a capture's inputs, against its live answers"
    )

    bench = commands.add_parser("bench", help="load-test a served model from processes of their own")
    bench.add_argument("name", metavar="NAME")
    bench.add_argument("--concurrency", type=_numbers(int), help="closed-loop levels, e.g. 1,8,32 (default 1,8,32)")
    bench.add_argument("--rate", type=_numbers(float), default=(), help="open-loop levels in requests/s, e.g. 500,2000")
    _add_load_flags(bench)
    bench.add_argument("--seconds", type=float, default=5.0, help="length of a measured window")
    bench.add_argument("--warmup", type=float, default=1.0, help="seconds of load before a level's first window")
    bench.add_argument("--version", type=int, help="pin a version")
    bench.add_argument("--replay", metavar="CAPTURE_VAR", help="send a capture's requests, at their rate or --rate")

    capture = commands.add_parser("capture", help="collect a served model's live requests and answers")
    capture.add_argument("name", metavar="NAME")
    capture.add_argument("--seconds", type=float, default=30.0, help="how long to listen")
    capture.add_argument("--count", type=int, help="stop after this many requests")
    capture.add_argument(
        "--sampling-rate", type=float, default=1.0, help="fraction of requests kept (logging_config's sampling_rate)"
    )

    batching = commands.add_parser("batching", help="show or change a model's batching parameters while it serves")
    batching.add_argument("name", metavar="NAME")
    batching.add_argument("--file", metavar="PBTXT", help="a BatchingParameters text proto")
    batching.add_argument("--max-batch-size", type=int)
    batching.add_argument("--batch-timeout-micros", type=int)
    batching.add_argument("--num-batch-threads", type=int)
    batching.add_argument("--max-enqueued-batches", type=int)
    batching.add_argument("--allowed-batch-sizes", type=_numbers(int), metavar="8,16,32")
    batching.add_argument("--off", action="store_true", help="back to the options the engine started with")

    tune = commands.add_parser("tune", help="search batching parameters for the most throughput within a p99 SLO")
    tune.add_argument("name", metavar="NAME")
    tune.add_argument("--slo-p99-ms", type=float, required=True, help="the p99 latency a setting must meet")
    tune.add_argument("--concurrency", type=int, default=32, help="closed-loop clients of the load to tune for")
    _add_load_flags(tune)
    tune.add_argument("--budget", type=float, default=120.0, help="seconds the search may take")
    tune.add_argument("--seconds", type=float, default=2.0, help="window length of each trial")
    tune.add_argument(
        "--try-allowed-batch-sizes", action="store_true", help="also try padding to fixed allowed_batch_sizes"
    )
    tune.add_argument("--write", metavar="PBTXT", help="write the best setting here (a --batching_parameters_file)")

    profile = commands.add_parser("profile", help="a TensorFlow profiler trace of the engine under bench load")
    profile.add_argument("name", metavar="NAME")
    profile.add_argument("--seconds", type=float, default=2.0)
    profile.add_argument("--logdir", default="profiles", help="where TensorBoard reads the trace")
    profile.add_argument("--concurrency", type=int, default=8)
    _add_load_flags(profile)

    dashboard = commands.add_parser("dashboard", help="live charts and controls for the served models")
    dashboard.add_argument("name", nargs="?", metavar="NAME")
    return parser
