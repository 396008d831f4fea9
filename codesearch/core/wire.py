"""What the thin query client (cli/thin.py), the warm server (serve/daemon.py) and the
indexer agree on, with the standard library alone: the thin client imports this, and
every millisecond of its imports counts against a 100 ms query (core.types' own imports
cost it more than this whole module)."""

from __future__ import annotations

import os
from pathlib import Path

INDEX_DIRNAME = ".codesearch"

# What a search request may say. Clients send theirs; a server that speaks another stops
# after saying so, and the client searches in its own process (a server outlives an
# upgrade of codesearch by up to its idle time, and would drop options it does not know).
# 2: `per_file`.
PROTOCOL = 2

# A query that waits for a first build leaves this marker, with its pid, in the index
# folder until it has its answer: the indexer answers such queries before it builds the
# full-text indexes, which would take half the machine from their search.
WAITING_MARKER = "waiting-query-"

# Left in the index folder while a first build answers from the rows it holds in memory,
# before it has written them (store.memory): a waiting query may ask its server now.
ROWS_MARKER = "answering-from-rows"

# The variables rich's Console reads: the thin client sends them, the server renders with them.
TERMINAL_ENV = ("TERM", "COLORTERM", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE",
                "TTY_INTERACTIVE", "COLUMNS", "LINES")


def socket_folder() -> Path:
    """Where this user's server sockets live (the server makes it and checks it)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if not runtime:
        import tempfile  # 5 ms: only where there is no runtime folder

        runtime = tempfile.gettempdir()
    return Path(runtime) / f"codesearch-{os.getuid()}"


def socket_name(index_dir: Path) -> str:
    """Short and per index: Unix socket paths are limited to about 100 bytes."""
    try:  # hashlib's own blake2b, without loading OpenSSL (2 ms of the thin client's budget)
        from _blake2 import blake2b
    except ImportError:
        from hashlib import blake2b
    return f"{blake2b(str(index_dir.resolve()).encode(), digest_size=8).hexdigest()}.sock"
