"""The index lock between real processes: waiting, timeouts, crashed holders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codesearch.core.lock import (
    LOCK_FILE_NAME,
    LockTimeout,
    current_holder,
    index_lock,
    read_holder,
)

# A holder process: takes the lock, says so, holds it until `release` exists.
HOLDER = """
import sys, time
from pathlib import Path
from codesearch.core.lock import index_lock
index_dir, release = Path(sys.argv[1]), Path(sys.argv[2])
with index_lock(index_dir):
    print("locked", flush=True)
    while not release.exists():
        time.sleep(0.02)
print("released", flush=True)
"""

# A contender: reports the wait message, then when it got the lock.
CONTENDER = """
import sys, time
from pathlib import Path
from codesearch.core.lock import index_lock, read_holder
index_dir = Path(sys.argv[1])
with index_lock(index_dir, timeout=30, on_wait=lambda m: print("WAIT " + m, flush=True)):
    print("ACQUIRED", read_holder(index_dir).pid, flush=True)
"""


def start(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def start_holder(index_dir: Path, release: Path) -> subprocess.Popen[str]:
    holder = start(HOLDER, str(index_dir), str(release))
    assert holder.stdout is not None
    line = holder.stdout.readline()  # blocks until the lock is taken
    assert line.strip() == "locked", holder.stderr.read() if holder.stderr else line
    return holder


def test_second_process_waits_then_proceeds(tmp_path: Path) -> None:
    index_dir, release = tmp_path / ".codesearch", tmp_path / "release"
    holder = start_holder(index_dir, release)
    contender = start(CONTENDER, str(index_dir))
    try:
        assert contender.stdout is not None
        wait_line = contender.stdout.readline().strip()
        assert wait_line.startswith(f"WAIT waiting for the index lock held by pid {holder.pid} (")
        assert "started" in wait_line and "ago)" in wait_line
        time.sleep(0.3)
        assert contender.poll() is None, "the contender must still be waiting"
        release.touch()
        out, err = contender.communicate(timeout=20)
        assert contender.returncode == 0, err
        assert out.strip() == f"ACQUIRED {contender.pid}"
        assert holder.wait(timeout=20) == 0
    finally:
        release.touch()
        for proc in (holder, contender):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_timeout_raises_one_line(tmp_path: Path) -> None:
    index_dir, release = tmp_path / ".codesearch", tmp_path / "release"
    holder = start_holder(index_dir, release)
    messages: list[str] = []
    try:
        start_time = time.monotonic()
        with pytest.raises(LockTimeout) as info, index_lock(index_dir, timeout=0.4, on_wait=messages.append):
            pytest.fail("the lock must not be granted while held")
        elapsed = time.monotonic() - start_time
        assert 0.35 <= elapsed < 3.0
        message = str(info.value)
        assert "\n" not in message
        assert f"pid {holder.pid}" in message and "gave up after" in message
        assert len(messages) == 1 and f"pid {holder.pid}" in messages[0]
    finally:
        release.touch()
        holder.wait(timeout=20)


def test_zero_timeout_fails_at_once(tmp_path: Path) -> None:
    index_dir, release = tmp_path / ".codesearch", tmp_path / "release"
    holder = start_holder(index_dir, release)
    try:
        start_time = time.monotonic()
        with pytest.raises(LockTimeout), index_lock(index_dir, timeout=0):
            pass
        assert time.monotonic() - start_time < 1.0
    finally:
        release.touch()
        holder.wait(timeout=20)


def test_sigkilled_holder_frees_the_lock(tmp_path: Path) -> None:
    index_dir, release = tmp_path / ".codesearch", tmp_path / "release"
    assert current_holder(index_dir) is None  # no lock file yet
    holder = start_holder(index_dir, release)
    recorded = read_holder(index_dir)
    assert recorded is not None and recorded.pid == holder.pid
    live = current_holder(index_dir)
    assert live is not None and live.pid == holder.pid
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=20)
    assert current_holder(index_dir) is None  # the record remains, the flock does not
    # The dead holder's record is still in the file, but the kernel dropped its flock.
    stale = read_holder(index_dir)
    assert stale is not None and stale.pid == holder.pid
    messages: list[str] = []
    with index_lock(index_dir, timeout=5, on_wait=messages.append):
        current = read_holder(index_dir)
        assert current is not None and current.pid == os.getpid()
    assert messages == []
    # The next process gets it too.
    contender = start(CONTENDER, str(index_dir))
    out, err = contender.communicate(timeout=20)
    assert out.strip() == f"ACQUIRED {contender.pid}", err


def test_lock_file_naming_a_dead_pid_is_taken(tmp_path: Path) -> None:
    index_dir = tmp_path / ".codesearch"
    index_dir.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = {"pid": dead.pid, "host": "elsewhere", "command": "codesearch index", "started": 0.0}
    (index_dir / LOCK_FILE_NAME).write_text(json.dumps(record))
    assert current_holder(index_dir) is None
    with index_lock(index_dir, timeout=0):
        holder = read_holder(index_dir)
        assert holder is not None and holder.pid == os.getpid()
    # Released: the record is cleared so nobody reads a holder that is gone.
    assert read_holder(index_dir) is None


def test_reentrant_on_same_thread(tmp_path: Path) -> None:
    index_dir = tmp_path / ".codesearch"
    with index_lock(index_dir, timeout=0), index_lock(index_dir, timeout=0):
        assert read_holder(index_dir) is not None
    # Fully released after the outer block: another process can take it at once.
    contender = start(CONTENDER, str(index_dir))
    out, err = contender.communicate(timeout=20)
    assert out.strip() == f"ACQUIRED {contender.pid}", err


def test_released_after_exception(tmp_path: Path) -> None:
    index_dir = tmp_path / ".codesearch"
    with pytest.raises(ValueError), index_lock(index_dir):
        raise ValueError("boom")
    with index_lock(index_dir, timeout=0):
        pass


def test_holder_description_formats() -> None:
    from codesearch.core.lock import Holder

    holder = Holder(42, "otherhost", "codesearch index", started=1000.0)
    assert holder.describe(now=1012.0) == "pid 42 on otherhost (codesearch index, started 12 s ago)"
    assert holder.describe(now=1000.0 + 600) == "pid 42 on otherhost (codesearch index, started 10 min ago)"
    assert holder.describe(now=1000.0 + 7200).endswith("started 2.0 h ago)")
