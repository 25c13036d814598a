"""``tfserve-lab serve``: a drop-in for ``tensorflow_model_server`` with its flags."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Sequence

from tfserve_lab._version import __version__
from tfserve_lab.errors import ConfigError
from tfserve_lab.flags import parse_flags, usage
from tfserve_lab.results import LoadFailed, PortInUse, Started

__all__ = ["main"]

_COMMANDS = "usage: tfserve-lab serve [--flag=value ...] | tfserve-lab k8s [options] | tfserve-lab --version"


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s.%(msecs)03d %(levelname).1s %(name)s] %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
    )


def _tensorflow_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tensorflow")
    except PackageNotFoundError:
        return "unknown"


def serve(argv: Sequence[str]) -> int:
    """Run the server until SIGINT or SIGTERM; returns the exit status."""
    if any(a in ("--help", "-h", "--helpfull") for a in argv):
        print(usage())
        return 0
    if any(a in ("--version", "--version=true") for a in argv):
        print(f"TensorFlow ModelServer: tfserve-lab {__version__}\nTensorFlow Library: {_tensorflow_version()}")
        return 0
    try:
        options = parse_flags(argv)
        if not options.model_config_file and not options.model_base_path:
            raise ConfigError("Both server_options.model_base_path and server_options.model_config_file are empty!")
    except ConfigError as exc:
        print(f"tfserve-lab: {exc.message}", file=sys.stderr)
        return 2
    _configure_logging()
    from tfserve_lab.server import ServingSession

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    session = ServingSession(options, freeze_heap=True)  # this process is the server: its heap is the models'
    result = session.start()
    if isinstance(result, PortInUse):
        print(f"tfserve-lab: {result.message}", file=sys.stderr)
        return 1
    if isinstance(result, LoadFailed):
        print(f"tfserve-lab: {result.error}", file=sys.stderr)
        return 1
    assert isinstance(result, Started)
    try:
        stop.wait()
    finally:
        logging.getLogger("tfserve_lab").info("Shutting down")
        session.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tfserve-lab`` command."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_COMMANDS)
        return 0 if args else 2
    if args[0] == "--version":
        print(f"tfserve-lab {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command == "serve":
        return serve(rest)
    if command == "k8s":
        from tfserve_lab.deploy.cli import k8s_main

        return k8s_main(rest)
    print(f"tfserve-lab: unknown command {command!r}\n{_COMMANDS}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
