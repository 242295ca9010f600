"""``phantomlab demo``: the main job, market -> signals -> phantoms -> replay -> publish -> report.

Exit codes (:mod:`research.cli_common`): 0 done, 1 a store that does not answer or a report
pipeline that failed, 2 a bad ``--data`` folder (with a fix).
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import click

from research import schema as S
from research.cli_common import DATA_OPTION, TIMEFRAME_OPTION, cli_errors

#: Columns of the uplift table the demo prints.
UPLIFT_COLUMNS = [
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
_FMT = {"float_format": lambda v: f"{v:.3f}"}


@click.command()
@DATA_OPTION
@TIMEFRAME_OPTION
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
@cli_errors()
def demo(data_dir, timeframe, n_bars, seed, out, retrain_every, workdir, key_file, report) -> None:
    """Run the main job: market -> signals -> phantoms -> replay -> publish -> HTML report.

    State and models go to PHANTOMLAB_REDIS_URL when it is set, else to an SQLite file in
    --workdir (no server needed); the audit trail to PHANTOMLAB_DATABASE_URL, else SQLite.
    The report pipeline's run lands in reports/report/<run-id>/ (PHANTOMLAB_REPORTS_DIR).
    """
    candles, res = _run(data_dir, timeframe, n_bars, seed, workdir, retrain_every, key_file)
    _echo_results(res, candles, data_dir, seed)
    _echo_stores(res)
    _save_workspace(res)
    if out is not None:
        _write_frames(res, out)
    if report:
        _run_report(res, workdir)


@cli_errors(usage=(ValueError, FileNotFoundError))  # a bad --data folder: exit 2, with a fix
def _run(data_dir, timeframe, n_bars, seed, workdir, retrain_every, key_file):
    """The market (``--data`` or the built-in one) and the demo run on it."""
    from research.demo import run_demo
    from research.pipeline import load_market

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
    return candles, res


def _echo_results(res, candles, data_dir, seed) -> None:
    """The verdict, the outcome summary and the replay's tables."""
    from research.analysis import outcome_summary
    from research.analysis.verdict import replay_verdict

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
    click.echo("\n" + textwrap.fill(replay_verdict(res.replay), width=100) + "\n")
    summary = outcome_summary(study.signals, study.outcomes)
    click.echo(
        "\nSignals and phantom outcomes per strategy (R = multiples of initial risk, "
        "gross: before costs):"
    )
    click.echo(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    click.echo(
        f"\n{study.features.shape[1]} features per signal; "
        f"{int(study.outcomes[S.CENSORED].sum())} trades still open at data end."
    )
    click.echo(
        "\nReplay of the online loop: executed vs phantoms vs all signals, R per trade "
        "net of costs for every set (mean_r, total_r) and gross (…_gross):"
    )
    click.echo(res.replay.summary.to_string(index=False, **_FMT))
    click.echo(
        "\nFilter uplift, mean R per trade vs taking every signal: skill = gross, uplift "
        "= net of costs (95 % block-bootstrap intervals; none under 30 passed trades):"
    )
    click.echo(res.replay.uplift[UPLIFT_COLUMNS].to_string(**_FMT))


def _echo_stores(res) -> None:
    """Where the audit trail, the state and the signed models went."""
    from research.urls import mask_url

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


def _save_workspace(res) -> None:
    """Remember the demo's stores and key for later commands (a warning if it cannot)."""
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


def _write_frames(res, out: Path) -> None:
    """``--out``: signals, features, outcomes and decisions as Parquet."""
    study = res.study
    out.mkdir(parents=True, exist_ok=True)
    study.signals.to_parquet(out / "signals.parquet")
    study.features.to_parquet(out / "features.parquet")
    study.outcomes.to_parquet(out / "outcomes.parquet")
    res.replay.decisions.to_parquet(out / "decisions.parquet")
    click.echo(f"wrote signals, features, outcomes and decisions to {out}/")


def _run_report(res, workdir: Path) -> None:
    """The report pipeline on the demo's stores; exit 1 if it fails."""
    from research.demo import run_report

    click.echo("\nRunning the report pipeline (pipelines/report.ipynb) ...")
    run = run_report(res, workdir=workdir)
    click.echo(f"report {run.status}: {run.html}")
    if not run.ok:
        click.echo(f"Error: the report pipeline failed: {run.error}", err=True)
        sys.exit(1)
    click.echo(f"\nOpen the reports index: {run.index.resolve().as_uri()}")
