"""Errors with a message for the user: one line, safe to print, no traceback needed.

Every layer raises these; the CLI, the hooks and the servers catch `CodesearchError`
(and `ValueError` for bad arguments) and show the message alone.
"""

from __future__ import annotations


class CodesearchError(Exception):
    """A problem the user can act on; `str(err)` is one line that says what to do."""


class IndexError_(CodesearchError, RuntimeError):
    """An index problem with a one-line message for the user."""


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


def one_line(err: BaseException, limit: int = 300) -> str:
    """The first line of an error, named by its type unless it is one of ours."""
    lines = str(err).strip().splitlines()
    if isinstance(err, CodesearchError):
        return (lines[0] if lines else type(err).__name__)[:limit]
    return f"{type(err).__name__}: {lines[0] if lines else ''}"[:limit]
