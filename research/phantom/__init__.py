"""Phantom trades: the batch simulator and the online tracker, one rule set (``rules``).

See :mod:`research.phantom.rules` for the exact bar-by-bar rules.
"""

from research.phantom.batch import simulate
from research.phantom.tracker import PhantomTracker

__all__ = ["PhantomTracker", "simulate"]
