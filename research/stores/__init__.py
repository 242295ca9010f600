"""Stores: scorer state (Redis or SQLite), the model registry, the SQL audit trail, the journal.

Durability order (DESIGN §4): an outcome is written to SQL first, then to the state store; if
SQL is down it goes to an append-only local journal replayed later; if the state store is down
its view is rebuilt from SQL when it returns.
"""

from research.stores.errors import ModelIntegrityError, StoreError, StoreUnavailable

__all__ = ["ModelIntegrityError", "StoreError", "StoreUnavailable"]
