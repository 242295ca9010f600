"""``phantomlab state``: the state store (Redis or SQLite) and its rebuild from the audit trail.

Exit codes (:mod:`research.cli_common`): 0 rebuilt, 1 a store that does not answer or a
rebuild refused (each with a fix).
"""

from __future__ import annotations

from pathlib import Path

import click

from research.cli_common import cli_errors


@click.group()
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
@cli_errors()  # StoreError (StoreUnavailable, RebuildRefused): exit 1
def rebuild(state_url, database_url, namespace, journal_path, allow_foreign_keys) -> None:
    """Rebuild the state store's view of completed trades from SQL (after Redis was down).

    Journaled outcomes (written while SQL was down) are replayed into SQL first. Only the
    completed-trade keys are rebuilt, swapped in atomically; thresholds, open phantoms,
    training bookkeeping, models and other keys are left as they are. Writers may keep
    recording meanwhile: nothing they record is lost.
    """
    from research.config import Settings
    from research.online.rebuild import rebuild_state
    from research.stores.audit import AuditTrail
    from research.stores.journal import REPLAYING_SUFFIX, OutcomeJournal
    from research.stores.state import open_state
    from research.urls import mask_url

    journal_path = journal_path or Settings.from_env().journal_path
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
    total = sum(counts.values())
    click.echo(
        f"rebuilt {mask_url(store.url)} from {audit.masked_url}: {total} trade(s) "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
    )
