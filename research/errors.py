"""The errors of the package, one family (the pattern of ``sklearn/exceptions.py``).

Every error the package raises on purpose is a :class:`PhantomLabError` whose message says what
is wrong and how to fix it (``"... Fix: ..."``); :attr:`PhantomLabError.fix` holds the fix on its
own. Each class keeps the builtin base it had before the family existed (``ValueError``,
``LookupError``, ``RuntimeError``, ``ConnectionError``, ``TypeError``), so code that caught the
builtin keeps working. Code tells errors apart by class, never by message text; the command line
maps the family to exit codes in one place (:mod:`research.cli_common`).

==============================  ===================  ===========================================
class                           builtin base         raised when
==============================  ===================  ===========================================
:class:`SchemaError`            ``ValueError``       a frame or file breaks its contract
:class:`InputTypeError`         ``TypeError`` too    an argument of the wrong kind
:class:`InsufficientDataError`  ``ValueError``       too few trades or rows for what was asked
:class:`SplitError`             ``ValueError``       a time split is misconfigured or impossible
:class:`TooFewRowsError`        (both above)         too few rows (after the purge) for one fold
:class:`DataError`              ``ValueError``       bad exchange, pair, timeframe or time range
:class:`DownloadError`          ``RuntimeError``     the exchange kept failing or refused
:class:`OnnxModelError`         ``ValueError``       an ONNX blob that does not load or fit
:class:`StoreError`             ``RuntimeError``     a store refuses (base of the next three)
:class:`StoreUnavailable`       ``RuntimeError``     a server or file of a store does not answer
:class:`ModelIntegrityError`    ``RuntimeError``     a model blob is unsigned, tampered, unfit
:class:`RebuildRefused`         ``RuntimeError``     a state rebuild would touch foreign keys
:class:`SchedulerError`         ``ConnectionError``  no Dask scheduler answers
:class:`TaskError`              ``RuntimeError``     a distributed task raised
==============================  ===================  ===========================================

The pipeline runner is a sibling package (:mod:`nbrunner`) that knows nothing of this one: its
errors (:class:`~nbrunner.errors.ParameterError`, :class:`~nbrunner.errors.PipelineNotFoundError`,
both a :class:`~nbrunner.errors.RunnerError`) are its own, re-exported here for one import.
"""

from __future__ import annotations

from typing import Any

from nbrunner.errors import (  # noqa: F401  (the runner's errors, re-exported)
    FIX_MARK,
    ParameterError,
    PipelineNotFoundError,
    RunnerError,
    fix_in,
)

__all__ = [
    "DataError",
    "DownloadError",
    "InputTypeError",
    "InsufficientDataError",
    "ModelIntegrityError",
    "OnnxModelError",
    "PhantomLabError",
    "RebuildRefused",
    "SchedulerError",
    "SchemaError",
    "SplitError",
    "StoreError",
    "StoreUnavailable",
    "TaskError",
    "TooFewRowsError",
    "fix_of",
]


class PhantomLabError(Exception):
    """Base class of every error the package raises on purpose.

    Parameters
    ----------
    *args :
        As for :class:`Exception`; the first is the message (``"what is wrong. Fix: how"``),
        and ``str(exc)`` is that message unchanged.
    fix : str, optional
        How to fix it, when the message does not say it after ``"Fix:"``.
    """

    _fix: str | None = None

    def __init__(self, *args: Any, fix: str | None = None) -> None:
        super().__init__(*args)
        self._fix = fix

    @property
    def fix(self) -> str | None:
        """How to fix it: the ``fix`` given, else the message's text after ``"Fix:"``, else None."""
        if self._fix is not None:
            return self._fix
        return fix_in(str(self))


def fix_of(exc: BaseException) -> str | None:
    """The fix an error carries: :attr:`PhantomLabError.fix` (or the runner's
    :attr:`~nbrunner.errors.RunnerError.fix`), or for an error from outside the family (a
    config's ``ValueError``) its message's text after ``"Fix:"``; None if it has none.
    """
    return exc.fix if isinstance(exc, PhantomLabError | RunnerError) else fix_in(str(exc))


# ------------------------------------------------------------------------------ input and data
class SchemaError(PhantomLabError, ValueError):
    """A frame does not follow its contract; the message says which rows and how to fix it."""


class InputTypeError(SchemaError, TypeError):
    """An argument of the wrong kind (``None``, a list, a string where a mapping is expected).

    A programming error, refused at once with what was expected; also a ``TypeError``, so code
    that caught the raw ``TypeError`` of before keeps working.
    """


class InsufficientDataError(PhantomLabError, ValueError):
    """Too few trades (or rows) for what was asked; the message says how many and the fix.

    A threshold policy falls through to its next source on it; a retrain stops with it.
    """


class SplitError(PhantomLabError, ValueError):
    """A time split cannot be made: bad splitter parameters, times, or too few rows."""


class TooFewRowsError(SplitError, InsufficientDataError):
    """Too few rows (after the purge and embargo) for one fold of the split asked for."""


class DataError(PhantomLabError, ValueError):
    """Bad usage: unknown exchange, pair or timeframe, or a bad time range (CLI exit 2)."""


class DownloadError(PhantomLabError, RuntimeError):
    """The exchange kept failing after every retry, or refused a request (CLI exit 1)."""


class OnnxModelError(PhantomLabError, ValueError):
    """The ONNX blob cannot be loaded, or does not match the feature names given with it."""


# ------------------------------------------------------------------------------------- stores
class StoreError(PhantomLabError, RuntimeError):
    """Base class of every store error: what is wrong and how to fix it, never a bare driver
    traceback."""


class StoreUnavailable(StoreError):
    """A server (Redis, PostgreSQL) or file the store needs does not answer.

    Callers that must not stop (recording outcomes, scoring) catch this and degrade: SQL down ->
    the local journal; Redis down -> rebuilt from SQL later (``phantomlab state rebuild``).
    """


class ModelIntegrityError(StoreError):
    """A model blob is unsigned, tampered with, signed with another key, or incompatible.

    Also: a champion pointer that names no version, metadata that is not what was published,
    a blob that is not a skops file or holds another class than the registry publishes (even
    correctly signed), features that do not fit the current feature registry, and a version
    still ``pending`` (its publish did not finish). The message says how to fix it.
    """


class RebuildRefused(StoreError):
    """The rebuild would run on a database holding keys it does not own."""


# -------------------------------------------------------------------------- pipelines and tasks
class SchedulerError(PhantomLabError, ConnectionError):
    """No Dask scheduler answers at the address given (the message says how to fix it)."""


class TaskError(PhantomLabError, RuntimeError):
    """A task raised: the message names its item; the task's exception is ``__cause__``.

    Attributes
    ----------
    item : object
        The item whose task failed.
    """

    def __init__(self, message: str, item: Any) -> None:
        super().__init__(message)
        self.item = item
