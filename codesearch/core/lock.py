"""An inter-process lock on an index folder, so concurrent `codesearch index` runs serialize.

`fcntl.flock` on `<index_dir>/lock`: the kernel releases it when the holder's process
dies, however it dies, so a lock left by a crashed or SIGKILLed run never blocks anyone.
The file also records who holds it (pid, host, command, since when) for the
"waiting for lock" message; that record is informational only and may be stale,
the flock alone decides. The file is never deleted: unlinking a lock file while another
process waits on it lets two processes hold "the" lock at once.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from codesearch.core.errors import LockTimeout  # noqa: F401 (re-exported)
from codesearch.core.lockprobe import LOCK_FILE_NAME, lock_is_held

_POLL_FIRST = 0.05  # seconds; short first so a quick holder costs little
_POLL_MAX = 0.5

# Lock files this process holds, per thread: taking the lock again on the same
# thread is a no-op instead of a self-deadlock (flock conflicts between two open
# files even within one process).
_held: dict[tuple[str, int], int] = {}
_held_guard = threading.Lock()



@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) the lock, as written in the lock file."""

    pid: int
    host: str
    command: str
    started: float  # time.time() when the lock was taken

    def describe(self, now: float | None = None) -> str:
        """`pid 123 (codesearch index, started 12 s ago)`, with the host when it is another one."""
        age = _format_age((now if now is not None else time.time()) - self.started)
        where = "" if self.host == socket.gethostname() else f" on {self.host}"
        return f"pid {self.pid}{where} ({self.command}, started {age} ago)"


def read_holder(index_dir: Path) -> Holder | None:
    """The holder recorded in the lock file, or None when absent or unreadable."""
    try:
        data = json.loads((Path(index_dir) / LOCK_FILE_NAME).read_text(encoding="utf-8"))
        return Holder(int(data["pid"]), str(data["host"]), str(data["command"]), float(data["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no file, or caught mid-write: the message just gets less specific


def current_holder(index_dir: Path) -> Holder | None:
    """Who holds the lock right now, or None when it is free (for `status` and hooks);
    a lock held without a readable record yields pid 0."""
    if not lock_is_held(index_dir):
        return None
    return _read_holder_settled(index_dir) or Holder(0, socket.gethostname(), "unknown", time.time())


@contextmanager
def index_lock(
    index_dir: Path,
    timeout: float = 600.0,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the exclusive lock of `index_dir` for the duration of the block.

    Polls a non-blocking flock; calls `on_wait` once, with a message naming the
    holder, when it first has to wait; raises LockTimeout (one line) after `timeout`
    seconds. Re-entering on the same thread does not wait for itself.
    """
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    path = index_dir / LOCK_FILE_NAME
    key = (str(path.resolve()), threading.get_ident())
    with _held_guard:
        reentered = key in _held
        if reentered:
            _held[key] += 1
    if reentered:
        try:
            yield
        finally:
            with _held_guard:
                _held[key] -= 1
        return

    fd = _lock_current_file(index_dir, path, timeout, on_wait)
    try:
        _write_holder(fd)
        with _held_guard:
            _held[key] = 1
        try:
            yield
        finally:
            with _held_guard:
                del _held[key]
            # Clear the record before unlocking so a waiter never reads a released holder.
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _lock_current_file(
    index_dir: Path, path: Path, timeout: float, on_wait: Callable[[str], None] | None
) -> int:
    """A locked descriptor of the lock file now at `path`.

    `index --rebuild` swaps a new index folder in while others wait on the old one's lock
    file: a waiter that wins a file no longer at `path` locks the new one instead.
    """
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        index_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            _acquire(fd, index_dir, max(0.0, deadline - time.monotonic()), on_wait)
        except BaseException:
            os.close(fd)
            raise
        held = os.fstat(fd)
        try:
            current = os.stat(path)
            if (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
                return fd
        except FileNotFoundError:
            pass  # between the two renames of a swap: look again
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        on_wait = None  # said once already


def _acquire(fd: int, index_dir: Path, timeout: float, on_wait: Callable[[str], None] | None) -> None:
    deadline = time.monotonic() + max(0.0, timeout)
    delay = _POLL_FIRST
    waited = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OSError(exc.errno, f"cannot lock the index ({exc.strerror})",
                              str(index_dir / LOCK_FILE_NAME)) from None
        if not waited:
            waited = True
            if on_wait is not None:
                on_wait(f"waiting for the index lock held by {_holder_text(index_dir)}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LockTimeout(
                f"gave up after {_format_age(timeout)} waiting for the index lock held by "
                f"{_holder_text(index_dir)} ({index_dir / LOCK_FILE_NAME})"
            )
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, _POLL_MAX)


def _holder_text(index_dir: Path) -> str:
    holder = _read_holder_settled(index_dir)
    return holder.describe() if holder is not None else "another process"


def _read_holder_settled(index_dir: Path) -> Holder | None:
    """read_holder, retried once: a new holder writes its record just after locking."""
    holder = read_holder(index_dir)
    if holder is None:
        time.sleep(0.05)
        holder = read_holder(index_dir)
    return holder


def _write_holder(fd: int) -> None:
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": _command_line(),
        "started": time.time(),
    }
    data = json.dumps(record).encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _command_line() -> str:
    """`codesearch index` rather than the full path of the console script."""
    argv = sys.argv or ["python"]
    program = os.path.basename(argv[0]) or "python"
    if program == "__main__.py":  # python -m codesearch
        program = os.path.basename(os.path.dirname(argv[0])) or "python"
    elif program.startswith("-"):  # python -c ...
        program = "python " + program
    words = [program, *argv[1:]]
    text = " ".join(words)
    return text if len(text) <= 80 else text[:77] + "..."


def _format_age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
