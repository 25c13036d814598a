"""``%tfserve`` and ``%%tfserve_config``: a thin layer over ``tfserve_lab.api``.

User errors print one line to stderr and return a falsy ``Failure``; they never
show a traceback.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from tfserve_lab import api
from tfserve_lab.config import ServerOptions, parse_model_server_config
from tfserve_lab.errors import TfServeError
from tfserve_lab.interpreter import DEFAULT_SWITCH_INTERVAL_S
from tfserve_lab.notebook import display
from tfserve_lab.notebook.progress import progress_display
from tfserve_lab.notebook.tensorboard import show_in_tensorboard
from tfserve_lab.results import AlreadyRunning, Started

__all__ = ["TfServeMagics"]


class UsageError(Exception):
    """A bad command line; its message is the one line to print."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, and prints help where asked."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            raise UsageError(message.strip())
        raise _HelpShown


class _HelpShown(Exception):
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


def _build_parser() -> _Parser:
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
    export.add_argument("--warmup", metavar="SAMPLE_VAR", help="sample input written as warmup records")

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
    # In %tfserve a label is a version label; the old name of --targets gets a pointer to the new one.
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
    capture.add_argument("--rate", type=float, default=1.0, help="fraction of requests kept")

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
    tune.add_argument("--allowed-batch-sizes", action="store_true", help="also try padding to fixed batch sizes")
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


@magics_class
class TfServeMagics(Magics):
    """The ``%tfserve`` line magic and the ``%%tfserve_config`` cell magic."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.parser = _build_parser()

    @line_magic
    def tfserve(self, line: str) -> Any:
        """Serve TensorFlow models from this notebook. ``%tfserve help`` lists the commands."""
        try:
            args = self.parser.parse_args(shlex.split(line))
        except _HelpShown:
            return None
        except (UsageError, ValueError) as exc:
            return self._fail(str(exc))
        command = args.command or "help"
        if command == "help":
            self.parser.print_help(sys.stdout)
            return None
        handler: Callable[[argparse.Namespace], Any] = getattr(self, f"_cmd_{command}")
        try:
            return handler(args)
        except (TfServeError, UsageError) as exc:
            return self._fail(exc.message if isinstance(exc, TfServeError) else str(exc))

    @cell_magic
    def tfserve_config(self, line: str, cell: str) -> Any:
        """Apply a ``model_config_list`` text proto to the running engine (a config reload)."""
        try:
            models = parse_model_server_config(cell, source="%%tfserve_config")
            api.current().reload(models)
        except TfServeError as exc:
            return self._fail(exc.message)
        return display.render_status(api.status())

    def _fail(self, message: str) -> display.Failure:
        print(f"tfserve: {message}", file=sys.stderr)
        return display.Failure(message)

    def _variable(self, name: str) -> Any:
        namespace = self.shell.user_ns if self.shell is not None else {}
        if name not in namespace:
            raise UsageError(f"name '{name}' is not defined in this notebook")
        return namespace[name]

    # -- subcommands -----------------------------------------------------------

    def _cmd_start(self, args: argparse.Namespace) -> Any:
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"tfserve: warning: binding {args.host} exposes the engine beyond this machine.", file=sys.stderr)
        options = ServerOptions(
            port=args.grpc_port,
            grpc_port_enabled=True,
            rest_api_port=args.rest_port,
            rest_api_enabled=True,
            host=args.host,
            enable_batching=bool(args.enable_batching or args.batching_parameters),
            batching_parameters_file=args.batching_parameters or "",
            monitoring_enabled=args.monitoring is None,
            monitoring_config_file=args.monitoring or "",
            file_system_poll_wait_seconds=args.poll,
            enable_profiler=args.profiler,
        )
        interval = args.switch_interval_ms / 1e3 if args.switch_interval_ms > 0 else None
        result = api.start(options=options, switch_interval_s=interval)
        if isinstance(result, (Started, AlreadyRunning)):
            return display.render_start(result)
        return self._fail(display.start_failure(result))

    def _cmd_stop(self, args: argparse.Namespace) -> Any:
        stopped = api.stop()
        print("tfserve engine stopped." if stopped else "tfserve engine was not running.")

    def _cmd_status(self, args: argparse.Namespace) -> Any:
        return display.render_status(api.status())

    def _cmd_export(self, args: argparse.Namespace) -> Any:
        model = self._variable(args.model_var)
        warmup = self._variable(args.warmup) if args.warmup else None
        with progress_display(f"Exporting {args.name}") as progress:
            result = api.export(
                model,
                args.name,
                models_dir=args.models_dir,
                base_path=args.base_path,
                version=args.version,
                warmup=warmup,
                progress=progress,
            )
        return display.render_export(result)

    def _cmd_inspect(self, args: argparse.Namespace) -> Any:
        info = api.inspect(args.target, version=args.version, models_dir=args.models_dir, base_path=args.base_path)
        return display.render_inspect(info)

    def _cmd_deploy(self, args: argparse.Namespace) -> Any:
        name = args.first
        if args.second is not None:
            # deploy MODEL_VAR NAME: export the live model as the next version, then serve it.
            name = args.second
            model = self._variable(args.first)
            with progress_display(f"Exporting {name}") as progress:
                api.export(model, name, models_dir=args.models_dir, base_path=args.base_path, progress=progress)
        with progress_display(f"Deploying {name}", quiet=args.no_wait) as progress:
            result = api.deploy(
                name,
                args.base_path,
                models_dir=args.models_dir,
                policy=args.policy,
                wait=not args.no_wait,
                progress=progress,
            )
        if result.warning:
            print(f"tfserve: {result.warning}", file=sys.stderr)
        return display.render_status(api.status())

    def _cmd_undeploy(self, args: argparse.Namespace) -> Any:
        api.undeploy(args.name, args.version)
        return display.render_status(api.status())

    def _cmd_label(self, args: argparse.Namespace) -> Any:
        labels: dict[str, int] = {}
        for item in args.assignments:
            key, sep, value = item.partition("=")
            if not sep or not key or not value.isdigit():
                raise UsageError(f"expected LABEL=VERSION, got {item!r}")
            labels[key] = int(value)
        api.label(args.name, labels)
        return display.render_status(api.status())

    def _cmd_predict(self, args: argparse.Namespace) -> Any:
        data = self._variable(args.data_var)
        return api.predict(args.name, data, version=args.version, label=args.label, signature=args.signature)

    def _cmd_split(self, args: argparse.Namespace) -> Any:
        if args.off:
            api.split(args.name, None)
            print(f"Split of {args.name} ended: unversioned requests go to the newest version.")
            return None
        if not args.weights:
            raise UsageError("give VERSION=PERCENT pairs, e.g. 1=90 2=10, or --off")
        weights: dict[int | str, int] = {}
        for item in args.weights:
            key, sep, value = item.partition("=")
            if not sep or not key or not value.isdigit():
                raise UsageError(f"expected VERSION=PERCENT, got {item!r}")
            weights[int(key) if key.isdigit() else key] = int(value)
        resolved = api.split(args.name, weights)
        total = sum(resolved.values())
        rows = [(version, weight, f"{100 * weight / total:.1f}%") for version, weight in sorted(resolved.items())]
        return display.Table(f"Traffic split of {args.name}", ("version", "weight", "share"), rows)

    def _cmd_shadow(self, args: argparse.Namespace) -> Any:
        if args.off == (args.candidate is not None):
            raise UsageError("give --candidate VERSION|LABEL to start shadowing, or --off to end it")
        if args.off:
            api.shadow(args.name, None)
            print(f"Shadowing of {args.name} ended.")
            return None
        candidate = int(args.candidate) if args.candidate.isdigit() else args.candidate
        version = api.shadow(args.name, candidate)
        print(f"Live traffic of {args.name} is copied to version {version}; its answers are recorded, not returned.")
        return None

    def _cmd_k8s(self, args: argparse.Namespace) -> Any:
        paths, instructions = api.k8s(
            args.name,
            out=args.out,
            replicas=args.replicas,
            gpu=args.gpu,
            namespace=args.namespace,
            image=args.image,
            model_uri=args.model_uri,
            kserve=args.kserve,
            batching_file=args.batching_file,
            target_rps=args.target_rps,
            capacity_rps=args.capacity_rps,
        )
        print(f"Wrote {len(paths)} files:")
        for path in paths:
            print(f"  {path}")
        print(instructions)
        return None

    def _cmd_compare(self, args: argparse.Namespace) -> Any:
        from tfserve_lab.notebook.compare import compare, compare_shadow

        if args.old_labels is not None:
            raise UsageError("compare --labels is now --targets (in %tfserve, labels are version labels)")
        if args.shadow:
            if args.name is None:
                raise UsageError("--shadow needs the model NAME")
            if args.a is not None or args.data is not None or args.targets is not None:
                raise UsageError("--shadow compares the recorded live traffic: give only NAME")
            return compare_shadow(args.name)
        if args.capture is not None:
            if args.name is None or args.a is None or args.b is None or args.data is not None:
                raise UsageError("give two versions and the capture: compare NAME A B --capture VAR")
            captured = self._variable(args.capture)
            a, b = (int(v) if v.isdigit() else v for v in (args.a, args.b))
            return compare(args.name, a, b, captured.inputs, batch_size=args.batch_size, live=captured.outputs)
        if args.a is None and args.b is None and args.data is None:
            from tfserve_lab.notebook.compare_widget import CompareWidget

            api.current()  # the widget lists the served models: the engine must run
            return CompareWidget(self.shell.user_ns, args.name)
        if args.name is None or args.a is None or args.b is None or args.data is None:
            raise UsageError("give two versions and the data: compare NAME A B --data VAR [--targets VAR]")
        data = self._variable(args.data)
        labels = self._variable(args.targets) if args.targets else None
        a, b = (int(v) if v.isdigit() else v for v in (args.a, args.b))
        return compare(
            args.name,
            a,
            b,
            data,
            labels,
            batch_size=args.batch_size,
            repeats=args.repeats,
        )

    def _cmd_bench(self, args: argparse.Namespace) -> Any:
        data = self._variable(args.data) if args.data else None
        replay = self._variable(args.replay) if args.replay else None
        default = () if args.rate or replay is not None else (1, 8, 32)
        concurrency = args.concurrency if args.concurrency is not None else default
        with progress_display(f"bench {args.name}") as progress:
            return api.bench(
                args.name,
                concurrency=concurrency,
                rate=args.rate,
                protocol=args.protocol,
                seconds=args.seconds,
                warmup=args.warmup,
                rows=args.rows,
                data=data,
                version=args.version,
                progress=lambda text: progress(text, None),
                replay=replay,
            )

    def _cmd_capture(self, args: argparse.Namespace) -> Any:
        with progress_display(f"capture {args.name}") as progress:
            return api.capture(args.name, seconds=args.seconds, count=args.count, rate=args.rate, progress=progress)

    def _cmd_batching(self, args: argparse.Namespace) -> Any:
        fields = {
            "max_batch_size": args.max_batch_size,
            "batch_timeout_micros": args.batch_timeout_micros,
            "num_batch_threads": args.num_batch_threads,
            "max_enqueued_batches": args.max_enqueued_batches,
            "allowed_batch_sizes": args.allowed_batch_sizes,
        }
        given = {k: v for k, v in fields.items() if v is not None}
        if sum(bool(x) for x in (args.off, args.file, given)) > 1:
            raise UsageError("give --file, field flags (--max-batch-size ...) or --off, not several")
        if args.off:
            config = api.set_batching(args.name, None)
        elif args.file:
            with open(args.file, encoding="utf-8") as handle:
                config = api.set_batching(args.name, handle.read())
        elif given:
            current = api.batching(args.name)
            base = {} if current is None else {f: getattr(current, f) for f in fields}
            config = api.set_batching(args.name, {**base, **given})
        else:
            config = api.batching(args.name)
        return display.render_batching(args.name, config)

    def _cmd_tune(self, args: argparse.Namespace) -> Any:
        data = self._variable(args.data) if args.data else None
        with progress_display(f"tune {args.name}") as progress:
            result = api.tune(
                args.name,
                slo_p99_ms=args.slo_p99_ms,
                concurrency=args.concurrency,
                protocol=args.protocol,
                rows=args.rows,
                data=data,
                budget_s=args.budget,
                seconds=args.seconds,
                allowed_batch_sizes=args.allowed_batch_sizes,
                progress=lambda text: progress(text, None),
            )
        if args.write:
            if result.best is None:
                print(f"tfserve: {result.summary()} Nothing written to {args.write}.", file=sys.stderr)
            else:
                result.write(args.write)
        return result

    def _cmd_profile(self, args: argparse.Namespace) -> Any:
        data = self._variable(args.data) if args.data else None
        result = api.profile(
            args.name,
            seconds=args.seconds,
            logdir=args.logdir,
            concurrency=args.concurrency,
            protocol=args.protocol,
            rows=args.rows,
            data=data,
        )
        show_in_tensorboard(result.logdir)
        return result

    def _cmd_dashboard(self, args: argparse.Namespace) -> Any:
        from tfserve_lab.notebook.dashboard import Dashboard

        return Dashboard(args.name)
