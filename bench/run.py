"""Run the whole benchmark: anchors, naive baselines and the engine, side by side, repeated.

    python -m bench.run [--quick] [--repeats N] [--seconds S] [--profile]

Every server runs as its own process on free loopback ports and the load generator as another
(``bench.loadgen``). For each model the servers start together and stay up; each repeat then runs
every scenario once, in turn, so the noise of a shared machine spreads over all of them. Writes
``bench/results/<timestamp>.json`` (everything, git-ignored) and ``bench/RESULTS.md`` (medians over
the repeats, ratios to the anchors, PASS/FAIL per goal; ``--quick`` writes ``bench/results/quick.md``
instead). ``--profile`` also samples the engine with py-spy under the seed load (R=1, C=32) on REST
and gRPC and lists its hot spots.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.models import MODELS, model_dir
from bench.profile import summarize_profile

__all__ = ["main"]

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
ROOT = BENCH_DIR.parent
PYTHON = sys.executable

# The load of each model: rows a request (R) and concurrent clients (C).
LOADS: dict[str, tuple[int, int]] = {"seed": (1, 32), "mlp": (32, 8)}
# engine+batching's --batching_parameters_file for each model, tuned to its load as TF Serving's batching
# guide says to tune: seed's batch holds every client (max_batch_size = C) and its timeout outlasts the time
# the loop takes to read all C requests, so a batch closes when full; mlp's max_batch_size lets the R=32
# requests of several clients merge (a single R=32 request fills a max_batch_size of 32).
BATCHING_PARAMETERS: dict[str, str] = {
    "seed": "max_batch_size { value: 32 }\nbatch_timeout_micros { value: 5000 }\n"
    "num_batch_threads { value: 2 }\nmax_enqueued_batches { value: 1000 }\n",
    "mlp": "max_batch_size { value: 256 }\nbatch_timeout_micros { value: 2000 }\n"
    "num_batch_threads { value: 2 }\nmax_enqueued_batches { value: 1000 }\n",
}
REFERENCE_STDLIB_REQ_S = 118.0  # the stdlib-json tornado decode of 32x784 instances on this machine


@dataclass
class Server:
    """One server process and the protocols it answers."""

    name: str
    model: str
    command: list[str]
    ports: dict[str, int]  # protocol -> port
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def cpu_seconds(self) -> float:
        """User + system CPU of the process (all its threads) so far."""
        assert self.process is not None
        with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Scenario:
    """A server, a protocol and a load: one row of the table."""

    server: Server
    protocol: str
    rows: int
    concurrency: int
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.server.model}/{self.protocol}/{self.server.name}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _servers(model: str, work: Path) -> list[Server]:
    base = str(model_dir(model))
    params = work / f"batching_parameters_{model}.txt"
    params.write_text(BATCHING_PARAMETERS[model])
    anchors = [PYTHON, "-m", "bench.anchors"]
    servers = []
    for name, kind, extra in (
        ("echo", "echo-rest", []),
        ("echo", "echo-grpc", []),
        ("naive", "naive-rest", []),
        ("naive", "naive-grpc", []),
        *([("echo-stdlib", "echo-rest", ["--json-lib", "stdlib"])] if model == "mlp" else []),
    ):
        port = _free_port()
        protocol = kind.split("-")[1]
        command = [*anchors, kind, "--model", model, "--port", str(port), *extra]
        servers.append(Server(name, model, command, {protocol: port}))
    batching = ["--enable_batching", f"--batching_parameters_file={params}"]
    content = ["--enable_serialization_as_tensor_content"]
    # The engine answers gRPC in TF Serving's typed fields by default; the "(content)" servers pack outputs
    # into tensor_content (TF Serving's opt-in flag), gRPC only, for the two serializations side by side.
    for name, flags, protocols in (
        ("engine", [], ("rest", "grpc")),
        ("engine+batching", batching, ("rest", "grpc")),
        ("engine (content)", content, ("grpc",)),
        ("engine+batching (content)", [*batching, *content], ("grpc",)),
    ):
        ports = {protocol: _free_port() for protocol in protocols}
        command = [
            PYTHON, "-m", "tfserve_lab", "serve", f"--port={ports['grpc']}", f"--rest_api_port={ports.get('rest', 0)}",
            f"--model_name={model}", f"--model_base_path={base}", "--host=127.0.0.1", *flags,
        ]  # fmt: skip
        servers.append(Server(name, model, command, ports))
    return servers


def _start(servers: list[Server], logs: Path, timeout: float = 180.0) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    for server in servers:
        slug = server.name.replace(" ", "-").replace("(", "").replace(")", "")
        server.log = logs / f"{server.model}-{slug}-{'-'.join(server.ports)}.log"
        with open(server.log, "wb") as out:
            server.process = subprocess.Popen(server.command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    for server in servers:
        for port in server.ports.values():
            while True:
                assert server.process is not None
                if server.process.poll() is not None:
                    raise RuntimeError(f"{server.name} exited early; see {server.log}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{server.name} did not listen on {port}; see {server.log}") from None
                    time.sleep(0.2)


def _stop(servers: list[Server]) -> None:
    for server in servers:
        if server.process is not None and server.process.poll() is None:
            server.process.terminate()
    for server in servers:
        if server.process is not None:
            try:
                server.process.wait(20)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


def _loadgen_command(scenario: Scenario, seconds: float, warmup: float, out: Path) -> list[str]:
    port = scenario.server.ports[scenario.protocol]
    where = ["--url", f"http://127.0.0.1:{port}"] if scenario.protocol == "rest" else ["--host", f"127.0.0.1:{port}"]
    return [
        PYTHON, "-m", "bench.loadgen", "--target", scenario.protocol, *where, "--model", scenario.server.model,
        "--rows", str(scenario.rows), "--concurrency", str(scenario.concurrency), "--seconds", str(seconds),
        "--warmup", str(warmup), "--json", str(out),
    ]  # fmt: skip


def _run_load(scenario: Scenario, seconds: float, warmup: float, work: Path) -> dict[str, Any]:
    out = work / "load.json"
    command = _loadgen_command(scenario, seconds, warmup, out)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:  # the server's CPU clock, to know how many cores it used in the window
        while not stop.wait(0.05):
            samples.append((time.perf_counter(), scenario.server.cpu_seconds()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    stop.set()
    sampler.join()
    line = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-300:]
    print(f"  {scenario.key:34s} {line}", flush=True)
    if not out.exists():
        return {"errors": 1, "first_error": done.stderr[-500:], "req_per_s": 0.0}
    result: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    begin, end = result["extra"]["window"]
    inside = [(t, c) for t, c in samples if begin <= t <= end]
    if len(inside) >= 2:
        result["server_cores"] = (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])
    result["client_cores"] = result["client_cpu_s"] / (seconds + warmup)  # workers' CPU over warmup + window
    return result


def _inprocess(model: str, seconds: float, work: Path) -> dict[str, Any]:
    out = work / f"inprocess-{model}.json"
    command = [PYTHON, "-m", "bench.anchors", "inprocess", "--model", model, "--seconds", str(seconds)]
    command += ["--json", str(out)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result: dict[str, Any] = json.loads(out.read_text())
    sig = result["signature"]
    print(f"  {model} in-process: " + ", ".join(f"b{b} {v['best_s'] * 1e3:.3f} ms" for b, v in sig.items()))
    return result


def _profile(scenario: Scenario, seconds: float, out_dir: Path, work: Path) -> dict[str, Any]:
    """Sample the engine with py-spy while the load generator runs against it."""
    spy = Path(PYTHON).with_name("py-spy")
    assert scenario.server.process is not None
    raw = out_dir / f"profile-{scenario.server.model}-{scenario.protocol}-{scenario.server.name.replace('+', '-')}.txt"
    load = subprocess.Popen(
        _loadgen_command(scenario, seconds + 3, 1.0, work / "profile-load.json"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    time.sleep(3.5)  # generator start-up (imports, fork) and its warmup
    command = [str(spy), "record", "--pid", str(scenario.server.process.pid), "--duration", str(int(seconds))]
    command += ["--rate", "200", "--format", "raw", "--threads", "-o", str(raw)]
    spied = subprocess.run(command, capture_output=True, text=True, check=False)
    load.wait()
    if spied.returncode != 0 or not raw.exists():
        print(f"  py-spy failed: {spied.stderr[-400:]}")
        return {"error": spied.stderr[-400:]}
    summary = summarize_profile(raw.read_text())
    summary["file"] = str(raw.relative_to(ROOT))
    print(f"  profiled {scenario.key}: {summary['samples']} samples -> {raw.name}")
    return summary


# -- summarizing -----------------------------------------------------------------------------------


def _median(results: list[dict[str, Any]], key: str) -> float:
    values = [r.get(key, 0.0) for r in results if r.get("req_per_s")]
    return statistics.median(values) if values else 0.0


def summarize(scenarios: list[Scenario]) -> dict[str, dict[str, Any]]:
    """Medians over the repeats of each scenario."""
    table: dict[str, dict[str, Any]] = {}
    for s in scenarios:
        keys = ("req_per_s", "rows_per_s", "p50_ms", "p95_ms", "p99_ms", "server_cores", "client_cores")
        row: dict[str, Any] = {k: _median(s.results, k) for k in keys}
        rates = [r.get("req_per_s", 0.0) for r in s.results]
        row.update(
            model=s.server.model,
            protocol=s.protocol,
            server=s.server.name,
            rows=s.rows,
            concurrency=s.concurrency,
            repeats=len(s.results),
            req_min=min(rates, default=0.0),
            req_max=max(rates, default=0.0),
            errors=sum(int(r.get("errors", 0)) for r in s.results),
            requests=sum(int(r.get("requests", 0)) for r in s.results),
        )
        table[s.key] = row
    return table


def _goal(name: str, value: float, target: float, unit: str, higher: bool = True) -> dict[str, Any]:
    ok = value >= target if higher else value <= target
    return {"goal": name, "value": value, "target": target, "unit": unit, "pass": ok}


def goals(table: dict[str, dict[str, Any]], inproc: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """PASS/FAIL of every goal of the issue, for the engine with and without batching."""
    out: list[dict[str, Any]] = []
    for engine in ("engine+batching", "engine", "engine+batching (content)", "engine (content)"):
        mlp = inproc.get("mlp", {}).get("signature", {}).get("32")
        for protocol, share in (("grpc", 0.70), ("rest", 0.50)):
            row = table.get(f"mlp/{protocol}/{engine}")
            if row and mlp:
                ratio = row["rows_per_s"] / mlp["rows_per_s"]
                out.append(_goal(f"mlp {protocol} R=32 C=8 {engine}: rows/s vs in-process @32", ratio, share, "x"))
        for protocol in ("rest", "grpc"):
            row = table.get(f"seed/{protocol}/{engine}")
            echo = table.get(f"seed/{protocol}/echo")
            naive = table.get(f"seed/{protocol}/naive")
            if not row:
                continue
            if echo and echo["req_per_s"]:
                ratio = row["req_per_s"] / echo["req_per_s"]
                out.append(_goal(f"seed {protocol} R=1 C=32 {engine}: req/s vs {protocol} echo", ratio, 0.8, "x"))
            if naive and naive["req_per_s"]:
                ratio = row["req_per_s"] / naive["req_per_s"]
                out.append(_goal(f"seed {protocol} R=1 C=32 {engine}: req/s vs naive", ratio, 1.5, "x"))
                p99 = row["p99_ms"] / naive["p99_ms"] if naive["p99_ms"] else 0.0
                out.append(_goal(f"seed {protocol} R=1 C=32 {engine}: p99 vs naive p99", p99, 1.0, "x", higher=False))
    for model in ("mlp", "seed"):
        engine = inproc.get(model, {}).get("engine", {}).get("32")
        if engine:
            out.append(_goal(f"{model} engine overhead @32 (Engine.predict on its loop vs the bare atomic call)",
                             engine["engine_loop_overhead"], 0.10, "", higher=False))  # fmt: skip
    decode = inproc.get("mlp", {}).get("rest_decode")
    if decode:
        out.append(_goal("mlp REST decode 32x784 (engine codec vs stdlib json + np.asarray)",
                         decode["stdlib_s"] / decode["engine_s"], 3.0, "x"))  # fmt: skip
    return out


def _machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = subprocess.run(
        [PYTHON, "-c", "import tensorflow as tf, keras, grpc, tornado; "
         "print(tf.__version__, keras.__version__, grpc.__version__, tornado.version)"],
        capture_output=True, text=True, check=False, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    ).stdout.split()  # fmt: skip
    names = ("tensorflow", "keras", "grpcio", "tornado")
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run([*git, "status", "--porcelain", "tfserve_lab"], capture_output=True, text=True, check=False)
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "load_avg": os.getloadavg(),
        **dict(zip(names, versions, strict=False)),
        "commit": commit.stdout.strip() + (" + uncommitted engine changes" if dirty.stdout.strip() else ""),
    }


def _fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def render(report: dict[str, Any]) -> str:
    """The markdown of RESULTS.md."""
    m, table, inproc = report["machine"], report["table"], report["inprocess"]
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}  ",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, TensorFlow {m.get('tensorflow')}, "
        f"Keras {m.get('keras')}, grpcio {m.get('grpcio')}, tornado {m.get('tornado')}, commit {m.get('commit')}; "
        f"load average at start {m['load_avg'][0]:.2f} (the machine was shared: numbers are noisy, read the ratios)  ",
        f"Each load: {report['seconds']} s measured after {report['warmup']} s warmup, {report['repeats']} repeats, "
        "medians shown (req/s range = min-max over repeats). Servers, anchors and the load generator "
        "(2 worker processes) share the same cores.",
        "",
        "engine+batching's `--batching_parameters_file`: "
        + "; ".join(
            f"{model}: `{' '.join(text.split())}`" for model, text in report.get("batching_parameters", {}).items()
        ),
        "",
        "## Served load",
        "",
        "| model | proto | R | C | server | req/s | req/s range | rows/s | p50 ms | p95 ms | p99 ms | errors "
        "| vs echo | vs naive | vs in-proc @R | server cores | client cores |",
        "|---|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in table.values():
        echo = table.get(f"{row['model']}/{row['protocol']}/echo")
        naive = table.get(f"{row['model']}/{row['protocol']}/naive")
        limit = inproc.get(row["model"], {}).get("signature", {}).get(str(row["rows"]))

        def ratio(base: float | None, value: float = row["rows_per_s"]) -> str:
            return f"{value / base:.2f}x" if base else "-"

        lines.append(
            f"| {row['model']} | {row['protocol']} | {row['rows']} | {row['concurrency']} | {row['server']} "
            f"| {_fmt(row['req_per_s'])} | {_fmt(row['req_min'])}-{_fmt(row['req_max'])} | {_fmt(row['rows_per_s'])} "
            f"| {row['p50_ms']:.2f} | {row['p95_ms']:.2f} | {row['p99_ms']:.2f} | {row['errors']} "
            f"| {ratio(echo['rows_per_s'] if echo else None)} | {ratio(naive['rows_per_s'] if naive else None)} "
            f"| {ratio(limit['rows_per_s'] if limit else None)} | {row['server_cores']:.2f} | {row['client_cores']:.2f} |"
        )
    lines += [
        "",
        "## In-process limits (one caller, numpy in, numpy out)",
        "",
        "| model | batch | signature `fn(x=...)` ms | concrete `_call_flat` ms "
        "| atomic `call_preflattened` ms | best ms | rows/s limit |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for model, data in inproc.items():
        for batch, row in data["signature"].items():
            atomic = f"{row['atomic_s'] * 1e3:.3f}" if "atomic_s" in row else "-"  # results before it existed
            lines.append(
                f"| {model} | {batch} | {row['public_s'] * 1e3:.3f} | {row['flat_s'] * 1e3:.3f} | {atomic} "
                f"| {row['best_s'] * 1e3:.3f} | {_fmt(row['rows_per_s'])} |"
            )
    lines += [
        "",
        "## Engine overhead in process (ms per call, one caller; overhead vs the bare atomic call, "
        "all variants timed in turns over 25 rounds, medians)",
        "",
        "| model | batch | signature (atomic) | servable.run | Engine.predict on loop | via run_sync bridge "
        "| +batching on loop | +batching via bridge |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for model, data in inproc.items():
        for batch, row in data["engine"].items():

            def cell(name: str, row: dict[str, float] = row) -> str:
                return f"{row[name + '_s'] * 1e3:.3f} ({row[name + '_overhead']:+.0%})"

            lines.append(
                f"| {model} | {batch} | {row['signature_s'] * 1e3:.3f} | {cell('servable_run')} | {cell('engine_loop')} "
                f"| {cell('engine_bridge')} | {cell('engine_batching_loop')} | {cell('engine_batching_bridge')} |"
            )
    decode = inproc.get("mlp", {}).get("rest_decode")
    if decode:
        lines += [
            "",
            "## REST decode of one 32x784 `instances` body in process (ms)",
            "",
            "| stdlib json + np.asarray | orjson + np.asarray | engine codec (`PredictText`, the REST handler's path) |",
            "|--:|--:|--:|",
            f"| {decode['stdlib_s'] * 1e3:.2f} | {decode['orjson_s'] * 1e3:.2f} | {decode['engine_s'] * 1e3:.2f} |",
        ]
    lines += ["", "## Goals", "", "| goal | measured | target | result |", "|---|--:|--:|---|"]
    for goal in report["goals"]:
        op = ">=" if goal["target"] and goal["goal"].find("p99") < 0 and "overhead" not in goal["goal"] else "<="
        value = f"{goal['value']:+.1%}" if "overhead" in goal["goal"] else f"{goal['value']:.2f}x"
        target = f"{goal['target']:.0%}" if "overhead" in goal["goal"] else f"{goal['target']:.2f}x"
        lines.append(f"| {goal['goal']} | {value} | {op} {target} | {'PASS' if goal['pass'] else 'FAIL'} |")
    for name, prof in report.get("profiles", {}).items():
        if "top_inclusive" not in prof:
            continue
        lines += ["", f"## Profile: {name} (py-spy, {prof['samples']} busy samples, `{prof['file']}`)", ""]
        lines.append("Threads: " + ", ".join(f"{t} {p:.0%}" for t, p in prof["threads"][:6]))
        lines.append("")
        lines.append("Where (a sample counts in every bucket its stack touches): " + ", ".join(
            f"{bucket} {p:.0%}" for bucket, p in prof["buckets"]
        ))  # fmt: skip
        lines += ["", "| inclusive % | function | | self % | function |", "|--:|---|---|--:|---|"]
        for (inc, name_i), (own, name_s) in zip(prof["top_inclusive"], prof["top_self"], strict=False):
            lines.append(f"| {inc:.1%} | `{name_i}` | | {own:.1%} | `{name_s}` |")
    if report.get("notes"):
        lines += ["", "## What limits the rest", "", report["notes"]]
    return "\n".join(lines) + "\n"


# -- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run everything; print progress; write the JSON and the markdown."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat of 2 s: a smoke run (writes results/quick.md)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats of every load (default 3)")
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds of every load (default 5)")
    parser.add_argument("--warmup", type=float, default=None, help="warmup seconds before each window (default 1)")
    parser.add_argument("--models", default="seed,mlp", help="comma-separated bench models")
    parser.add_argument("--profile", action="store_true", help="py-spy the engine under the seed load")
    parser.add_argument("--notes", default=str(BENCH_DIR / "NOTES.md"), help="analysis appended to the markdown")
    parser.add_argument("--out", default="", help="markdown output (default bench/RESULTS.md)")
    parser.add_argument("--render", default="", help="only re-render the markdown from this results JSON")
    args = parser.parse_args(argv)
    if args.render:
        report = json.loads(Path(args.render).read_text())
        notes = Path(args.notes)
        report["notes"] = notes.read_text().strip() if notes.is_file() else ""
        target = Path(args.out) if args.out else BENCH_DIR / "RESULTS.md"
        target.write_text(render(report))
        print(f"wrote {target} from {args.render}")
        return 0
    repeats = args.repeats or (1 if args.quick else 3)
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 1.0)
    inproc_seconds = 0.5 if args.quick else 1.5
    models = [m for m in args.models.split(",") if m]
    for model in models:
        if model not in MODELS:
            parser.error(f"unknown model {model!r}; the bench models are {', '.join(MODELS)}")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = RESULTS_DIR / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    command = "python -m bench.run" + ("".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:])))
    report: dict[str, Any] = {
        "command": command,
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": _machine(),
        "repeats": repeats,
        "seconds": seconds,
        "warmup": warmup,
        "inprocess": {},
        "profiles": {},
        "batching_parameters": {model: BATCHING_PARAMETERS[model] for model in models},
    }
    all_scenarios: list[Scenario] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tfserve-bench-") as tmp:
        work = Path(tmp)
        for model in models:
            rows, concurrency = LOADS[model]
            model_dir(model)  # export before the servers look for it
            servers = _servers(model, work)
            print(f"{model}: starting {len(servers)} servers", flush=True)
            try:
                _start(servers, out_dir)
                report["inprocess"][model] = _inprocess(model, inproc_seconds, work)
                scenarios = [Scenario(s, p, rows, concurrency) for s in servers for p in s.ports]
                for repeat in range(repeats):
                    print(f"{model}: repeat {repeat + 1}/{repeats}", flush=True)
                    for scenario in scenarios:
                        scenario.results.append(_run_load(scenario, seconds, warmup, work))
                all_scenarios += scenarios
                if args.profile and model == "seed":
                    for scenario in scenarios:
                        if scenario.server.name == "engine+batching":
                            report["profiles"][scenario.key] = _profile(scenario, 6.0, out_dir, work)
            finally:
                _stop(servers)
    report["raw"] = {s.key: s.results for s in all_scenarios}
    report["table"] = summarize(all_scenarios)
    report["goals"] = goals(report["table"], report["inprocess"])
    report["elapsed_s"] = time.monotonic() - started
    notes = Path(args.notes)
    report["notes"] = notes.read_text().strip() if notes.is_file() else ""
    (RESULTS_DIR / f"{stamp}.json").write_text(json.dumps(report, indent=1, default=str))
    markdown = render(report)
    target = Path(args.out) if args.out else (out_dir / "quick.md" if args.quick else BENCH_DIR / "RESULTS.md")
    target.write_text(markdown)
    print(markdown)
    print(f"wrote {target} and {RESULTS_DIR / f'{stamp}.json'} in {report['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
