"""Stores: scorer state (Redis or SQLite), the model registry, the SQL audit trail, the journal.

Durability order (DESIGN §4): an outcome is written to SQL first, then to the state store; if
SQL is down it goes to an append-only local journal replayed later; if the state store is down
its view is rebuilt from SQL when it returns.
"""

from __future__ import annotations

from research._lazy import lazy_getattr
from research.errors import ModelIntegrityError, RebuildRefused, StoreError, StoreUnavailable

# Heavier parts (SQLAlchemy, redis-py, skops) load on first use, not on `import research.stores`.
_LAZY = {
    "AuditTrail": "research.stores.audit",
    "OutcomeJournal": "research.stores.journal",
    "ModelRegistry": "research.stores.registry",
    "StateStore": "research.stores.state",
    "open_state": "research.stores.state",
}
__all__ = [
    "ModelIntegrityError",
    "RebuildRefused",
    "StoreError",
    "StoreUnavailable",
    *sorted(_LAZY),
]


__getattr__ = lazy_getattr(__name__, _LAZY)
