"""Trading costs per venue, and what they cost a signal in R — known at signal time.

A trade's cost in price units is ``entry x (fee_percent + 2 x slippage_percent) / 100 +
spread`` (round-trip fees of the notional, adverse slippage on both fills, a round-trip spread
in price units), exactly the simulator's deduction (:func:`research.phantom.rules.finalize`).
Divided by the stop distance ``|entry - sl|`` it is the cost in **R**, the unit every decision
and verdict of the workbench uses: ``R net = R gross - cost_r``. A 0.1 % round trip against a
0.2 % stop is 0.5 R per trade — the filter has to find more edge than that to pay.

Default profiles and where their numbers come from (retail, no volume discounts):

========================  ===================================================================
``crypto_perp`` (default)  0.05 % taker fee a side (Binance USD-M futures, VIP 0 regular
                           rate; Bybit 0.055 %) = 0.10 % round trip, 0.01 % slippage per fill
``crypto_spot``            0.10 % fee a side (Binance spot, VIP 0) = 0.20 % round trip,
                           0.01 % slippage per fill
``fx``                     1.0 pip round trip (a major's typical retail spread, no
                           commission); pip = 0.0001, 0.01 for JPY pairs
``futures``                1 tick slippage per fill plus 0.2 tick fees a side (CME E-mini:
                           USD 2.5 a side against a USD 12.5 tick); ``tick_size`` per symbol
``none``                   free: gross results
========================  ===================================================================

:func:`profile_for` chooses a profile from the symbol's name (six letters of two fiat
currency codes -> ``fx``, else ``crypto_perp``); :class:`CostModel` lets a user override the
default and any symbol.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from research import schema as S

logger = logging.getLogger(__name__)

FIAT = frozenset("USD EUR GBP JPY CHF AUD NZD CAD SEK NOK DKK SGD HKD MXN ZAR TRY PLN".split())


@dataclass(frozen=True, kw_only=True, slots=True)
class CostProfile:
    """Costs of one venue. All fields are per trade unless said otherwise.

    Attributes
    ----------
    name : str
    fee_percent : float
        Round-trip fees, percent of notional.
    slippage_percent : float
        Adverse slippage per fill (entry and exit), percent of price.
    spread : float
        Round-trip spread in price units (``spread_pips x pip``, or ticks x tick size).
    """

    name: str
    fee_percent: float = 0.0
    slippage_percent: float = 0.0
    spread: float = 0.0

    def __post_init__(self) -> None:
        if min(self.fee_percent, self.slippage_percent, self.spread) < 0:
            raise ValueError(
                f"cost profile {self.name!r}: costs must be >= 0. Fix: use 0 for none."
            )

    def cost_price(self, entry) -> np.ndarray:
        """Cost of a round trip in price units at ``entry`` (price units)."""
        entry = np.asarray(entry, dtype=np.float64)
        return entry * (self.fee_percent + 2.0 * self.slippage_percent) / 100.0 + self.spread


def fx(pip: float = 0.0001, spread_pips: float = 1.0) -> CostProfile:
    """An FX profile: ``spread_pips`` round trip, no commission."""
    return CostProfile(name="fx", spread=spread_pips * pip)


def futures(
    tick_size: float, *, slippage_ticks: float = 1.0, fee_ticks: float = 0.2
) -> CostProfile:
    """A futures profile: slippage and fees in ticks a side (both fills)."""
    return CostProfile(name="futures", spread=2.0 * (slippage_ticks + fee_ticks) * tick_size)


PROFILES: dict[str, CostProfile] = {
    "crypto_perp": CostProfile(name="crypto_perp", fee_percent=0.10, slippage_percent=0.01),
    "crypto_spot": CostProfile(name="crypto_spot", fee_percent=0.20, slippage_percent=0.01),
    "fx": fx(),
    "none": CostProfile(name="none"),
}

_FX = re.compile(r"^([A-Z]{3})[/_-]?([A-Z]{3})(?:$|[_\-.])")


def is_fx(symbol: str) -> bool:
    """True for names like ``EURUSD``, ``GBP/USD`` or ``EURUSD_1h`` (two fiat codes)."""
    m = _FX.match(str(symbol).upper())
    return bool(m) and m.group(1) in FIAT and m.group(2) in FIAT


def profile_for(symbol: str, default: str | CostProfile = "crypto_perp") -> CostProfile:
    """The cost profile a symbol's name implies: ``fx`` for a currency pair, else ``default``.

    A JPY pair gets a 0.01 pip.
    """
    if is_fx(symbol):
        return fx(pip=0.01 if "JPY" in str(symbol).upper() else 0.0001)
    return PROFILES[default] if isinstance(default, str) else default


@dataclass(frozen=True, kw_only=True, slots=True)
class CostModel:
    """Which costs each symbol pays.

    Attributes
    ----------
    default : str or CostProfile
        Profile of a symbol that is not an FX pair and not in ``symbols`` (``crypto_perp``).
    symbols : mapping of symbol -> str or CostProfile
        Overrides per symbol (``{"ES_1h": futures(0.25)}``).
    """

    default: str | CostProfile = "crypto_perp"
    symbols: Mapping[str, str | CostProfile] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        for value in (self.default, *self.symbols.values()):
            if isinstance(value, str) and value not in PROFILES:
                raise ValueError(
                    f"unknown cost profile {value!r}. Fix: use one of {sorted(PROFILES)}, or a "
                    "CostProfile (research.costs.fx(...), futures(tick_size))."
                )

    def profile(self, symbol: str) -> CostProfile:
        """The profile ``symbol`` pays."""
        chosen = self.symbols.get(symbol)
        if chosen is not None:
            return PROFILES[chosen] if isinstance(chosen, str) else chosen
        return profile_for(symbol, self.default)

    def describe(self, symbols) -> pd.DataFrame:
        """One row per symbol: profile name, fees and slippage (%), spread (price units)."""
        rows = {s: self.profile(s) for s in symbols}
        return pd.DataFrame(
            {
                "profile": [p.name for p in rows.values()],
                "fee_percent": [p.fee_percent for p in rows.values()],
                "slippage_percent": [p.slippage_percent for p in rows.values()],
                "spread": [p.spread for p in rows.values()],
            },
            index=pd.Index(list(rows), name=S.SYMBOL),
        )


def signal_costs(signals: pd.DataFrame, costs: CostModel | None = None) -> pd.DataFrame:
    """Cost of each signal's round trip: ``cost_pct`` (% of entry) and ``cost_r`` (R).

    Known at signal time (entry, stop and the venue). Indexed like ``signals``.
    """
    costs = costs or CostModel()
    S.require_columns(signals, [S.SYMBOL, S.ENTRY, S.SL], "signals")
    entry = signals[S.ENTRY].to_numpy(np.float64)
    risk = np.abs(entry - signals[S.SL].to_numpy(np.float64))
    price = np.zeros(len(signals))
    symbols = signals[S.SYMBOL].astype(str).to_numpy()
    for symbol in pd.unique(symbols):
        mask = symbols == symbol
        price[mask] = costs.profile(symbol).cost_price(entry[mask])
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame(
            {S.COST_PCT: price / entry * 100.0, S.COST_R: price / risk}, index=signals.index
        )


def outcome_on_basis(recorded, rr) -> np.ndarray:
    """Outcomes (object array) after R changed basis, by the simulator's rule.

    A timeout stays a timeout, a missing outcome (censored) stays missing; any other trade is a
    win when ``rr`` (R on the new basis) is > 0, else a loss — so a break-even exit net of
    costs is a loss, and a take-profit smaller than its costs is one too.
    """
    recorded = pd.Series(recorded).astype(object).to_numpy()
    rr = np.asarray(rr, dtype=np.float64)
    derived = np.where(rr > 0, "win", "loss").astype(object)
    keep = pd.isna(recorded) | (recorded == "timeout")
    return np.where(keep, recorded, derived)


def apply_costs(outcomes: pd.DataFrame, cost: pd.DataFrame) -> pd.DataFrame:
    """Outcomes net of ``cost`` (from :func:`signal_costs`, row-aligned): what an executed
    trade earns. ``realized_rr -= cost_r``, ``pnl_percent -= cost_pct``; the outcome follows
    :func:`outcome_on_basis`.
    """
    out = outcomes.copy()
    rr = out[S.REALIZED_RR].to_numpy(np.float64) - cost[S.COST_R].to_numpy(np.float64)
    out[S.REALIZED_RR] = rr
    out[S.PNL_PERCENT] = out[S.PNL_PERCENT].to_numpy(np.float64) - cost[S.COST_PCT].to_numpy()
    outcome = out[S.OUTCOME]
    new = outcome_on_basis(outcome, rr)
    is_cat = isinstance(outcome.dtype, pd.CategoricalDtype)
    out[S.OUTCOME] = pd.Categorical(new, categories=outcome.cat.categories) if is_cat else new
    return out
