"""``tfserve-lab k8s``: write Kubernetes manifests for real TF Serving from a model config."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from tfserve_lab.batching_params import read_batching_parameters
from tfserve_lab.config import ModelConfig, read_model_server_config
from tfserve_lab.deploy.kubernetes import DEFAULT_MONITORING_PATH, render_manifests, write_manifests
from tfserve_lab.deploy.options import K8sOptions, TrafficSplit, dns_label
from tfserve_lab.deploy.storage import copy_instructions
from tfserve_lab.errors import ConfigError

__all__ = ["k8s_main"]

_PROG = "tfserve-lab k8s"


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    # argparse prints usage plus the error and exits; we want one line and a return code.
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=_PROG,
        description="Write Kubernetes manifests that run these models on the official tensorflow/serving image.",
    )
    parser.add_argument("name", nargs="?", help="Deployment/Service name (default: the model's name, DNS-safe)")
    parser.add_argument("--model_config_file", "--model-config-file", help="ModelServerConfig text proto")
    parser.add_argument("--model_name", "--model-name", default="default", help="with --model_base_path")
    parser.add_argument("--model_base_path", "--model-base-path", help="local folder of version folders")
    parser.add_argument(
        "--batching_parameters_file", "--batching-parameters-file", help="BatchingParameters text proto"
    )
    parser.add_argument("--monitoring-path", default=DEFAULT_MONITORING_PATH, help="Prometheus metrics path")
    parser.add_argument("--no-monitoring", action="store_true", help="no monitoring config or scrape annotations")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--min-replicas", type=int, help="autoscaler floor (default: --replicas)")
    parser.add_argument("--max-replicas", type=int, help="autoscaler ceiling (default: 3 x --replicas)")
    parser.add_argument("--gpu", action="store_true", help="the -gpu image with nvidia.com/gpu limits")
    parser.add_argument("--namespace", default="ml-serving")
    parser.add_argument("--image", help="TF Serving image (default tensorflow/serving:2.21.0[-gpu])")
    parser.add_argument(
        "--model-uri", "--model_uri", default="pvc://models", help="pvc://CLAIM[/P], gs://B[/P], s3://B[/P]"
    )
    parser.add_argument("--kserve", action="store_true", help="also write KServe InferenceServices")
    parser.add_argument("--no-istio", action="store_true", help="no DestinationRule/VirtualService (no splits)")
    parser.add_argument("--split", action="append", default=[], metavar="MODEL:V=PCT,...", help="e.g. m:1=90,2=10")
    parser.add_argument("--no-header-routes", action="store_true", help="no model-version header routes")
    parser.add_argument("--out", help="output folder (default: ./k8s-NAME)")
    return parser


def _models(args: argparse.Namespace) -> tuple[ModelConfig, ...]:
    if args.model_config_file and args.model_base_path:
        raise _UsageError("give --model_config_file or --model_base_path, not both")
    if args.model_config_file:
        return read_model_server_config(args.model_config_file)
    if args.model_base_path:
        return (ModelConfig(args.model_name, args.model_base_path),)
    raise _UsageError("give --model_config_file F or --model_name N --model_base_path P")


def k8s_main(argv: Sequence[str]) -> int:
    """Run ``tfserve-lab k8s``; returns the exit status (2 for bad arguments or config, 1 for I/O errors)."""
    try:
        args = _parser().parse_args(list(argv))
        models = _models(args)
        name = args.name or (dns_label(models[0].name) if len(models) == 1 else None)
        if not name:
            raise _UsageError("several models: give the Deployment NAME")
        options = K8sOptions(
            name=name,
            namespace=args.namespace,
            replicas=args.replicas,
            gpu=args.gpu,
            image=args.image,
            model_uri=args.model_uri,
            min_replicas=args.min_replicas,
            max_replicas=args.max_replicas,
            kserve=args.kserve,
            istio=not args.no_istio,
        )
        splits = [TrafficSplit.parse(s, header_routes=not args.no_header_routes) for s in args.split]
        manifests = render_manifests(
            models,
            options,
            batching=read_batching_parameters(args.batching_parameters_file) if args.batching_parameters_file else None,
            monitoring_path=None if args.no_monitoring else args.monitoring_path,
            splits=splits,
        )
        out = args.out or f"k8s-{name}"
        paths = write_manifests(manifests, out)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except _UsageError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"{_PROG}: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{_PROG}: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"Wrote {len(paths)} files to {out}:")
    for path in paths:
        print(f"  {path}")
    print(f"Apply with: kubectl apply -f {out}/all.yaml\n")
    print(copy_instructions(models, options.model_uri, namespace=options.namespace), end="")
    return 0
