"""Errors with a message for the user: one line, safe to print, no traceback needed.

Every layer raises these; the CLI, the hooks and the servers catch `CodesearchError`
(and `ValueError` for bad arguments) and show the message alone.
"""

from __future__ import annotations

import os


class CodesearchError(Exception):
    """A problem the user can act on; `str(err)` is one line that says what to do."""


class IndexError_(CodesearchError, RuntimeError):
    """An index problem with a one-line message for the user."""


class DamagedIndexError(IndexError_):
    """Part of an index cannot be read (truncated, deleted or garbled files); only a
    rebuild repairs it, so the message always says `codesearch index --rebuild`."""


class ReadOnlyIndexError(IndexError_):
    """The index folder cannot be written: searching works, indexing does not."""


class LockTimeout(CodesearchError, RuntimeError):
    """The index lock stayed taken for the whole timeout."""


class RemoteError(CodesearchError, RuntimeError):
    """A remote API failed for good; the message is one line, safe to print."""


class ModelUnavailableError(CodesearchError, RuntimeError):
    """The model cannot be used on this machine; the message is one line, safe to print."""


class UnknownModelError(CodesearchError, ValueError):
    """A model name that is neither in the registry nor a usable id or path."""


class InvalidDimError(CodesearchError, ValueError):
    """A `--dim` the model was not trained to produce."""


class IncompatibleModelsError(CodesearchError, ValueError):
    """A query model that does not share the index model's embedding space."""


class EvalError(CodesearchError, ValueError):
    """A query file or target is malformed; the message is one line for the user."""


class HookError(CodesearchError, RuntimeError):
    """A hook problem with a one-line message for the user."""


# What a command reports as one line: our errors, and bad arguments found deep down.
USER_ERRORS: tuple[type[BaseException], ...] = (CodesearchError, ValueError)


REBUILD_HINT = "run `codesearch index --rebuild`"
DEBUG_ENV = "CODESEARCH_DEBUG"  # set (to anything but 0) to see tracebacks


def damaged(index_dir: object, what: str) -> DamagedIndexError:
    """The one-line error for an index that cannot be read as it is."""
    return DamagedIndexError(f"the index at {index_dir} is damaged ({what}): {REBUILD_HINT}, "
                             f"or delete {index_dir}")


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def one_line(err: BaseException, limit: int = 300) -> str:
    """The first line of an error, named by its type unless it is one of ours."""
    lines = str(err).strip().splitlines()
    if isinstance(err, CodesearchError):
        return (lines[0] if lines else type(err).__name__)[:limit]
    return f"{type(err).__name__}: {lines[0] if lines else ''}"[:limit]
