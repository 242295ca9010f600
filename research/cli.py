"""The ``phantomlab`` command (click): ``phantomlab --help`` lists the subcommands.

Exit codes: 0 success, 1 a run that failed, 2 bad usage or bad input (with a message saying
how to fix it).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from research import schema as S


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.version_option(package_name="phantomlab")
def main(verbose: int) -> None:
    """Phantom Lab: ML filtering of trading signals, with phantom trades."""
    _setup_logging(verbose)


@main.command()
@click.option(
    "--data",
    "data_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of candle files (default: built-in synthetic market).",
)
@click.option("--timeframe", default=None, help="Only files of this timeframe, e.g. 5m.")
@click.option(
    "--bars",
    "n_bars",
    type=click.IntRange(min=1000),
    default=20_000,
    show_default=True,
    help="Bars per synthetic symbol.",
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
    default=500,
    show_default=True,
    help="Outcomes between retrains in the replay (the seed's rule uses 50).",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports") / "demo",
    show_default=True,
    help="Local files: embedded state database, demo signing key.",
)
def demo(data_dir, timeframe, n_bars, seed, out, retrain_every, workdir) -> None:  # fmt: skip
    """Run the main job: market -> signals -> phantoms -> replay -> publish models and state.

    State and models go to PHANTOMLAB_REDIS_URL when it is set, else to an SQLite file in
    --workdir (no server needed).
    """
    from research.analysis import outcome_summary
    from research.demo import run_demo
    from research.pipeline import load_market
    from research.stores import StoreError

    try:
        candles = load_market(data_dir, timeframe=timeframe, n_bars=n_bars, seed=seed)
        res = run_demo(candles, workdir=workdir, retrain_every=retrain_every, seed=seed)
    except (S.SchemaError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    except StoreError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    study = res.study
    source = f"data folder {data_dir}" if data_dir else f"synthetic market (seed {seed})"
    click.echo(f"Phantom Lab demo on {source}: {len(candles)} symbols "
               f"({', '.join(candles)}), {sum(map(len, candles.values())):,} bars")  # fmt: skip
    summary = outcome_summary(study.signals, study.outcomes)
    click.echo("\nSignals and phantom outcomes per strategy (R = multiples of initial risk):")
    click.echo(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    click.echo(f"\n{study.features.shape[1]} features per signal; "
               f"{int(study.outcomes[S.CENSORED].sum())} trades still open at data end.")  # fmt: skip
    fmt = {"float_format": lambda v: f"{v:.3f}"}
    click.echo("\nReplay of the online loop (executed net of costs vs phantoms vs all signals):")
    click.echo(res.replay.summary.to_string(index=False, **fmt))
    cols = ["n", "n_passed", "uplift", "ci_low", "ci_high", "retrains"]
    click.echo("\nFilter uplift, mean R per trade (95 % block-bootstrap interval):")
    click.echo(res.replay.uplift[cols].to_string(**fmt))
    click.echo(f"\nAudit trail (every closed trade) in {res.database_url}")
    click.echo(f"State and signed models saved to {res.state_url}:")
    for strategy, version in res.published.items():
        click.echo(f"  {strategy}: " + (f"champion v{version}" if version else "no model yet "
                                        "(too few outcomes; the heuristic scores)"))  # fmt: skip
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        study.signals.to_parquet(out / "signals.parquet")
        study.features.to_parquet(out / "features.parquet")
        study.outcomes.to_parquet(out / "outcomes.parquet")
        res.replay.decisions.to_parquet(out / "decisions.parquet")
        click.echo(f"wrote signals, features, outcomes and decisions to {out}/")


@main.group()
def state() -> None:
    """The state store (Redis or SQLite) and its rebuild from the SQL audit trail."""


@state.command()
@click.option("--state-url", default=None, help="Default: PHANTOMLAB_REDIS_URL.")
@click.option("--database-url", default=None, help="Default: PHANTOMLAB_DATABASE_URL.")
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Outcome journal to replay into SQL first, if it exists.",
)
def rebuild(state_url, database_url, journal_path) -> None:
    """Rebuild the state store's view of completed trades from SQL (after Redis was down).

    Journaled outcomes (written while SQL was down) are replayed into SQL first.
    """
    from research.stores import StoreError
    from research.stores.audit import AuditTrail
    from research.stores.journal import REPLAYING_SUFFIX, OutcomeJournal
    from research.stores.recorder import rebuild_state
    from research.stores.state import open_state

    try:
        audit = AuditTrail(database_url)
        if journal_path is not None and any(
            p.exists() for p in (journal_path, Path(f"{journal_path}{REPLAYING_SUFFIX}"))
        ):  # an absent journal is not created (nor its lock file) just to find it empty
            n = OutcomeJournal(journal_path).replay_into(audit)
            click.echo(f"replayed {n} journaled outcome(s) into {audit.masked_url}")
        store = open_state(state_url)
        counts = rebuild_state(audit, store)
    except StoreError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    total = sum(counts.values())
    click.echo(f"rebuilt {store.url} from {audit.masked_url}: {total} trade(s) "
               + ", ".join(f"{k} {v}" for k, v in counts.items()))  # fmt: skip


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
