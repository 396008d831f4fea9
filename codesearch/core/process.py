"""Starting our own detached processes: warm query servers, background index runs."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def launch_detached(
    argv: Sequence[str], cwd: Path, log_path: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Run `argv` in a session of its own, so it outlives this process and its terminal:
    no standard input, output appended to `log_path`."""
    child_env = dict(os.environ if env is None else env)
    child_env["TOKENIZERS_PARALLELISM"] = "false"  # forked tokenizers would warn, then deadlock
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(argv), cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True, close_fds=True, env=child_env,
        )


BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def one_blas_thread() -> None:
    """Numpy's BLAS on one thread, unless the user chose: set before numpy loads.

    A search multiplies one query vector by the stored vectors, which is bound by memory,
    not arithmetic: on 2 cores a second BLAS thread made it 4-6x slower whenever anything
    else ran (the thin client starting, an indexer), 7-12 ms instead of 1.8 ms for 17k
    rows. Only the query paths call this; an index run keeps every thread.
    """
    import sys

    if "numpy" in sys.modules:
        return  # too late to matter
    if not any(os.environ.get(name) for name in BLAS_THREAD_VARIABLES):
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
