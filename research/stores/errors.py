"""Errors of the stores: what is wrong and how to fix it, never a bare driver traceback."""

from __future__ import annotations


class StoreError(RuntimeError):
    """Base class of every store error."""


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
