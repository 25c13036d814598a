"""TensorFlow imported into the kernel without its C++ start-up lines, unless the user asked for them.

TensorFlow's ``TF_CPP_MIN_LOG_LEVEL`` hides its own C++ INFO and WARNING lines
once set before the import. The start-up lines of XLA and oneDNN (``port.cc``,
``cudart_stub.cc``, ``cuda_platform.cc``, ``cpu_feature_guard.cc``) go through
absl before its logging is initialized, straight to file descriptor 2, which
the kernel shows in red under the cell; no switch reaches them, so the import
runs with descriptor 2 read into a buffer, and only lines of that form are dropped.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

__all__ = ["import_tensorflow_quietly"]

LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
# absl's pre-initialization lines: "I0000 00:00:1796116671.123229   17896 port.cc:153] ...", its notice
# about them, and the continuation line of cpu_feature_guard's message.
_START_UP_LINE = re.compile(
    r"^([IWE]\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w.]+:\d+\] .*"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|To enable the following instructions: .* in other operations, rebuild TensorFlow .*)$"
)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow (and look for its devices) with its start-up lines hidden.

    Does nothing when TensorFlow is already imported, or when the user set
    ``TF_CPP_MIN_LOG_LEVEL`` themselves (they chose what to see). Anything else
    written to standard error meanwhile is passed on.
    """
    if "tensorflow" in sys.modules or LOG_LEVEL in os.environ:
        return
    os.environ[LOG_LEVEL] = "2"
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b") as captured:
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # CUDA's probe logs on first use, not at import
            # TensorFlow's Python logger has its own handler; passing records on to the root logger too,
            # which the kernel also prints, shows every line twice.
            tf.get_logger().propagate = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            rest = [
                line
                for line in captured.read().decode("utf-8", "replace").splitlines()
                if line.strip() and not _START_UP_LINE.match(line)
            ]
            if rest:
                print("\n".join(rest), file=sys.stderr)
