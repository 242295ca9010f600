"""``phantomlab replay`` (the online loop on your signals) and ``phantomlab sweep`` (settings).

Exit codes (:mod:`research.cli_common`): 0 done, 1 a replay that failed, 2 bad input (a signals
file, a data folder, a setting, an unreachable scheduler) with a fix.
"""

from __future__ import annotations

from pathlib import Path

import click

from research import schema as S
from research.cli_common import (
    DATA_OPTION,
    LIGHT_MODEL,
    LIGHT_OPTION,
    PROGRESS_OPTION,
    TIMEFRAME_OPTION,
    cli_errors,
)

_FMT = {"float_format": lambda v: f"{v:.3f}"}
#: Columns of the uplift table ``replay`` prints (those the result has).
REPLAY_UPLIFT_COLUMNS = (
    "n",
    "n_passed",
    "uplift",
    "ci_low",
    "ci_high",
    "skill",
    "skill_low",
    "skill_high",
    "retrains",
)


@click.command("replay")
@click.option(
    "--signals",
    "signals_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Your bot's signals (CSV, CSV.gz or Parquet): symbol, side (long/short), signal_time "
    "(UTC close time of the signal bar), entry, sl, tp; optional strategy, signal_id, "
    "timeout_hours; any other column becomes a model feature x_<name>.",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder of candle files; each symbol is matched to a file stem (BTC/USDT -> BTC_USDT_5m).",
)
@TIMEFRAME_OPTION
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: REPORTS_DIR/replay-<UTC time>/, REPORTS_DIR from "
    "PHANTOMLAB_REPORTS_DIR, else ./reports).",
)
@click.option(
    "--timeout-hours",
    type=click.FloatRange(min=0, min_open=True),
    default=24.0,
    show_default=True,
    help="Timeout of signals without a timeout_hours value of their own, hours.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the models, the exploration draws and the bootstrap.",
)
@click.option(
    "--retrain-every",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Closed outcomes between retrains (the seed's rule: 50, once 30 exist).",
)
@LIGHT_OPTION
@PROGRESS_OPTION
@cli_errors()
def replay_signals(
    signals_path, data_dir, timeframe, out, timeout_hours, seed, retrain_every, light, progress
) -> None:
    """Replay the online loop on YOUR signals: score, decide, execute or track as a phantom,
    learn, retrain; then the filter's uplift against taking every signal.

    Writes decisions, summary, uplift and retrains as Parquet (and uplift.csv) to --out.
    Exit 2 with a fix for a bad signals file, folder or symbol.
    """
    import pandas as pd

    from nbrunner.catalog import default_reports_dir
    from research.replay import ReplayConfig, replay
    from research.scoring import EnsembleScorer, ScorerConfig

    signals, study = _study(signals_path, data_dir, timeframe, timeout_hours, progress)
    strategies = sorted(study.signals[S.STRATEGY].unique())
    knobs = LIGHT_MODEL if light else {}
    model = EnsembleScorer(random_state=seed, **knobs)
    config = ReplayConfig(scorer=ScorerConfig(retrain_every=retrain_every, model=model), seed=seed)
    result = replay(study.candles, strategies, config, study=study, progress=progress)

    out = out or default_reports_dir() / f"replay-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%SZ}"
    out.mkdir(parents=True, exist_ok=True)
    for name in ("decisions", "summary", "uplift", "retrains"):
        getattr(result, name).to_parquet(out / f"{name}.parquet")
    result.uplift.to_csv(out / "uplift.csv")
    _echo_replay(result, signals, study, signals_path, strategies)
    click.echo(f"\nwrote decisions, summary, uplift and retrains to {out}/")


@cli_errors(usage=(ValueError, FileNotFoundError))  # a bad file, folder or symbol: exit 2
def _study(signals_path, data_dir, timeframe, timeout_hours, progress):
    """The user's signals, and the study (features, phantom outcomes) built on the candles."""
    from research.candles import load_folder
    from research.pipeline import study_from_signals
    from research.signals.external import load_signals

    signals = load_signals(signals_path)
    candles = load_folder(data_dir, timeframe=timeframe)
    study = study_from_signals(candles, signals, timeout_hours=timeout_hours, progress=progress)
    return signals, study


def _echo_replay(result, signals, study, signals_path, strategies) -> None:
    from research.signals.extras import extra_columns

    dropped = len(signals) - len(study.signals)
    extras = extra_columns(study.signals)
    click.echo(
        f"Replay of {len(study.signals):,} signals from {signals_path} on "
        f"{study.signals[S.SYMBOL].nunique()} symbol(s), strategies {strategies}"
        + (f"; {dropped:,} outside the candles' period dropped" if dropped else "")
    )
    click.echo(
        f"Features: {study.features.shape[1] - len(extras)} computed from candles + "
        f"{len(extras)} from your file ({', '.join(extras) or 'none'})"
    )
    click.echo("\nExecuted (net of costs) vs phantoms vs all signals:")
    click.echo(result.summary.to_string(index=False, **_FMT))
    cols = [c for c in REPLAY_UPLIFT_COLUMNS if c in result.uplift]
    click.echo("\nFilter uplift, mean R per trade (95 % block-bootstrap interval):")
    click.echo(result.uplift[cols].to_string(**_FMT))
    try:
        from research.analysis.verdict import replay_verdict
    except ImportError:  # the verdict in words is optional; the table says it in numbers
        pass
    else:
        click.echo("\n" + replay_verdict(result))


def split_values(values: tuple[str, ...], convert=str, name: str = "") -> list:
    """Repeatable and comma-separated option values, in order, without duplicates."""
    out = []
    for raw in values:
        for part in str(raw).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                value = convert(part)
            except ValueError as exc:
                what = {int: "whole number", float: "number"}.get(convert, "value")
                raise click.UsageError(
                    f"{name} {part!r} is not a {what}. Fix: e.g. {name} "
                    + ("100,300." if convert is int else "0,0.05.")
                ) from exc
            if value not in out:
                out.append(value)
    return out


@click.command("sweep")
@DATA_OPTION
@TIMEFRAME_OPTION
@click.option(
    "--kind",
    type=click.Choice(["planted", "null"]),
    default="planted",
    show_default=True,
    help="Known-answer market without --data: planted edge, or none (null).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the known-answer market, the models and the bootstrap.",
)
@click.option(
    "--n-bars",
    type=click.IntRange(min=1000),
    default=16_000,
    show_default=True,
    help="Bars per symbol of the known-answer market.",
)
@click.option(
    "--strategies",
    default=",".join(S.STRATEGIES),
    show_default=True,
    help="Comma-separated strategies to replay.",
)
@click.option(
    "--rule",
    "rules",
    multiple=True,
    default=("rigorous",),
    show_default=True,
    help="Threshold rule(s): seed, rigorous (repeatable or comma-separated).",
)
@click.option(
    "--retrain-every",
    "retrain_every",
    multiple=True,
    default=("50",),
    show_default=True,
    help="Outcomes between retrains (repeatable or comma-separated, e.g. 100,300).",
)
@click.option(
    "--costs",
    "costs",
    multiple=True,
    default=("crypto_perp",),
    show_default=True,
    help="Cost profile(s) of non-FX symbols: crypto_perp, crypto_spot, fx, none.",
)
@click.option(
    "--exploration",
    "exploration",
    multiple=True,
    default=(),
    help="Share(s) of rejected signals executed anyway (default 0).",
)
@click.option(
    "--n-boot",
    type=click.IntRange(min=50),
    default=1000,
    show_default=True,
    help="Block-bootstrap replicates of each interval.",
)
@click.option(
    "--scheduler",
    default=None,
    help="Where the replays run: 'in-process', "
    "'local' (a local Dask cluster, one worker per core) or a Dask scheduler address "
    "tcp://host:port. Default: env PHANTOMLAB_DASK_SCHEDULER, else in-process.",
)
@LIGHT_OPTION
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the table as CSV here (default: print it).",
)
@PROGRESS_OPTION
@cli_errors()
def sweep_command(
    data_dir,
    timeframe,
    kind,
    seed,
    n_bars,
    strategies,
    rules,
    retrain_every,
    costs,
    exploration,
    n_boot,
    scheduler,
    light,
    out,
    progress,
) -> None:
    """Replay once per combination of settings (rule x retrain cadence x costs ...) and print
    one table: per setting and strategy the filter's skill (gross R per trade) and uplift (net
    of the named costs) with intervals, the null band, retrains and the verdict.

    The signals and phantom outcomes are computed once; the replays run in this process, on a
    local Dask cluster (--scheduler local) or on a running one (--scheduler tcp://host:port).
    Exit 2 with a fix for bad input or an unreachable scheduler, 1 if a replay fails.
    """
    from research.known_answer import known_answer_market
    from research.pipeline import load_market
    from research.replay import ReplayConfig
    from research.scoring import EnsembleScorer, ScorerConfig
    from research.sweep import sweep

    grid = {
        "rule": split_values(rules),
        "retrain_every": split_values(retrain_every, int, "--retrain-every"),
        "costs": split_values(costs),
    }
    if exploration:
        grid["exploration"] = split_values(exploration, float, "--exploration")
    knobs = LIGHT_MODEL if light else {}
    scorer = ScorerConfig(model=EnsembleScorer(random_state=seed, **knobs))
    base = ReplayConfig(scorer=scorer, seed=seed, n_boot=n_boot)
    # SchedulerError (exit 2) and TaskError (a replay failed, exit 1) are mapped by cli_errors
    with cli_errors(usage=(ValueError, FileNotFoundError)):
        if data_dir is not None:
            candles = load_market(data_dir, timeframe=timeframe)
        else:
            candles = known_answer_market(kind, n_bars=n_bars, seed=seed)
        table = sweep(
            candles,
            grid,
            base=base,
            strategies=split_values((strategies,)),
            scheduler=scheduler,
            progress=progress,
        )
    source = (
        f"data folder {data_dir}"
        if data_dir is not None
        else f"the known-answer market '{kind}' (seed {seed}, {n_bars:,} bars)"
    )
    n_settings = int(table[S.STRATEGY].eq("all").sum())
    click.echo(
        f"Sweep of {n_settings} setting(s) on {source}, one row per setting and strategy "
        "(and 'all'). Basis: replayed out-of-sample decisions, R per trade; skill = gross, "
        "uplift = net of the named costs; 95 % block-bootstrap intervals."
    )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, index=False)
        click.echo(f"wrote {len(table)} rows to {out}")
    else:
        click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
