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
