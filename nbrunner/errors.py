"""The runner's errors: a pipeline that is not catalogued, parameters that do not fit.

Each keeps the builtin base it had (``ValueError``, ``LookupError``) and says how to fix it in
its message (``"... Fix: ..."``); :attr:`RunnerError.fix` holds that part. A program that uses
the runner maps :class:`RunnerError` to its own exit codes (the workbench: ``research.cli_common``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ParameterError", "PipelineNotFoundError", "RunnerError"]


#: What introduces the how-to-fix part of a message.
FIX_MARK = "Fix:"


def fix_in(message: str) -> str | None:
    """The text after :data:`FIX_MARK` in ``message``, else None (the one parser of the
    convention; ``research.errors`` uses it too)."""
    _, mark, tail = message.partition(FIX_MARK)
    return (tail.strip() or None) if mark else None


class RunnerError(Exception):
    """Base class of the errors the runner raises on purpose."""

    @property
    def fix(self) -> str | None:
        """How to fix it: the message's text after ``"Fix:"``, else None."""
        return fix_in(str(self))


class ParameterError(RunnerError, ValueError):
    """A pipeline's parameters cell is malformed, or an override does not fit it.

    The message names the notebook (and line) and says how to fix it. When raised by
    :func:`nbrunner.run_pipeline`, ``result`` holds the failed run it left behind.
    """

    result: Any = None


class PipelineNotFoundError(RunnerError, LookupError):
    """No pipeline notebook by that name; the message lists the available ones."""
