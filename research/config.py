"""Frozen, keyword-only settings for every step of the data flow.

Configs are plain frozen dataclasses: hashable, printable, comparable, and impossible to mutate
halfway through a run. ``dataclasses.replace(cfg, field=value)`` makes a variant.

Environment variables (read by :func:`Settings.from_env`) all start with ``PHANTOMLAB_``; the
workspace file (``./.phantomlab/config.toml``, :mod:`research.workspace`) supplies what the
environment does not (:meth:`Settings.resolve`: flag > environment > workspace file > default).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_frozen = dataclass(frozen=True, kw_only=True, slots=True)

# Defaults of Settings as module constants: with slots=True, ``Settings.redis_url`` is the
# slot descriptor, not the default, so from_env must not read defaults off the class.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "sqlite:///phantomlab.db"
DEFAULT_JOURNAL = "phantomlab-journal.jsonl"
DEFAULT_CONNECT_TIMEOUT_SEC = 3.0
DEFAULT_IO_TIMEOUT_SEC = 5.0


@_frozen
class Settings:
    """Where things live. Every URL is configurable through the environment.

    The reports folder (``PHANTOMLAB_REPORTS_DIR``) is not here: the pipeline runner owns it
    (:func:`nbrunner.catalog.default_reports_dir`).

    Attributes
    ----------
    data_dir : Path or None
        Folder of user CSV/Parquet candles (``PHANTOMLAB_DATA_DIR``); ``None`` = synthetic market.
    redis_url : str
        State store (``PHANTOMLAB_REDIS_URL``).
    database_url : str
        SQL audit trail (``PHANTOMLAB_DATABASE_URL``).
    journal_path : Path
        Outcome journal, where outcomes wait while SQL is down (``PHANTOMLAB_JOURNAL``).
    connect_timeout_sec : float
        Seconds to open a connection to Redis or PostgreSQL before giving up
        (``PHANTOMLAB_CONNECT_TIMEOUT``).
    io_timeout_sec : float
        Seconds a store may take to answer one command or statement before the caller falls
        back (the journal for SQL, a stale state view for Redis) (``PHANTOMLAB_IO_TIMEOUT``).
    replay_dir : Path or None
        Replay frames (:func:`research.reports.period.save_replay_frames`) the report pipeline
        reads when it is given none (``PHANTOMLAB_REPLAY_DIR``; the demo names its own).
    signing_key_file : Path or None
        File holding the model signing key, used when ``PHANTOMLAB_SIGNING_KEY`` is unset
        (``PHANTOMLAB_SIGNING_KEY_FILE``; the demo's workspace names its local key).

    Every field may also come from the workspace file (:mod:`research.workspace`); see
    :meth:`resolve` for the order.
    """

    data_dir: Path | None = None
    redis_url: str = DEFAULT_REDIS_URL
    database_url: str = DEFAULT_DATABASE_URL
    journal_path: Path = Path(DEFAULT_JOURNAL)
    connect_timeout_sec: float = DEFAULT_CONNECT_TIMEOUT_SEC
    io_timeout_sec: float = DEFAULT_IO_TIMEOUT_SEC
    signing_key_file: Path | None = None
    replay_dir: Path | None = None

    def __post_init__(self) -> None:
        for name in ("connect_timeout_sec", "io_timeout_sec"):
            value = getattr(self, name)
            if not 0 < value <= 3600:
                raise ValueError(
                    f"{name} must be in (0, 3600] seconds, got {value!r}. Fix: set "
                    f"PHANTOMLAB_{name.removesuffix('_sec').upper()} to a few seconds."
                )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings of this process: environment > workspace file > default.

        See :meth:`resolve`; with an explicit ``environ`` mapping only the workspace that
        mapping names (``PHANTOMLAB_WORKSPACE``) is read, so a mapping is self-contained.
        """
        return cls.resolve(environ=environ).settings

    @classmethod
    def resolve(
        cls, flags: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None
    ) -> ResolvedSettings:
        """Every setting from the one place that decides: flag > environment > workspace > default.

        Parameters
        ----------
        flags : mapping, optional
            Values given on the command line, by field name (``None`` values are ignored).
        environ : mapping, optional
            The environment; default ``os.environ``. The workspace file
            (:func:`research.workspace.config_path`: ``$PHANTOMLAB_WORKSPACE/config.toml``, else
            ``./.phantomlab/config.toml``) is read for ``os.environ``, and for an explicit
            mapping only when it names ``PHANTOMLAB_WORKSPACE``.

        Raises
        ------
        ValueError
            A malformed workspace file or a bad number of seconds (with a fix).
        """
        from research import workspace as ws

        env = os.environ if environ is None else environ
        path = ws.config_path(env)
        use_file = environ is None or bool(env.get(ws.WORKSPACE_ENV))
        stored = ws.read_workspace(path) if use_file else {}
        raw, sources = {}, {}
        for spec in ws.SPECS:
            given = (flags or {}).get(spec.name)
            if given is not None:
                raw[spec.name], sources[spec.name] = str(given), "flag"
            elif env.get(spec.env):
                raw[spec.name], sources[spec.name] = env[spec.env], f"environment ({spec.env})"
            elif spec.name in stored:
                raw[spec.name], sources[spec.name] = stored[spec.name], f"workspace file ({path})"
            else:
                sources[spec.name] = "default"
        values = {}
        for name, text in raw.items():
            kind = ws.SPEC[name].kind
            if kind == "path":
                values[name] = Path(text).expanduser()
            elif kind == "seconds":
                label = ws.SPEC[name].env
                values[name] = _seconds({label: text}, label, 0.0)
            else:
                values[name] = text
        return ResolvedSettings(
            settings=cls(**values), sources=sources, workspace_file=path if use_file else None
        )


@_frozen
class ResolvedSettings:
    """:class:`Settings` and where each value came from (``flag``, ``environment (VAR)``,
    ``workspace file (PATH)`` or ``default``); ``workspace_file`` is the file consulted."""

    settings: Settings
    sources: dict[str, str]
    workspace_file: Path | None = None


def _seconds(env, name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number of seconds. Fix: e.g. {name}=5") from None


def _default_timeouts() -> dict[str, float]:
    # Seed, "Phantom Trade Lifecycle": 36 h for trend (and range), 24 h for scalp.
    return {"trend": 36.0, "range": 36.0, "scalp": 24.0}


@_frozen
class SimulatorConfig:
    """Rules of the bar simulator (DESIGN §4, seed "Phantom Trade Lifecycle").

    Attributes
    ----------
    tp1_r : float
        TP1 milestone in R multiples (seed: 1.6). Reaching it moves the stop to entry from the
        next bar on. ``0`` or negative disables the milestone.
    timeout_hours : dict
        Timeout per strategy, hours of wall-clock time (not bars, so gaps do not shift it).
        A ``timeout_hours`` column on the signals frame overrides it per signal.
    timeout_exit : {'close', 'entry'}
        ``'close'`` (default, rigorous) closes a timed-out trade at the close of the bar that
        crosses the deadline; ``'entry'`` is the seed's behaviour (closed at the entry price).
    fee_percent : float
        Round-trip fees, percent of notional, deducted from ``pnl_percent`` and ``realized_rr``.
    slippage_percent : float
        Adverse slippage per fill (entry and exit), percent of price.
    """

    tp1_r: float = 1.6
    timeout_hours: dict[str, float] = field(default_factory=_default_timeouts)
    timeout_exit: str = "close"
    fee_percent: float = 0.0
    slippage_percent: float = 0.0

    def __post_init__(self) -> None:
        if self.timeout_exit not in ("close", "entry"):
            raise ValueError(f"timeout_exit must be 'close' or 'entry', got {self.timeout_exit!r}")
        if self.fee_percent < 0 or self.slippage_percent < 0:
            raise ValueError("fee_percent and slippage_percent must be >= 0")
        bad = {k: v for k, v in self.timeout_hours.items() if not v > 0}
        if bad:
            raise ValueError(f"timeout_hours must be > 0, got {bad}")

    def __hash__(self) -> int:  # dict field: hash on its items
        return hash(
            (
                self.tp1_r,
                tuple(sorted(self.timeout_hours.items())),
                self.timeout_exit,
                self.fee_percent,
                self.slippage_percent,
            )
        )


@_frozen
class TrendConfig:
    """Trend pullback: trade with an ordered EMA stack after price pulls back to the fast EMA.

    Long when ``ema_fast > ema_mid > ema_slow``, the low of one of the last ``pullback_bars``
    bars came within ``touch_atr`` ATR of the fast EMA, and the signal bar closes above the fast
    EMA and above the previous bar's high (the pullback resumes). Short mirrored.
    """

    ema_fast: int = 20
    ema_mid: int = 50
    ema_slow: int = 200
    atr_period: int = 14
    pullback_bars: int = 5
    touch_atr: float = 0.25
    sl_atr: float = 1.5
    tp_r: float = 2.5
    cooldown_bars: int = 12
    warmup_bars: int = 300  # no signal before every indicator (and feature) is defined


@_frozen
class RangeConfig:
    """Range: fade the edges of a flat channel.

    A range is a ``lookback``-bar Donchian channel narrower than ``max_width_atr`` ATR with a
    slow-EMA slope below ``max_slope_atr`` ATR per bar. Long when the signal bar dipped into the
    bottom ``edge_frac`` of the channel and closed back above it with a bullish body; short
    mirrored at the top.
    """

    lookback: int = 48
    atr_period: int = 14
    ema_period: int = 50
    max_width_atr: float = 8.0
    max_slope_atr: float = 0.05
    edge_frac: float = 0.15
    sl_atr: float = 1.2
    tp_r: float = 2.0
    cooldown_bars: int = 12
    warmup_bars: int = 300


@_frozen
class ScalpConfig:
    """Scalp: micro-breakout of the last ``breakout_bars`` bars in the direction of the fast EMA.

    Long when the signal bar closes above the highest high of the previous ``breakout_bars``
    bars, closes above ``ema_fast`` and has a bullish body. Every scalp signal carries the
    seed's gate variables (research.signals.scalp.GATE_COLUMNS), computed at signal time; the
    gates do not filter signals — they are recorded so gate analysis can judge them on phantoms.
    """

    breakout_bars: int = 5
    ema_fast: int = 21
    htf_factor: int = 12  # higher timeframe = htf_factor x base timeframe (5m -> 1h)
    htf_ema: int = 20
    atr_period: int = 14
    volume_lookback: int = 20
    bb_period: int = 20
    bb_rank_lookback: int = 200
    sl_atr: float = 1.0
    tp_r: float = 2.0
    cooldown_bars: int = 6
    warmup_bars: int = 500  # the emulated higher-timeframe EMA needs 2 x 240 base bars


@_frozen
class FeatureConfig:
    """Look-back windows of the feature extractors (bars of the signal's own timeframe)."""

    atr_period: int = 14
    channel_bars: int = 20
    volume_lookback: int = 20
    rsi_period: int = 14
    regime_lookback: int = 500
    divergence_bars: int = 20
    bb_rank_lookback: int = 200
    realized_vol_bars: int = 48
    #: Signals in the first ``warmup_bars`` bars of a series may have NaN features (the
    #: strategies of research.signals never signal that early).
    warmup_bars: int = 300
