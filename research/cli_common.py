"""What every ``phantomlab`` command shares: exit codes of the error family, common options.

Exit codes
----------
:func:`cli_errors` is the one place that turns an error into an exit code. Every command of
:mod:`research.cli` and ``research.cli_*`` runs under it; a command adds the builtin exceptions
that mean bad input at one of its steps (``usage=``), e.g. ``ValueError`` while reading ``--data``.

====  ==============================================  ========================================
exit  meaning                                         errors (:mod:`research.errors`)
====  ==============================================  ========================================
0     success
1     a run that failed: a store that does not        ``StoreError`` (``StoreUnavailable``,
      answer or refuses a model, a download that      ``ModelIntegrityError``,
      kept failing, a task that raised, a model blob  ``RebuildRefused``), ``DownloadError``,
      that does not load (the message says why and    ``TaskError``, ``OnnxModelError``, any
      how to fix it)                                  other ``PhantomLabError``; ``failure=``
2     bad usage or bad input, with a fix (click       ``SchemaError`` (``InputTypeError``),
      prints the usage line first)                    ``DataError``, ``InsufficientDataError``,
                                                      ``SplitError``, the runner's
                                                      ``ParameterError`` and
                                                      ``PipelineNotFoundError``,
                                                      ``SchedulerError``; ``usage=``
143   stopped by SIGTERM (``pipeline run``; the run is recorded as failed first)
====  ==============================================  ========================================

Errors outside the family and outside ``usage=`` / ``failure=`` are bugs: they keep their
traceback (exit 1).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from research.errors import (
    DataError,
    InsufficientDataError,
    ParameterError,
    PhantomLabError,
    PipelineNotFoundError,
    RunnerError,
    SchedulerError,
    SchemaError,
    SplitError,
)

#: The errors :func:`exit_code` maps: the workbench's family and the pipeline runner's
#: (:mod:`nbrunner`, a sibling package with its own :class:`~nbrunner.errors.RunnerError`).
FAMILIES: tuple[type[Exception], ...] = (PhantomLabError, RunnerError)

#: Exit code of a run that failed, and of bad usage or bad input.
FAILURE, USAGE = 1, 2
#: Errors of the family that mean bad usage or input; every other one is a failure.
USAGE_ERRORS: tuple[type[Exception], ...] = (
    SchemaError,
    DataError,
    InsufficientDataError,
    SplitError,
    ParameterError,
    PipelineNotFoundError,
    SchedulerError,  # an address given by --scheduler or PHANTOMLAB_DASK_SCHEDULER
)


def exit_code(exc: BaseException) -> int:
    """The exit code of an error of the family (see the module docstring)."""
    return USAGE if isinstance(exc, USAGE_ERRORS) else FAILURE


def fail(message: str, code: int = FAILURE):
    """Print ``Error: message`` on stderr and exit with ``code``."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


class cli_errors(contextlib.ContextDecorator):  # noqa: N801 - used like a function
    """Map errors to exit codes: as a decorator of a command, or around one step of it.

    Parameters
    ----------
    usage : tuple of exception classes
        Builtin exceptions that mean bad usage or input here (exit 2).
    failure : tuple of exception classes
        Builtin exceptions that mean a failed run here (exit 1).
    prefix : str
        Put before the message of a failure (e.g. ``"rollback refused: "``).

    Errors of the families (:data:`FAMILIES`: :class:`research.errors.PhantomLabError`, the
    runner's :class:`nbrunner.errors.RunnerError`) are always mapped, by :func:`exit_code`,
    before ``usage`` and ``failure`` are looked at.
    """

    def __init__(
        self,
        *,
        usage: tuple[type[BaseException], ...] = (),
        failure: tuple[type[BaseException], ...] = (),
        prefix: str = "",
    ) -> None:
        self.usage, self.failure, self.prefix = usage, failure, prefix

    def __enter__(self) -> cli_errors:
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None:
            return False
        if isinstance(exc, FAMILIES):
            code = exit_code(exc)
        elif isinstance(exc, self.usage):
            code = USAGE
        elif isinstance(exc, self.failure):
            code = FAILURE
        else:
            return False
        if code == USAGE:
            ctx = click.get_current_context(silent=True)
            raise click.UsageError(str(exc), ctx=ctx) from exc
        fail(f"{self.prefix}{exc}", code)
        return True  # not reached: fail() exits


# --------------------------------------------------------------------------------------------
# options shared by several commands
# --------------------------------------------------------------------------------------------
#: candle files of the user's, or the built-in known-answer market (demo, sweep)
DATA_OPTION = click.option(
    "--data",
    "data_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of candle files (default: the built-in known-answer market).",
)
TIMEFRAME_OPTION = click.option(
    "--timeframe", default=None, help="Only files of this timeframe, e.g. 5m."
)
#: Small, quick models for --light (30 trees, 30 boosting iterations, no neural net).
LIGHT_MODEL = {"n_estimators": 30, "gb_max_iter": 30, "nn_enabled": False}
LIGHT_OPTION = click.option(
    "--light",
    is_flag=True,
    help="Small, quick models (30 trees, 30 boosting iterations, no neural net).",
)
PROGRESS_OPTION = click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Progress bars on stderr."
)
# No default here: None lets the runner resolve it (nbrunner.catalog.default_reports_dir),
# the one place that reads PHANTOMLAB_REPORTS_DIR.
REPORTS_OPTION = click.option(
    "--reports-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Root of the run folders and index.html (default: env PHANTOMLAB_REPORTS_DIR, "
    "else ./reports).",
)
PIPELINES_OPTION = click.option(
    "--pipelines-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PHANTOMLAB_PIPELINES_DIR",
    default=None,
    help="Folder of pipeline notebooks (env PHANTOMLAB_PIPELINES_DIR; default: the "
    "repository's pipelines/, else ./pipelines).",
)
