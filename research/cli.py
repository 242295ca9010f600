"""The ``phantomlab`` command (click): ``phantomlab --help`` lists the subcommands.

Exit codes: 0 success, 1 a run that failed, 2 bad usage or bad input (with a message saying
how to fix it).
"""

from __future__ import annotations

import logging
import sys
import textwrap
from pathlib import Path

import click

from research import schema as S


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


#: candle files of the user's, or the built-in known-answer market (demo, sweep)
_DATA_OPTION = click.option(
    "--data",
    "data_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of candle files (default: the built-in known-answer market).",
)
_TIMEFRAME_OPTION = click.option(
    "--timeframe", default=None, help="Only files of this timeframe, e.g. 5m."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.version_option(package_name="phantomlab")
def main(verbose: int) -> None:
    """Phantom Lab: ML filtering of trading signals, with phantom trades."""
    _setup_logging(verbose)


@main.command()
@_DATA_OPTION
@_TIMEFRAME_OPTION
@click.option(
    "--bars",
    "n_bars",
    type=click.IntRange(min=1000),
    default=16_000,
    show_default=True,
    help="Hourly bars per symbol of the built-in market (16,000: ~1.8 years, ~7,000 signals).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Synthetic market seed.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write signals, features and outcomes as Parquet into this folder.",
)
@click.option(
    "--retrain-every",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Outcomes between retrains of trend and scalp, the seed's 50 by default (range: a "
    "quarter, at least 50).",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports") / "demo",
    show_default=True,
    help="Local files: embedded state and audit databases, replay frames.",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Local signing key, used when PHANTOMLAB_SIGNING_KEY is unset; created with mode 0600 "
    "(default: $PHANTOMLAB_WORKSPACE/signing_key, else ./.phantomlab/signing_key; never under "
    "the shared reports folder).",
)
@click.option(
    "--report/--no-report",
    default=True,
    show_default=True,
    help="Run the report pipeline at the end and rebuild reports/index.html.",
)
def demo(data_dir, timeframe, n_bars, seed, out, retrain_every, workdir, key_file, report) -> None:
    """Run the main job: market -> signals -> phantoms -> replay -> publish -> HTML report.

    State and models go to PHANTOMLAB_REDIS_URL when it is set, else to an SQLite file in
    --workdir (no server needed); the audit trail to PHANTOMLAB_DATABASE_URL, else SQLite.
    The report pipeline's run lands in reports/report/<run-id>/ (PHANTOMLAB_REPORTS_DIR).
    """
    from research.analysis import outcome_summary
    from research.demo import run_demo
    from research.pipeline import load_market
    from research.stores import StoreError
    from research.stores.backends import mask_url

    try:
        candles = load_market(data_dir, timeframe=timeframe, n_bars=n_bars, seed=seed)
        res = run_demo(
            candles, workdir=workdir, retrain_every=retrain_every, seed=seed, key_path=key_file
        )
        if res.replay.decisions[S.CENSORED].astype(bool).all():  # also when there is no signal
            raise ValueError(
                f"{data_dir or 'the market'}: {sum(map(len, candles.values())):,} bars gave no "
                "closed trade to report on. "
                "Fix: give each symbol more history (indicators need a few hundred bars before "
                "the first signal; the built-in market has 16,000 hourly bars per symbol)."
            )
    except (S.SchemaError, ValueError, FileNotFoundError) as exc:  # bad --data: exit 2, a fix
        raise click.UsageError(str(exc)) from exc
    except StoreError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    study = res.study
    source = (
        f"data folder {data_dir}"
        if data_dir
        else f"the built-in known-answer market (planted volume-momentum edge, seed {seed})"
    )
    click.echo(
        f"Phantom Lab demo on {source}: {len(candles)} symbols "
        f"({', '.join(candles)}), {sum(map(len, candles.values())):,} bars"
    )
    from research.analysis.verdict import replay_verdict

    click.echo("\n" + textwrap.fill(replay_verdict(res.replay), width=100) + "\n")
    summary = outcome_summary(study.signals, study.outcomes)
    click.echo(
        "\nSignals and phantom outcomes per strategy (R = multiples of initial risk, gross: before costs):"
    )
    click.echo(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    click.echo(
        f"\n{study.features.shape[1]} features per signal; "
        f"{int(study.outcomes[S.CENSORED].sum())} trades still open at data end."
    )
    fmt = {"float_format": lambda v: f"{v:.3f}"}
    click.echo(
        "\nReplay of the online loop: executed vs phantoms vs all signals, R per trade "
        "net of costs for every set (mean_r, total_r) and gross (…_gross):"
    )
    click.echo(res.replay.summary.to_string(index=False, **fmt))
    cols = [
        "n",
        "n_passed",
        "skill",
        "skill_low",
        "skill_high",
        "cost_selection",
        "uplift",
        "ci_low",
        "ci_high",
        "retrains",
        "note",
    ]
    click.echo(
        "\nFilter uplift, mean R per trade vs taking every signal: skill = gross, uplift "
        "= net of costs (95 % block-bootstrap intervals; none under 30 passed trades):"
    )
    click.echo(res.replay.uplift[cols].to_string(**fmt))
    click.echo(f"\nAudit trail (every closed trade) in {mask_url(res.database_url)}")
    click.echo(f"State and signed models saved to {mask_url(res.state_url)}:")
    for strategy, version in res.published.items():
        click.echo(
            f"  {strategy}: "
            + (
                f"champion v{version}"
                if version
                else "no model yet (too few outcomes; the heuristic scores)"
            )
        )
    if res.key_path is not None:
        click.echo(
            f"Models signed with the local key in {res.key_path} (mode 0600; set "
            "PHANTOMLAB_SIGNING_KEY to sign with your own)"
        )
    from research.demo import save_workspace

    try:
        workspace = save_workspace(res)
    except (ValueError, OSError) as exc:  # a malformed or unwritable workspace file
        click.echo(f"Warning: workspace not saved: {exc}", err=True)
    else:
        click.echo(
            f"Workspace {workspace}: later commands run here use these stores and this key by "
            "default (`phantomlab config` shows every setting and where it comes from)"
        )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        study.signals.to_parquet(out / "signals.parquet")
        study.features.to_parquet(out / "features.parquet")
        study.outcomes.to_parquet(out / "outcomes.parquet")
        res.replay.decisions.to_parquet(out / "decisions.parquet")
        click.echo(f"wrote signals, features, outcomes and decisions to {out}/")
    if not report:
        return
    from research.demo import run_report

    click.echo("\nRunning the report pipeline (pipelines/report.ipynb) ...")
    run = run_report(res, workdir=workdir)
    click.echo(f"report {run.status}: {run.html}")
    if not run.ok:
        click.echo(f"Error: the report pipeline failed: {run.error}", err=True)
        sys.exit(1)
    click.echo(f"\nOpen the reports index: {run.index.resolve().as_uri()}")


@main.command("replay")
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
@click.option("--timeframe", default=None, help="Only candle files of this timeframe, e.g. 5m.")
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
@click.option(
    "--light",
    is_flag=True,
    help="Small, quick models (30 trees, 30 boosting iterations, no neural net).",
)
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Progress bars on stderr."
)
def replay_signals(
    signals_path, data_dir, timeframe, out, timeout_hours, seed, retrain_every, light, progress
) -> None:
    """Replay the online loop on YOUR signals: score, decide, execute or track as a phantom,
    learn, retrain; then the filter's uplift against taking every signal.

    Writes decisions, summary, uplift and retrains as Parquet (and uplift.csv) to --out.
    Exit 2 with a fix for a bad signals file, folder or symbol.
    """
    import pandas as pd

    from research.candles import load_folder
    from research.config import ScorerConfig
    from research.pipeline import study_from_signals
    from research.replay import ReplayConfig, replay
    from research.runner.catalog import default_reports_dir
    from research.signals.external import load_signals
    from research.signals.extras import extra_columns

    try:
        signals = load_signals(signals_path)
        candles = load_folder(data_dir, timeframe=timeframe)
        study = study_from_signals(candles, signals, timeout_hours=timeout_hours, progress=progress)
    except (S.SchemaError, ValueError, FileNotFoundError) as exc:
        raise click.UsageError(str(exc)) from exc
    strategies = sorted(study.signals[S.STRATEGY].unique())
    knobs = {"n_estimators": 30, "gb_max_iter": 30, "nn_enabled": False} if light else {}
    config = ReplayConfig(
        scorer=ScorerConfig(retrain_every=retrain_every, random_state=seed, **knobs), seed=seed
    )
    result = replay(study.candles, strategies, config, study=study, progress=progress)

    out = out or default_reports_dir() / f"replay-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%SZ}"
    out.mkdir(parents=True, exist_ok=True)
    for name in ("decisions", "summary", "uplift", "retrains"):
        getattr(result, name).to_parquet(out / f"{name}.parquet")
    result.uplift.to_csv(out / "uplift.csv")
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
    fmt = {"float_format": lambda v: f"{v:.3f}"}
    click.echo("\nExecuted (net of costs) vs phantoms vs all signals:")
    click.echo(result.summary.to_string(index=False, **fmt))
    cols = [
        c
        for c in (
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
        if c in result.uplift
    ]
    click.echo("\nFilter uplift, mean R per trade (95 % block-bootstrap interval):")
    click.echo(result.uplift[cols].to_string(**fmt))
    try:
        from research.analysis.verdict import replay_verdict
    except ImportError:  # the verdict in words is optional; the table says it in numbers
        pass
    else:
        click.echo("\n" + replay_verdict(result))
    click.echo(f"\nwrote decisions, summary, uplift and retrains to {out}/")


def _split(values: tuple[str, ...], convert=str, name: str = "") -> list:
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


@main.command("sweep")
@_DATA_OPTION
@_TIMEFRAME_OPTION
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
@click.option(
    "--light",
    is_flag=True,
    help="Small, quick models (30 trees, 30 boosting iterations, no neural net).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the table as CSV here (default: print it).",
)
@click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Progress bars on stderr."
)
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
    from research.config import ScorerConfig
    from research.distributed import SchedulerError, TaskError
    from research.known_answer import known_answer_market
    from research.pipeline import load_market
    from research.replay import ReplayConfig
    from research.sweep import sweep

    grid = {
        "rule": _split(rules),
        "retrain_every": _split(retrain_every, int, "--retrain-every"),
        "costs": _split(costs),
    }
    if exploration:
        grid["exploration"] = _split(exploration, float, "--exploration")
    knobs = {"n_estimators": 30, "gb_max_iter": 30, "nn_enabled": False} if light else {}
    base = ReplayConfig(scorer=ScorerConfig(random_state=seed, **knobs), seed=seed, n_boot=n_boot)
    try:
        if data_dir is not None:
            candles = load_market(data_dir, timeframe=timeframe)
        else:
            candles = known_answer_market(kind, n_bars=n_bars, seed=seed)
        table = sweep(
            candles,
            grid,
            base=base,
            strategies=_split((strategies,)),
            scheduler=scheduler,
            progress=progress,
        )
    except (S.SchemaError, ValueError, FileNotFoundError, SchedulerError) as exc:
        raise click.UsageError(str(exc)) from exc
    except TaskError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
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


@main.group()
def state() -> None:
    """The state store (Redis or SQLite) and its rebuild from the SQL audit trail."""


@state.command()
@click.option("--state-url", default=None, help="Default: PHANTOMLAB_REDIS_URL.")
@click.option("--database-url", default=None, help="Default: PHANTOMLAB_DATABASE_URL.")
@click.option(
    "--namespace",
    default=None,
    help="Key prefix the writers use (default: PHANTOMLAB_NAMESPACE, else none).",
)
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Outcome journal replayed into SQL first (default: PHANTOMLAB_JOURNAL, else "
    "./phantomlab-journal.jsonl; absent = nothing to replay).",
)
@click.option(
    "--allow-foreign-keys",
    is_flag=True,
    help="Run on a database without namespace that also holds other applications' keys "
    "(they are never touched).",
)
def rebuild(state_url, database_url, namespace, journal_path, allow_foreign_keys) -> None:
    """Rebuild the state store's view of completed trades from SQL (after Redis was down).

    Journaled outcomes (written while SQL was down) are replayed into SQL first. Only the
    completed-trade keys are rebuilt, swapped in atomically; thresholds, open phantoms,
    training bookkeeping, models and other keys are left as they are. Writers may keep
    recording meanwhile: nothing they record is lost.
    """
    from research.config import Settings
    from research.stores import StoreError
    from research.stores.audit import AuditTrail
    from research.stores.backends import mask_url
    from research.stores.journal import REPLAYING_SUFFIX, OutcomeJournal
    from research.stores.rebuild import rebuild_state
    from research.stores.state import open_state

    journal_path = journal_path or Settings.from_env().journal_path
    try:
        audit = AuditTrail(database_url)
        journal = None
        if any(p.exists() for p in (journal_path, Path(f"{journal_path}{REPLAYING_SUFFIX}"))):
            # an absent journal is not created (nor its lock file) just to find it empty
            journal = OutcomeJournal(journal_path)
            click.echo(
                f"replaying {len(journal.pending())} journaled outcome(s) from "
                f"{journal_path} into {audit.masked_url}"
            )
        store = open_state(state_url, namespace=namespace)
        counts = rebuild_state(audit, store, journal=journal, allow_foreign=allow_foreign_keys)
    except StoreError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    total = sum(counts.values())
    click.echo(
        f"rebuilt {mask_url(store.url)} from {audit.masked_url}: {total} trade(s) "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
    )


# --------------------------------------------------------------------------------------------
# Production notebooks (pipelines/): phantomlab pipeline run|list, phantomlab reports
# --------------------------------------------------------------------------------------------
# No default here: None lets the runner resolve it (research.runner.catalog.default_reports_dir),
# the one place that reads PHANTOMLAB_REPORTS_DIR.
_REPORTS_OPTION = click.option(
    "--reports-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Root of the run folders and index.html (default: env PHANTOMLAB_REPORTS_DIR, "
    "else ./reports).",
)
_PIPELINES_OPTION = click.option(
    "--pipelines-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PHANTOMLAB_PIPELINES_DIR",
    default=None,
    help="Folder of pipeline notebooks (env PHANTOMLAB_PIPELINES_DIR; default: the "
    "repository's pipelines/, else ./pipelines).",
)


@main.group()
def pipeline() -> None:
    """Production notebooks: run one with validated parameters, or list them."""


def _read_params_file(path: Path | None) -> dict:
    import yaml

    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise click.UsageError(
            f"cannot read parameters file {path}: {exc}. Fix: pass a readable YAML file "
            "of `name: value` lines."
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise click.UsageError(
            f"parameters file {path} holds a {type(data).__name__}, not a mapping of names to "
            "values. Fix: write one `name: value` per line (e.g. `n_bars: 3000`)."
        )
    return data


def _parse_assignments(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.UsageError(
                f"-p {pair!r} is not KEY=VALUE. Fix: write e.g. -p n_bars=3000 "
                "(values are YAML: -p force=true, -p strategies=[scalp,trend], -p data_dir=null)."
            )
        out[key.strip()] = value
    return out


@pipeline.command("run")
@click.argument("name")
@click.option(
    "-p",
    "--param",
    "pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a parameter (repeatable); VALUE is YAML, text for str parameters.",
)
@click.option(
    "-f",
    "--params-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="YAML file of parameters (applied before -p).",
)
@click.option(
    "--timeout",
    "timeout_sec",
    type=click.FloatRange(min=0, min_open=True),
    default=3600.0,
    show_default=True,
    help="Wall-clock limit of the whole run, in seconds.",
)
@_REPORTS_OPTION
@_PIPELINES_OPTION
@click.option("--run-id", default=None, help="Name of the run folder (default: UTC time + suffix).")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Per-cell progress bar on stderr (default: when stderr is a terminal).",
)
def pipeline_run(
    name, pairs, params_file, timeout_sec, reports_dir, pipelines_dir, run_id, progress
) -> None:
    """Run pipeline NAME (a catalogued notebook stem of the pipelines folder; `pipeline list`).

    Leaves REPORTS_DIR/NAME/RUN_ID/ with the executed notebook, its HTML report and
    manifest.json, and rebuilds REPORTS_DIR/index.html. Exit 0 ok, 1 the run failed or timed
    out, 2 unknown pipeline or bad parameter (the failed notebook and HTML are still written).
    The manifest says "running" from the start; on SIGTERM the run is stopped and recorded as
    failed, then the command ends by that signal (exit 143 in a shell).
    """
    import signal

    from research.runner import ParameterError, PipelineNotFoundError, run_pipeline

    # Ctrl-C (SIGINT) stops the run and marks it failed, even when this process inherited
    # SIGINT as ignored (a background job of a non-interactive shell does)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    overrides = _read_params_file(params_file) | _parse_assignments(pairs)
    if progress is None:
        progress = sys.stderr.isatty()
    try:
        res = run_pipeline(
            name,
            overrides,
            pipelines_dir=pipelines_dir,
            reports_dir=reports_dir,
            timeout_sec=timeout_sec,
            run_id=run_id,
            progress=progress,
        )
    except PipelineNotFoundError as exc:
        raise click.UsageError(str(exc)) from exc
    except ParameterError as exc:
        if exc.result is not None:
            click.echo(
                f"run dir: {exc.result.run_dir}\nstatus:  failed (bad parameters)\n"
                f"html:    {exc.result.html}"
            )
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    except ValueError as exc:  # a malformed or already used --run-id
        raise click.UsageError(str(exc)) from exc
    except OSError as exc:  # e.g. the kernelspec cannot be registered
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"run dir: {res.run_dir}\nstatus:  {res.status}\nhtml:    {res.html}")
    if not res.ok:
        click.echo(f"Error: {res.error}", err=True)
        sys.exit(1)


@pipeline.command("list")
@_PIPELINES_OPTION
def pipeline_list(pipelines_dir) -> None:
    """List the pipelines with each parameter's type, default and help."""
    from research.runner import list_pipelines
    from research.runner.catalog import default_pipelines_dir

    folder = pipelines_dir if pipelines_dir is not None else default_pipelines_dir()
    infos = list_pipelines(folder)
    if not infos:
        click.echo(f"no pipeline notebooks (*.ipynb) in {folder}")
        return
    click.echo(f"pipelines in {folder}:")
    for info in infos:
        click.echo(f"\n{info.name}" + (f"  - {info.description}" if info.description else ""))
        if info.error:
            click.echo(f"  (cannot read its parameters: {info.error})")
        for p in info.parameters:
            click.echo(
                f"  {p.name}: {p.type_text} = {p.default!r}" + (f"  # {p.help}" if p.help else "")
            )


@main.command()
@_REPORTS_OPTION
def reports(reports_dir) -> None:
    """Rebuild REPORTS_DIR/index.html (every run, newest first) and print its path.

    Runs whose runner stopped sending heartbeats (killed outright) are marked "died" first.
    """
    from research.runner import build_index

    click.echo(str(build_index(reports_dir)))


from research.cli_models import config, models  # noqa: E402  (phantomlab models / config)

for _command in (models, config):
    main.add_command(_command)
from research.cli_data import data  # noqa: E402  (phantomlab data download / list / check)

main.add_command(data)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
