"""What a tear sheet reads: one period of the audit trail, the state store and, optionally,
the frames of a replay — loaded once, validated, into :class:`PeriodData`.

Sources, as in production (DESIGN §1):

* the SQL audit trail (``phantom_trades``): every completed trade of the period with the
  score it was decided on and its entry features (JSON), and the published ``model_versions``;
* the state store: the learnt ``qcal:*`` thresholds and ``scalp_phantom:completed`` (the
  seed's source for the gate analysis; its records carry the gate flags);
* optionally a folder of replay frames (:func:`save_replay_frames`), for what only a replay
  knows: the no-filter baseline net of costs, exploration, the retrain timeline.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from research import schema as S
from research.signals import GATE_COLUMNS
from research.stores.rows import expand_features

logger = logging.getLogger(__name__)

#: Frames a replay folder holds (``<name>.parquet``); ``decisions`` is required.
REPLAY_FRAMES: tuple[str, ...] = ("decisions", "retrains", "threshold_fits", "uplift")
#: Plain facts about the replay saved beside its frames (``meta.parquet``: ``key``, ``value``),
#: e.g. ``costs``, the cost basis in words that the verdict states.
META = "meta"
#: Outcome columns every trade of a period has.
WIN = "win"  # 1 when the outcome is a win, else 0 (timeouts are not wins, as in the seed)


@dataclass(frozen=True, kw_only=True, slots=True)
class PeriodData:
    """One period's data for a tear sheet.

    Attributes
    ----------
    trades : DataFrame
        Completed trades (audit trail), exit-time order, with ``win`` (0/1) added and the
        entry features expanded as columns (NaN where a trade has none).
    feature_columns : list of str
        The feature columns of ``trades``.
    scalp_records : DataFrame
        ``scalp_phantom:completed`` records of the period (gate flags where recorded).
    thresholds : dict
        Strategy -> ``(qcal table {bucket: threshold}, trades it was fitted on)``.
    model_versions : DataFrame
        The audit trail's ``model_versions`` (published models, champions flagged).
    replay : dict of DataFrame
        The replay frames (empty without a replay folder).
    start, end : Timestamp or None
        The period, ``[start, end)`` on exit time (UTC).
    sources : dict
        Where each part came from (URLs with passwords masked).
    """

    trades: pd.DataFrame
    feature_columns: list[str]
    scalp_records: pd.DataFrame
    thresholds: dict[str, tuple[dict[str, float], int]]
    model_versions: pd.DataFrame
    replay: dict[str, pd.DataFrame] = field(default_factory=dict)
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def strategies(self) -> list[str]:
        """Strategies with trades in the period, in the schema's order."""
        present = set(self.trades[S.STRATEGY])
        return [s for s in S.STRATEGIES if s in present]


def _bound(value, name: str) -> pd.Timestamp | None:
    if value is None or value == "":
        return None
    try:
        return S.utc_timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{name}={value!r} is not a date. Fix: use ISO 8601, e.g. '2026-01-31' or "
            "'2026-01-31T12:00Z', or None for an open end."
        ) from exc


def _check_strategies(strategies: Sequence[str]) -> list[str]:
    unknown = [s for s in strategies if s not in S.STRATEGIES]
    if unknown:
        raise ValueError(
            f"unknown strategy {unknown}. Fix: use any of {list(S.STRATEGIES)} (or an empty "
            "list for all)."
        )
    return list(strategies) or list(S.STRATEGIES)


def save_replay_frames(result, folder: str | Path) -> Path:
    """Write a :class:`~research.replay.ReplayResult`'s frames as Parquet into ``folder``,
    and its cost basis in words (``meta.parquet``) for the report's verdict."""
    from research.analysis.verdict import costs_basis

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in REPLAY_FRAMES:
        frame = getattr(result, name)
        frame = frame.reset_index() if name == "uplift" else frame
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    meta = pd.DataFrame({"key": ["costs"], "value": [costs_basis(result)]})
    meta.to_parquet(folder / f"{META}.parquet", index=False)
    return folder


def load_replay_frames(folder: str | Path) -> dict[str, pd.DataFrame]:
    """The frames :func:`save_replay_frames` wrote (``uplift`` indexed by strategy again;
    ``meta`` when the folder has it)."""
    folder = Path(folder)
    if not (folder / "decisions.parquet").is_file():
        raise FileNotFoundError(
            f"no replay frames in {folder} (decisions.parquet is missing). Fix: pass the folder "
            "`phantomlab demo` wrote (reports/demo/replay by default), or None to leave the "
            "replay sections out."
        )
    frames = {}
    for name in (*REPLAY_FRAMES, META):
        path = folder / f"{name}.parquet"
        if path.is_file():
            frames[name] = pd.read_parquet(path)
    if "uplift" in frames and S.STRATEGY in frames["uplift"]:
        frames["uplift"] = frames["uplift"].set_index(S.STRATEGY)
    return frames


def _within(frame: pd.DataFrame, column: str, start, end) -> pd.DataFrame:
    if frame.empty or column not in frame:
        return frame
    t = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    keep = pd.Series(True, index=frame.index)
    if start is not None:
        keep &= t >= start
    if end is not None:
        keep &= t < end
    return frame.loc[keep.to_numpy()]


def _audit_period(database_url, wanted: list[str], start, end, *, min_trades: int) -> tuple:
    """Completed trades of ``wanted`` exiting in ``[start, end)`` (features as one mapping per
    trade), the published model versions and the masked database URL; too few trades is an
    error with a fix."""
    from research.stores.audit import AuditTrail

    audit = AuditTrail(database_url)
    try:
        raw = audit.completed_trades(strategy=wanted, start=start, end=end, with_features=True)
        versions = audit.model_versions()
        db = audit.masked_url
    finally:
        audit.close()
    if len(raw) < min_trades:
        raise ValueError(
            f"{len(raw)} completed trade(s) of {wanted} between {start or 'the start'} and "
            f"{end or 'now'} in {db}; at least {min_trades} needed. Fix: widen start/end, "
            "check database_url, or run `phantomlab demo` to fill a local audit trail."
        )
    return raw, versions, db


def _replay_period(replay_dir, wanted: list[str], start, end) -> dict[str, pd.DataFrame]:
    """The replay frames of ``replay_dir``, decisions cut to ``wanted`` signalled in the period."""
    replay = load_replay_frames(replay_dir)
    dec = replay["decisions"]
    replay["decisions"] = _within(
        dec.loc[dec[S.STRATEGY].isin(wanted).to_numpy()], S.SIGNAL_TIME, start, end
    )
    return replay


def load_period(
    *,
    database_url: str | None = None,
    state_url: str | None = None,
    namespace: str | None = None,
    start=None,
    end=None,
    strategies: Sequence[str] = (),
    replay_dir: str | Path | None = None,
    min_trades: int = 1,
) -> PeriodData:
    """Load one period for a tear sheet from the stores (and a replay folder, if given).

    Parameters
    ----------
    database_url, state_url, namespace : str, optional
        The audit trail and the state store (defaults: ``PHANTOMLAB_DATABASE_URL``,
        ``PHANTOMLAB_REDIS_URL``, ``PHANTOMLAB_NAMESPACE``).
    start, end : date-like, optional
        The period on exit time, ``[start, end)``; naive times are UTC.
    strategies : sequence of str
        Strategies to include; empty = all.
    replay_dir : path, optional
        Replay frames (:func:`save_replay_frames`), filtered to the same period. Default: the
        settings' ``replay_dir`` (``PHANTOMLAB_REPLAY_DIR`` or the workspace the demo left),
        if it names an existing folder; else none.
    min_trades : int
        Fewer completed trades than this is an error (a report of nothing helps no one).

    Raises
    ------
    research.stores.StoreUnavailable
        A store does not answer (the message says which and how to fix it).
    ValueError
        Bad dates or strategies, or too few trades in the period.
    """
    from research.config import Settings
    from research.stores.state import open_state
    from research.urls import mask_url

    if replay_dir is None:
        found = Settings.from_env().replay_dir
        replay_dir = found if found is not None and Path(found).is_dir() else None
    start, end = _bound(start, "start"), _bound(end, "end")
    if start is not None and end is not None and start >= end:
        raise ValueError(f"start {start} is not before end {end}. Fix: swap or widen them.")
    wanted = _check_strategies(strategies)
    raw, versions, db = _audit_period(database_url, wanted, start, end, min_trades=min_trades)
    trades, feature_columns = expand_features(raw)
    trades[WIN] = (trades[S.OUTCOME] == "win").astype(int)
    store = open_state(state_url, namespace=namespace)
    store.ping()
    thresholds = {s: store.load_thresholds(s) for s in wanted}
    scalp = pd.DataFrame.from_records(store.completed(scalp=True)) if "scalp" in wanted else None
    scalp = _within(scalp if scalp is not None else pd.DataFrame(), S.EXIT_TIME, start, end)
    replay = _replay_period(replay_dir, wanted, start, end) if replay_dir else {}
    logger.info(
        "period: %d trades, %d scalp records, replay=%s", len(trades), len(scalp), bool(replay)
    )
    sources = {"audit trail": db, "state store": mask_url(store.url)}
    if replay_dir:
        sources["replay frames"] = str(replay_dir)
    return PeriodData(
        trades=trades,
        feature_columns=feature_columns,
        scalp_records=scalp,
        thresholds=thresholds,
        model_versions=versions,
        replay=replay,
        start=start,
        end=end,
        sources=sources,
    )


def gate_frame(period: PeriodData) -> pd.DataFrame:
    """Scalp phantoms with their gate flags (bool) and outcome, for the gate analysis.

    Empty when no record carries gate flags (e.g. a store filled by an older version).
    """
    rec = period.scalp_records
    gates = [g for g in GATE_COLUMNS if g in rec]
    if rec.empty or not gates:
        return pd.DataFrame(columns=[*GATE_COLUMNS, S.OUTCOME, S.SIGNAL_TIME])
    rec = rec.dropna(subset=gates)
    out = rec[gates].astype(bool)
    out[S.OUTCOME] = rec[S.OUTCOME].to_numpy()
    out[S.SIGNAL_TIME] = pd.to_datetime(rec[S.SIGNAL_TIME], utc=True, format="ISO8601")
    return out.reset_index(drop=True)
