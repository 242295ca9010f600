"""Seeded synthetic OHLCV markets with known, planted ground truth.

Each bar is a Gaussian log-price move whose high and low are the extremes of the Brownian
bridge between its open and close (``intrabar='bridge'``, the default: a continuous path, so a
stop or target is crossed *at* its level and fills there are unbiased), or of an
``intrabar_steps``-step path (``intrabar='steps'``: coarse, a level is jumped over and filling at
it favours stops over targets by about 0.06 R per trade), with sigma ``base_vol x session multiplier x volatility-regime multiplier`` and a drift, in
units of that sigma, equal to the hidden trend state plus any :class:`PlantedEdge`. The
log-return mean always carries the Ito term ``-sigma**2 / 2``: a drift of ``d`` sigma means
``E[close / open] = exp(d * sigma)``, and with neither trend nor edge (:func:`null_market`)
the *price* is a martingale, so every stop/target rule has zero expected P&L.

Edge conditions use only closed bars (or the clock), so a point-in-time observer can exploit
them. Each random component has its own stream spawned from ``seed``, drawn the same way
whatever the edges are: same-seed markets share their noise (paired comparisons are sharp)
and a longer market extends a shorter one bar for bar.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
import pandas as pd
from numba import njit

from research import schema

logger = logging.getLogger(__name__)

EDGE_KINDS: tuple[str, ...] = ("body", "volume", "session")
TREND_STATES: tuple[str, ...] = ("range", "up", "down")
VOL_REGIME = "vol_regime"
TREND_STATE = "trend_state"
_RESERVED = {schema.SESSION, VOL_REGIME, TREND_STATE, "sigma", "drift"}
# UTC hour -> session code (index into SESSIONS): asia [22, 7), london [7, 12),
# overlap [12, 16), us [16, 22).
_HOUR_SESSION = np.array([0] * 7 + [1] * 5 + [2] * 4 + [3] * 6 + [0] * 2, dtype=np.int64)
_MULTI_VOLS = (0.001, 0.0015, 0.0025)


def _timedelta(value: pd.Timedelta | str) -> pd.Timedelta:
    """Parse ``'5m'``, ``'1h'``, ``'1d'`` (or anything ``pd.Timedelta`` takes) to a Timedelta."""
    if isinstance(value, str) and re.fullmatch(r"\s*\d+\s*[dDwW]\s*", value):
        value = value.upper()  # pandas deprecates lower-case 'd'
    td = pd.Timedelta(value)
    if td <= pd.Timedelta(0):
        raise ValueError(f"duration must be positive, got {value!r}. Fix: use e.g. '5m' or '1h'.")
    return td


@dataclass(frozen=True, kw_only=True)
class PlantedEdge:
    """One planted, causal drift rule. ``drift`` is in units of the bar's log-return sigma.

    Attributes
    ----------
    name, kind : str
        Column name in :func:`ground_truth`; one of :data:`EDGE_KINDS`.
        ``'body'``: bar ``j`` triggers when ``|close-open| / (high-low) >= threshold``.
        ``'volume'``: bar ``j`` triggers when ``volume >= threshold x`` the mean volume of the
        ``window`` bars before it. For both, bars ``j+1 .. j+horizon`` get ``drift * sigma``
        per bar in the direction of bar ``j``'s body; a newer trigger restarts the window and
        replaces the direction (one edge never stacks: its drift is at most ``drift * sigma``).
        ``'session'``: every bar of ``session`` drifts ``drift * sigma`` in the direction of the
        log return over the preceding ``lookback`` (open ``lookback`` ago -> this bar's open).
    drift : float
        Extra per-bar drift, sigma units (0.12 = 12 % of the bar's log-return sigma).
    horizon, threshold, window : int, float, int
        Bars drifted after a trigger; body ratio or volume multiple; bars of volume baseline.
    session, lookback : str, Timedelta or str
        ``'session'`` kind: the drifted session and the return window giving the direction.
    """

    name: str
    kind: str
    drift: float
    horizon: int = 1
    threshold: float = 0.0
    window: int = 20
    session: str = "us"
    lookback: pd.Timedelta = pd.Timedelta(hours=24)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lookback", _timedelta(self.lookback))
        if self.kind not in EDGE_KINDS:
            raise ValueError(f"edge kind {self.kind!r} unknown. Fix: use one of {EDGE_KINDS}.")
        if self.horizon < 1 or self.window < 1 or not np.isfinite(self.drift):
            raise ValueError(f"edge {self.name!r} needs horizon >= 1, window >= 1, finite drift.")
        if self.session not in schema.SESSIONS:
            raise ValueError(
                f"edge session {self.session!r} unknown; use one of {schema.SESSIONS}."
            )


EDGES: dict[str, PlantedEdge] = {
    e.name: e
    for e in (
        PlantedEdge(name="body_momentum", kind="body", drift=0.12, horizon=12, threshold=0.5),
        PlantedEdge(name="volume_momentum", kind="volume", drift=0.12, horizon=12, threshold=2.0),
        PlantedEdge(name="session_trend", kind="session", drift=0.10, lookback="24h"),
    )
}


def edge(name: str, **overrides) -> PlantedEdge:
    """Return the named edge of :data:`EDGES`, with ``overrides`` (``drift=0.2``, ...) applied."""
    if name not in EDGES:
        raise KeyError(f"no planted edge {name!r}. Fix: use one of {sorted(EDGES)}.")
    return replace(EDGES[name], **overrides)


_SESSION_VOL = {"asia": 0.7, "london": 1.1, "overlap": 1.4, "us": 1.0}
_VOL_REGIMES = {"low": 0.6, "normal": 1.0, "high": 1.6, "extreme": 2.6}


@dataclass(frozen=True, kw_only=True)
class SyntheticConfig:
    """Everything that defines a synthetic market; same config -> identical frame.

    Attributes
    ----------
    n_bars, timeframe, start, symbol, seed : int, Timedelta or str ('5m', '1h'), str, str, int
        Bars (continuous, see :func:`drop_bars` for gaps), bar length, first open (naive = UTC).
    start_price : float
        Open of the first bar, price units.
    base_vol : float
        Per-bar log-return sigma at session multiplier 1 in the ``normal`` regime.
    session_vol, vol_regimes : dict
        Sigma multipliers per session (UTC hours: asia [22, 7), london [7, 12), overlap
        [12, 16), us [16, 22); volume scales with it too) and per volatility regime.
    regime_duration, trend_duration : float
        Mean bars of a volatility regime / trend state. Both are Markov chains that leave their
        state w.p. ``1 / duration`` per bar for a uniformly chosen other state.
    trend_drift : float
        Drift, sigma units per bar, of the ``up`` (+) and ``down`` (-) states (``range``: 0).
    edges : tuple of PlantedEdge
    intrabar : {'bridge', 'steps'}
        ``'bridge'``: high/low drawn from the exact law of the maximum / minimum of a Brownian
        bridge from open to close (each marginal exact; drawn independently), so the bar
        simulator's fills at the level are those of a continuous path and a null market has
        zero expected P&L. ``'steps'``: the extremes of an ``intrabar_steps``-step path.
    intrabar_steps : int
        Gaussian sub-steps per bar with ``intrabar='steps'``.
    base_volume, volume_sigma, volume_return_weight : float
        Volume = ``base_volume x session_vol x (1 + w |log return| / base_vol) x noise``, noise
        log-normal with mean 1 and log-sigma ``volume_sigma``.
    """

    n_bars: int = 20_000
    timeframe: pd.Timedelta | str = "5m"
    start: pd.Timestamp | str = "2024-01-01"
    symbol: str = "SYNTH"
    seed: int = 0
    start_price: float = 100.0
    base_vol: float = 0.0015
    session_vol: Mapping[str, float] = field(default_factory=_SESSION_VOL.copy, hash=False)
    vol_regimes: Mapping[str, float] = field(default_factory=_VOL_REGIMES.copy, hash=False)
    regime_duration: float = 500.0
    trend_duration: float = 300.0
    trend_drift: float = 0.08
    edges: tuple[PlantedEdge, ...] = ()
    intrabar: str = "bridge"
    intrabar_steps: int = 6
    base_volume: float = 1_000.0
    volume_sigma: float = 0.5
    volume_return_weight: float = 1.0

    def __post_init__(self) -> None:
        start = pd.Timestamp(self.start)
        start = start.tz_localize("UTC") if start.tz is None else start.tz_convert("UTC")
        set_ = object.__setattr__
        set_(self, "timeframe", _timedelta(self.timeframe))
        set_(self, "start", start.as_unit("ns"))
        set_(self, "session_vol", {k: float(self.session_vol[k]) for k in schema.SESSIONS})
        set_(
            self, "vol_regimes", {k: float(self.vol_regimes[k]) for k in schema.VOLATILITY_REGIMES}
        )
        set_(self, "edges", tuple(self.edges))
        counts = (self.n_bars, self.intrabar_steps, self.regime_duration, self.trend_duration)
        if min(counts) < 1 or min(self.base_vol, self.start_price, self.base_volume) <= 0:
            raise ValueError(
                "need n_bars, intrabar_steps, *_duration >= 1 and base_vol, "
                "start_price, base_volume > 0."
            )
        names = [e.name for e in self.edges]
        if len(set(names)) != len(names) or _RESERVED & set(names):
            raise ValueError(f"edge names {names} must be unique and not in {sorted(_RESERVED)}.")
        if self.intrabar not in ("bridge", "steps"):
            raise ValueError(f"intrabar must be 'bridge' or 'steps', got {self.intrabar!r}.")
        if not all(isinstance(e, PlantedEdge) for e in self.edges):
            raise TypeError("edges must be PlantedEdge objects (see synthetic.edge(name)).")


@njit(cache=True)
def _simulate(z, u, sigma, base_drift, session, vol_level, vol_noise, w_ret, p0, params, bridge):
    """Generate bars one by one; an edge condition reads only closed bars (or the clock).

    ``params`` has one row per edge: kind, drift, horizon, threshold, window, lag, session.
    With ``bridge`` the close is one Gaussian move (``z[:, 0]``) and the extremes come from the
    uniforms ``u`` (law of a Brownian bridge's max/min); else from the ``z`` sub-step path.
    ``ahead[i, e]``: signed drift (sigma units x bars) edge ``e`` has already committed to the
    bars after ``i`` once bar ``i`` has closed — what an oracle knows at that close.
    """
    n, k = z.shape
    n_e = params.shape[0]
    o, h, lo, c, v = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    trig = np.zeros((n, n_e), dtype=np.int8)  # sign of the triggering body (0 = no trigger)
    applied = np.zeros((n, n_e))  # signed drift, sigma units, applied to the bar by each edge
    ahead = np.zeros((n, n_e))
    left = np.zeros(n_e, dtype=np.int64)
    direction = np.zeros(n_e)
    x = np.log(p0)
    for i in range(n):
        for e in range(n_e):
            kind, drift, lag = int(params[e, 0]), params[e, 1], int(params[e, 5])
            if kind == 2:  # session: sign of the return over the last `lag` bars
                if session[i] == int(params[e, 6]) and i >= lag:
                    s = np.sign(x - np.log(o[i - lag]))
                    trig[i, e] = np.int8(s)
                    applied[i, e] = drift * s
                continue
            if i >= 1 and trig[i - 1, e] != 0:  # a newer trigger restarts and redirects
                left[e] = int(params[e, 2])
                direction[e] = trig[i - 1, e]
            if left[e] > 0:
                applied[i, e] = drift * direction[e]
                left[e] -= 1
        d_tot = base_drift[i] + applied[i].sum()
        sg = sigma[i]
        x0 = x
        if bridge:
            x += d_tot * sg - 0.5 * sg * sg + sg * z[i, 0]
            b = x - x0
            # P(max of a bridge 0 -> b with variance sg^2 >= m) = exp(-2 m (m - b) / sg^2)
            hi_x = x0 + 0.5 * (b + np.sqrt(b * b - 2.0 * sg * sg * np.log(u[i, 0])))
            lo_x = x0 + 0.5 * (b - np.sqrt(b * b - 2.0 * sg * sg * np.log(u[i, 1])))
        else:
            mu, step = (d_tot * sg - 0.5 * sg * sg) / k, sg / np.sqrt(k)
            hi_x, lo_x = x, x
            for j in range(k):
                x += mu + step * z[i, j]
                hi_x = max(hi_x, x)
                lo_x = min(lo_x, x)
        o[i], h[i], lo[i], c[i] = np.exp(x0), np.exp(hi_x), np.exp(lo_x), np.exp(x)
        v[i] = vol_level[i] * (1.0 + w_ret * abs(x - x0)) * vol_noise[i]
        body = c[i] - o[i]
        for e in range(n_e):
            kind, thr, win = int(params[e, 0]), params[e, 3], int(params[e, 4])
            if kind == 0 and h[i] > lo[i] and abs(body) / (h[i] - lo[i]) >= thr:
                trig[i, e] = np.int8(np.sign(body))
            elif kind == 1 and i >= win and v[i] >= thr * (v[i - win : i].sum() / win):
                trig[i, e] = np.int8(np.sign(body))
            if kind != 2:
                if trig[i, e] != 0:
                    ahead[i, e] = params[e, 1] * params[e, 2] * trig[i, e]
                else:
                    ahead[i, e] = params[e, 1] * left[e] * direction[e]
    return o, h, lo, c, v, trig, applied, ahead


def _markov(rng: np.random.Generator, n: int, n_states: int, duration: float) -> np.ndarray:
    """States of a chain that switches w.p. ``1/duration`` per bar to a uniform other state."""
    u = rng.random((n, 2))
    first = int(u[0, 1] * n_states)
    switch = u[:, 0] < 1.0 / duration
    switch[0] = False
    jump = 1 + (u[:, 1] * (n_states - 1)).astype(np.int64)
    return ((first + np.cumsum(np.where(switch, jump, 0))) % n_states).astype(np.int64)


def _generate(cfg: SyntheticConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(candles, ground_truth)`` for ``cfg``."""
    n, tf = cfg.n_bars, cfg.timeframe
    # spawn(5)'s first four children are spawn(4)'s: adding a stream changed no other stream
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(5)]
    regime = _markov(rngs[0], n, len(schema.VOLATILITY_REGIMES), cfg.regime_duration)
    trend = _markov(rngs[1], n, len(TREND_STATES), cfg.trend_duration)
    bridge = cfg.intrabar == "bridge"
    z = rngs[2].standard_normal((n, 1 if bridge else cfg.intrabar_steps))
    u = 1.0 - rngs[4].random((n, 2)) if bridge else np.ones((1, 2))  # in (0, 1]: log finite
    vol_noise = np.exp(cfg.volume_sigma * rngs[3].standard_normal(n) - 0.5 * cfg.volume_sigma**2)

    stamps = cfg.start.value + np.arange(n, dtype=np.int64) * tf.value
    index = pd.DatetimeIndex(pd.to_datetime(stamps, unit="ns", utc=True), name=schema.TIMESTAMP)
    session = _HOUR_SESSION[(stamps // 3_600_000_000_000) % 24]
    sess_mult = np.array([cfg.session_vol[s] for s in schema.SESSIONS])[session]
    sigma = cfg.base_vol * sess_mult * np.array(list(cfg.vol_regimes.values()))[regime]
    base_drift = cfg.trend_drift * np.array([0.0, 1.0, -1.0])[trend]

    es = cfg.edges
    params = np.array(
        [
            [
                EDGE_KINDS.index(e.kind),
                e.drift,
                e.horizon,
                e.threshold,
                e.window,
                max(1, round(e.lookback / tf)),
                schema.SESSIONS.index(e.session),
            ]
            for e in es
        ],
        dtype=np.float64,
    ).reshape(len(es), 7)
    o, h, lo, c, v, trig, applied, ahead = _simulate(
        z,
        u,
        sigma,
        base_drift,
        session,
        cfg.base_volume * sess_mult,
        vol_noise,
        cfg.volume_return_weight / cfg.base_vol,
        float(cfg.start_price),
        params,
        bridge,
    )
    cols = dict(zip(schema.CANDLE_COLUMNS, (o, h, lo, c, v), strict=True))
    candles = pd.DataFrame(cols, index=index)
    candles.attrs.update(
        symbol=cfg.symbol, timeframe=tf, edges=es, seed=cfg.seed, source="synthetic", config=cfg
    )
    cat = pd.Categorical.from_codes
    truth = pd.DataFrame(
        {
            schema.SESSION: cat(session, categories=list(schema.SESSIONS)),
            VOL_REGIME: cat(regime, categories=list(schema.VOLATILITY_REGIMES)),
            TREND_STATE: cat(trend, categories=list(TREND_STATES)),
            "sigma": sigma,
            "drift": base_drift + applied.sum(axis=1),
        },
        index=index,
    )
    for j, e in enumerate(es):
        truth[e.name] = trig[:, j] != 0
        truth[f"{e.name}_drift"] = applied[:, j]
        truth[f"{e.name}_ahead"] = ahead[:, j]
    logger.debug("synthetic %s: %d bars of %s, seed %d", cfg.symbol, n, tf, cfg.seed)
    return candles, truth


def make_market(config: SyntheticConfig | None = None, **overrides) -> pd.DataFrame:
    """Generate a validated candles frame from ``config`` (default one) with ``overrides``.

    Index: bar open times (UTC, ns); float64 ``open high low close volume`` (price units and
    volume units). ``attrs``: ``symbol``, ``timeframe`` (Timedelta), ``edges``, ``seed``,
    ``source`` ('synthetic') and ``config`` (the :class:`SyntheticConfig`, used by
    :func:`ground_truth`).
    """
    cfg = replace(config or SyntheticConfig(), **overrides)
    return schema.validate_candles(_generate(cfg)[0])


def null_market(config: SyntheticConfig | None = None, **overrides) -> pd.DataFrame:
    """A market with no directional edge: no trend drift, no edges, price a martingale.

    Volatility still clusters (regimes, sessions); that predicts size, not direction.
    """
    if overrides.get("edges") or overrides.get("trend_drift"):
        raise ValueError("null_market takes no edges and no trend_drift; use make_market().")
    overrides.setdefault("symbol", "NULL")
    return make_market(config, **{**overrides, "edges": (), "trend_drift": 0.0})


def make_markets(
    symbols: tuple[str, ...] = ("SYNTH_A", "SYNTH_B", "SYNTH_C"), **kwargs
) -> dict[str, pd.DataFrame]:
    """Several independent markets: symbol ``i`` uses seed ``seed + i`` and, unless ``base_vol``
    is given, base_vol 0.001, 0.0015, 0.0025 (cycled). Other ``kwargs`` go to every market."""
    cfg = kwargs.pop("config", None) or SyntheticConfig()
    seed = kwargs.pop("seed", cfg.seed)
    vol = kwargs.pop("base_vol", None)
    return {
        s: make_market(cfg, symbol=s, seed=seed + i, base_vol=vol or _MULTI_VOLS[i % 3], **kwargs)
        for i, s in enumerate(symbols)
    }


@lru_cache(maxsize=1)
def _sample() -> pd.DataFrame:
    return make_market(n_bars=5_000, symbol="SAMPLE", seed=42, edges=(edge("body_momentum"),))


def sample_market() -> pd.DataFrame:
    """5,000 bars of 5m ``SAMPLE`` (seed 42) with the default ``body_momentum`` edge planted."""
    return _sample().copy()


def ground_truth(candles: pd.DataFrame) -> pd.DataFrame:
    """Hidden states and planted edges of a synthetic ``candles`` frame, row-aligned with it.

    Columns: ``session``, ``vol_regime``, ``trend_state`` (categoricals); ``sigma`` (per-bar
    log-return sigma); ``drift`` (total planted drift of the bar, sigma units, trend + edges);
    per edge ``<name>`` (bool: the condition holds on this bar — for ``body``/``volume`` the
    bar is a trigger acting on the *next* bars, for ``session`` the bar itself is drifted)
    , ``<name>_drift`` (signed drift the edge applies to this bar, sigma units) and
    ``<name>_ahead`` (signed drift, sigma units x bars, the edge has committed to the bars after
    this one once it has closed: what an oracle knows at this close; 0 for ``session`` edges).
    Works on subsets (e.g. after :func:`drop_bars`); the market is regenerated from its config.
    """
    cfg = candles.attrs.get("config")
    if not isinstance(cfg, SyntheticConfig):
        raise ValueError("candles carry no synthetic config in attrs; use make_market() frames.")
    full, truth = _generate(cfg)
    missing = candles.index.difference(full.index)
    if len(missing):
        raise ValueError(
            f"{len(missing)} bars are not from this synthetic market, e.g. {missing[0]}. "
            "Fix: call ground_truth() on the generated frame or a subset, not a resample."
        )
    close = full[schema.CLOSE].reindex(candles.index)
    if not np.array_equal(close.to_numpy(), candles[schema.CLOSE].to_numpy()):
        raise ValueError("candle prices differ from the generated market; were they modified?")
    return truth.reindex(candles.index)


def drop_bars(
    candles: pd.DataFrame, fraction: float = 0.01, seed: int = 0, mean_gap: float = 12.0
) -> pd.DataFrame:
    """Remove random stretches (about ``fraction`` of the bars, mean ``mean_gap`` bars long)
    to create gaps; the first and last bars are kept. ``attrs`` are preserved."""
    if not 0.0 <= fraction < 1.0 or mean_gap < 1:
        raise ValueError("fraction must be in [0, 1) and mean_gap >= 1.")
    n = len(candles)
    n_gaps = max(round(fraction * n / mean_gap), int(fraction > 0)) if n > 2 else 0
    rng = np.random.default_rng(seed)
    starts = rng.integers(1, max(n - 1, 2), size=n_gaps)
    ends = np.minimum(starts + rng.geometric(1.0 / mean_gap, size=n_gaps), n - 1)
    marks = np.zeros(n + 1, dtype=np.int64)
    np.add.at(marks, starts, 1)
    np.add.at(marks, ends, -1)
    keep = np.cumsum(marks[:n]) == 0
    logger.debug("drop_bars: removed %d of %d bars in %d gaps", n - keep.sum(), n, n_gaps)
    return candles.loc[keep].copy()
