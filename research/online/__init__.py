"""The online layer: what holds a scorer and the stores together, above both.

:mod:`research.scoring` knows no store and :mod:`research.stores` knows no scorer; here they
meet: recording outcomes in the durability order (:class:`OutcomeRecorder`), rebuilding the
state store's view from SQL (:func:`rebuild_state`), and saving or restoring a scorer and a
replay's end state (:mod:`research.online.persist`).
"""

from __future__ import annotations

from research._lazy import lazy_getattr

# SQLAlchemy, redis-py and scikit-learn load on first use, not on `import research.online`.
_LAZY = {
    "OutcomeRecorder": "research.online.recorder",
    "rebuild_state": "research.online.rebuild",
    "restore_scorer": "research.online.persist",
    "save_replay": "research.online.persist",
    "save_scorer": "research.online.persist",
}
__all__ = sorted(_LAZY)

__getattr__ = lazy_getattr(__name__, _LAZY)
