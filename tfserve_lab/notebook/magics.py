"""``%tfserve`` and ``%%tfserve_config``: each command a thin call of ``tfserve_lab.api``, its result rendered.

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
from tfserve_lab.notebook import display
from tfserve_lab.notebook.magic_parser import HelpShown, UsageError, build_parser
from tfserve_lab.notebook.progress import progress_display
from tfserve_lab.notebook.tensorboard import show_in_tensorboard
from tfserve_lab.results import AlreadyRunning, Started

__all__ = ["TfServeMagics"]


@magics_class
class TfServeMagics(Magics):
    """The ``%tfserve`` line magic and the ``%%tfserve_config`` cell magic."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.parser = build_parser()

    @line_magic
    def tfserve(self, line: str) -> Any:
        """Serve TensorFlow models from this notebook. ``%tfserve help`` lists the commands."""
        try:
            args = self.parser.parse_args(shlex.split(line))
        except HelpShown:
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
            status = api.reload(models)
        except TfServeError as exc:
            return self._fail(exc.message)
        return display.render_status(status)

    def _fail(self, message: str) -> display.Failure:
        print(f"tfserve: {message}", file=sys.stderr)
        return display.Failure(message)

    def _namespace(self) -> dict[str, Any]:
        """The notebook's variables (none outside a shell)."""
        return self.shell.user_ns if self.shell is not None else {}

    def _variable(self, name: str) -> Any:
        namespace = self._namespace()
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
        warmup = self._variable(args.warmup_data) if args.warmup_data else None
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
        api.label(args.name, api.parse_labels(args.assignments))
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
        resolved = api.split(args.name, api.parse_weights(args.weights))
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
        version = api.shadow(args.name, args.candidate)
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
            return compare(
                args.name, args.a, args.b, captured.inputs, batch_size=args.batch_size, live=captured.outputs
            )
        if args.a is None and args.b is None and args.data is None:
            from tfserve_lab.notebook.compare_widget import CompareWidget

            api.current()  # the widget lists the served models: the engine must run
            return CompareWidget(self._namespace(), args.name)
        if args.name is None or args.a is None or args.b is None or args.data is None:
            raise UsageError("give two versions and the data: compare NAME A B --data VAR [--targets VAR]")
        data = self._variable(args.data)
        targets = self._variable(args.targets) if args.targets else None
        return compare(args.name, args.a, args.b, data, targets, batch_size=args.batch_size, repeats=args.repeats)

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
            return api.capture(
                args.name, seconds=args.seconds, count=args.count, rate=args.sampling_rate, progress=progress
            )

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
                allowed_batch_sizes=args.try_allowed_batch_sizes,
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
