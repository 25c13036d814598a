"""Hot spots from a py-spy ``--format raw --threads`` profile (collapsed stacks), as shares of busy samples.

python -m bench.profile bench/results/<stamp>/profile-seed-rest-engine-batching.txt
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from typing import Any

__all__ = ["summarize_profile"]

_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
_DIGITS = re.compile(r"\d+")
# Where the time goes, by the files a stack passes through (a sample counts in every bucket it touches).
BUCKETS: dict[str, tuple[str, ...]] = {
    "TensorFlow call (tensorflow/, servable.run)": (
        "tensorflow/python",
        "servables/saved_model.py",
        "servables/tf_runners.py",
        "servables/checks.py",
    ),
    "batching (batching.py, batch_queue.py, batch_merge.py)": (
        "core/batching.py",
        "core/batch_queue.py",
        "core/batch_merge.py",
    ),
    "engine (engine.py, model_calls.py, placement.py, examples.py)": (
        "core/engine.py",
        "core/model_calls.py",
        "core/placement.py",
        "core/examples.py",
    ),
    "REST JSON decode (jsonparse.py, codec.py, numeric_json.py, ...)": (
        "rest/jsonparse.py",
        "rest/rapidjson_reader.py",
        "rest/codec.py",
        "rest/numeric_json.py",
        "rest/vectorized.py",
    ),
    "REST JSON encode (jsonwrite.py, jsontext.py)": ("rest/jsonwrite.py", "rest/jsontext.py"),
    "REST handlers (tf_serving_handlers.py, inference_http.py)": (
        "rest/tf_serving_handlers.py",
        "rest/inference_http.py",
    ),
    "tornado": ("tornado/",),
    "gRPC codec (grpc/codec.py)": ("protocol/grpc/codec.py",),
    "gRPC servicers.py": ("protocol/grpc/servicers.py",),
    "grpc (grpcio, incl. its aio loop glue)": ("grpc/_", "grpc/aio", "grpc/__init__"),
    "asyncio": ("asyncio/",),
    "metrics/observers": ("tfserve_lab/metrics/",),
}


# Leaf frames of threads blocked in C (py-spy's idle detection misses these here): waits, not work.
IDLE_LEAVES = frozenset(
    {
        "_worker (futures/thread.py)",  # an executor thread in queue.get
        "Condition.wait (threading.py)",
        "Event.wait (threading.py)",
        "EpollSelector.select (selectors.py)",  # the event loop waiting for I/O
        "Thread.run (threading.py)",  # grpc's poller thread in its C poll
        "Thread.join (threading.py)",
    }
)


def _short(file: str) -> str:
    parts = file.replace("\\", "/").split("/")
    return "/".join(parts[-2:])


def _function(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame)
    if match is None:
        return frame, frame
    return f"{match['name']} ({_short(match['file'])})", match["file"]


def summarize_profile(text: str, top: int = 15) -> dict[str, Any]:
    """Per-thread shares, top inclusive and self functions, and the bucket shares of a raw profile.

    Samples whose innermost frame is a known blocking wait (``IDLE_LEAVES``) are dropped, so the
    shares are of busy samples.
    """
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    total = idle = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        functions = [_function(f) for f in frames[1:]] or [("?", "?")]
        if functions[-1][0] in IDLE_LEAVES:
            idle += count
            continue
        thread = frames[0].split(": ", 1)[-1] if frames[0].startswith("thread") else "?"
        threads[_DIGITS.sub("N", thread)] += count
        for name in {name for name, _ in functions}:
            inclusive[name] += count
        own[functions[-1][0]] += count
        files = " ".join(file for _, file in functions)
        for bucket, needles in BUCKETS.items():
            if any(needle in files for needle in needles):
                buckets[bucket] += count
        total += count
    share = (lambda c: c / total) if total else (lambda c: 0.0)
    return {
        "samples": total,
        "idle_samples": idle,
        "threads": [(name, share(c)) for name, c in threads.most_common()],
        "top_inclusive": [(share(c), name) for name, c in inclusive.most_common(top)],
        "top_self": [(share(c), name) for name, c in own.most_common(top)],
        "buckets": [(name, share(c)) for name, c in buckets.most_common()],
    }


def main(argv: list[str] | None = None) -> int:
    """Print the summary of a raw profile file."""
    args = argv if argv is not None else sys.argv[1:]
    with open(args[0], encoding="utf-8") as handle:
        summary = summarize_profile(handle.read(), top=int(args[1]) if len(args) > 1 else 25)
    print(f"{summary['samples']} busy samples")
    print("threads: " + ", ".join(f"{name} {p:.1%}" for name, p in summary["threads"]))
    print("\nbuckets (inclusive):")
    for name, p in summary["buckets"]:
        print(f"  {p:6.1%}  {name}")
    print("\ninclusive:")
    for p, name in summary["top_inclusive"]:
        print(f"  {p:6.1%}  {name}")
    print("\nself:")
    for p, name in summary["top_self"]:
        print(f"  {p:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
