"""The seed's EV buckets: wins, losses and summed P&L per ``session|volatility`` bucket.

One rule, used by the in-memory scorer (:class:`research.scoring.online.MLScorer`) and by the
state store's atomic multi-writer step (:meth:`research.stores.state.StateStore.record_outcome`),
so both count an outcome the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

from research import schema as S


def bucket_of(features: Mapping) -> str:
    """The ``"session|volatility"`` key of a trade's features (unknown context kept as
    ``"unknown"``: recording an outcome must never fail)."""
    return S.bucket_name(
        features.get(S.SESSION, "unknown"), features.get(S.VOLATILITY_REGIME, "unknown")
    )


def add_outcome(buckets: dict, features: Mapping, outcome: str, pnl: float) -> dict:
    """Count one learnt outcome into ``buckets`` (in place; returned for chaining).

    Parameters
    ----------
    buckets : dict
        ``{bucket: {"wins", "losses", "win_pnl", "loss_pnl"}}``; P&L in percent.
    outcome : {'win', 'loss', 'timeout'}
        A learnt timeout (``learn_from_timeouts``) counts as a loss, as in the seed.
    pnl : float
        ``pnl_percent`` of the trade.
    """
    b = buckets.setdefault(
        bucket_of(features), {"wins": 0, "losses": 0, "win_pnl": 0.0, "loss_pnl": 0.0}
    )
    if outcome == "win":
        b["wins"] += 1
        b["win_pnl"] += float(pnl)
    else:
        b["losses"] += 1
        b["loss_pnl"] += float(pnl)
    return buckets
