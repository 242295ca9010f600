"""A sweep of replay settings: one replay per combination, one tidy table of verdicts.

:func:`sweep` builds the cartesian product of a grid of settings (``rule``, ``retrain_every``,
``costs``, ...) on top of a base :class:`~research.replay.ReplayConfig`, computes the study
(signals, features, phantom outcomes) once, and runs one replay per setting through
:func:`research.distributed.map_tasks` — in a loop here, on a local cluster, or on a running
Dask cluster (``scheduler=``, ``$PHANTOMLAB_DASK_SCHEDULER``). The numbers are the same
wherever the replays run.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from research import schema as S
from research.analysis.verdict import classify
from research.distributed import map_tasks, resolve_scheduler
from research.errors import fix_of
from research.replay import ReplayConfig, replay
from research.study import StudyData, run_signals_and_phantoms

logger = logging.getLogger(__name__)


def _scorer(config: ReplayConfig, **change: Any) -> ReplayConfig:
    return dataclasses.replace(config, scorer=dataclasses.replace(config.scorer, **change))


def _flag(value: Any) -> bool:
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    if isinstance(value, bool | int):
        return bool(value)
    raise ValueError(f"{value!r} is not true or false")


def _rule(config: ReplayConfig, value: Any) -> ReplayConfig:
    rule = dataclasses.replace(config.thresholds, rule=str(value))
    return dataclasses.replace(config, thresholds=rule)


def _retrain_every(config: ReplayConfig, value: Any) -> ReplayConfig:
    return _scorer(config, retrain_every=int(value))


def _min_trades(config: ReplayConfig, value: Any) -> ReplayConfig:
    return _scorer(config, min_trades=int(value))


def _learn_from_timeouts(config: ReplayConfig, value: Any) -> ReplayConfig:
    return _scorer(config, learn_from_timeouts=_flag(value))


def _costs(config: ReplayConfig, value: Any) -> ReplayConfig:
    return dataclasses.replace(config, costs=dataclasses.replace(config.costs, default=str(value)))


def _exploration(config: ReplayConfig, value: Any) -> ReplayConfig:
    return dataclasses.replace(config, exploration=float(value))


#: the settings a grid may vary: name -> (what it sets, how)
SETTINGS: dict[str, tuple[str, Callable[[ReplayConfig, Any], ReplayConfig]]] = {
    "rule": ("ThresholdConfig.rule: 'seed' or 'rigorous'", _rule),
    "retrain_every": ("ScorerConfig.retrain_every: outcomes between retrains", _retrain_every),
    "costs": ("CostModel.default: a profile of research.costs.PROFILES", _costs),
    "exploration": ("ReplayConfig.exploration: share of rejected signals executed", _exploration),
    "min_trades": ("ScorerConfig.min_trades: outcomes before the first model", _min_trades),
    "learn_from_timeouts": (
        "ScorerConfig.learn_from_timeouts: true or false",
        _learn_from_timeouts,
    ),
}

#: the metric columns of :func:`sweep`'s table, after the settings and ``strategy``
COLUMNS: tuple[str, ...] = (
    "n_signals",
    "n_passed",
    "skill",
    "skill_low",
    "skill_high",
    "uplift",
    "ci_low",
    "ci_high",
    "null_low",
    "null_high",
    "null_p",
    "retrains",
    "verdict",
)


def sweep_settings(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of ``grid`` as a list of ``{name: value}``, first name slowest.

    Raises ValueError (with the fix) for an unknown name, an empty list or a bad value.
    """
    unknown = [name for name in grid if name not in SETTINGS]
    if unknown:
        valid = "; ".join(f"{k} ({v[0]})" for k, v in SETTINGS.items())
        raise ValueError(f"unknown sweep setting(s) {unknown}. Fix: vary some of: {valid}.")
    empty = [name for name, values in grid.items() if isinstance(values, str) or not len(values)]
    if empty:
        raise ValueError(
            f"sweep setting(s) {empty} need a list of values. Fix: e.g. "
            "grid={'rule': ['seed', 'rigorous'], 'retrain_every': [100, 300]}."
        )
    for name, values in grid.items():  # a bad value fails here, with its fix, before any replay
        for value in values:
            try:
                SETTINGS[name][1](ReplayConfig(), value)
            except (ValueError, TypeError) as exc:
                text = (
                    str(exc)
                    if fix_of(exc)  # the config's own fix, else which values the setting takes
                    else (f"{str(exc).rstrip('.')}. Fix: {name} is {SETTINGS[name][0]}.")
                )
                raise ValueError(f"sweep setting {name}={value!r}: {text}") from exc
    names = list(grid)
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(list(grid[n]) for n in names))
    ]


def setting_config(base: ReplayConfig, setting: Mapping[str, Any]) -> ReplayConfig:
    """``base`` with the settings of ``setting`` applied (frozen configs: a new one)."""
    config = base
    for name, value in setting.items():
        config = SETTINGS[name][1](config, value)
    return config


def replay_setting(
    setting: Mapping[str, Any],
    *,
    candles: Mapping[str, pd.DataFrame],
    study: StudyData,
    base: ReplayConfig,
    strategies: Sequence[str],
) -> pd.DataFrame:
    """One task of :func:`sweep`: replay ``setting`` and return its rows of the tidy table."""
    config = setting_config(base, setting)
    up = replay(candles, strategies, config, study=study, progress=False).uplift
    rows = pd.DataFrame(
        {
            S.STRATEGY: up.index.astype(str),
            "n_signals": up["n"].to_numpy(),
            "n_passed": up["n_passed"].to_numpy(),
            **{
                c: up[c].to_numpy()
                for c in COLUMNS[COLUMNS.index("skill") : COLUMNS.index("null_p") + 1]
            },
            "retrains": up["retrains"].to_numpy(),
            "verdict": [classify(row) for _, row in up.iterrows()],
        }
    )
    for i, (name, value) in enumerate(setting.items()):
        rows.insert(i, name, value)
    return rows


def sweep(
    candles: Mapping[str, pd.DataFrame],
    grid: Mapping[str, Sequence[Any]],
    *,
    base: ReplayConfig | None = None,
    strategies: Sequence[str] = S.STRATEGIES,
    study: StudyData | None = None,
    scheduler: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Replay ``candles`` once per combination of ``grid``'s settings; one tidy table.

    Basis: the replayed decisions — each signal scored and decided out of sample, by the model
    and thresholds learnt only from outcomes closed before it — in R per trade; ``skill`` is
    the filter's **gross** uplift (mean gross R of the signals it passed minus that of every
    closed signal), ``uplift`` the same **net of the costs named** by the setting (``costs``,
    else the base config's). Intervals: block bootstrap at the base config's ``confidence``;
    ``null_low``/``null_high``/``null_p``: the rotation null of the skill.

    Parameters
    ----------
    candles : mapping of symbol -> candles
    grid : mapping of str -> list
        Setting name -> values, e.g. ``{'rule': ['seed', 'rigorous'], 'retrain_every':
        [100, 300]}``. Names: :data:`SETTINGS` (``rule``, ``retrain_every``, ``costs``,
        ``exploration``, ``min_trades``, ``learn_from_timeouts``).
    base : ReplayConfig, optional
        What every replay starts from (default ``ReplayConfig()``).
    strategies : sequence of str
    study : StudyData, optional
        Signals, features and phantom outcomes of ``candles``; computed once here when
        omitted (with the base config's simulator).
    scheduler : str, optional
        Where the replays run (:func:`research.distributed.resolve_scheduler`): nothing
        configured = in this process; ``'local'``, ``'in-process'`` or a Dask address.
        ``candles``, ``study`` and ``base`` travel once to every worker, each setting to its
        task; a task returns its rows only.
    progress : bool

    Returns
    -------
    DataFrame
        One row per setting x strategy (the strategies, then ``'all'``): the setting columns
        in ``grid``'s order, ``strategy``, ``n_signals`` (closed signals), ``n_passed``,
        ``skill``, ``skill_low``, ``skill_high``, ``uplift`` (net), ``ci_low``, ``ci_high``,
        ``null_low``, ``null_high``, ``null_p``, ``retrains`` and ``verdict``
        (:func:`research.analysis.verdict.classify`: 'skill', 'harm', 'none', 'too_few').
    """
    base = base or ReplayConfig()
    settings = sweep_settings(grid)
    resolve_scheduler(scheduler)  # a bad scheduler fails now, not after the study
    strategies = list(strategies)
    if study is None:
        study = run_signals_and_phantoms(
            candles, strategies, simulator=base.simulator, progress=progress
        )
    logger.info(
        "sweep: %d setting(s) x %d strategies, %d signals",
        len(settings),
        len(strategies),
        len(study.signals),
    )
    frames = map_tasks(
        replay_setting,
        settings,
        scheduler=scheduler,
        progress=progress,
        desc="sweep",
        shared={"candles": dict(candles), "study": study, "base": base, "strategies": strategies},
    )
    return pd.concat(frames, ignore_index=True)
