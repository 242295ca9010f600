"""The main job end to end, as one call: what ``phantomlab demo`` (``make demo``) runs.

market -> signals -> features -> phantoms -> replay of the online loop (scores, thresholds,
retrains) -> every closed trade into the SQL audit trail -> state saved in the seed's keys and
the models published, signed, to the registry -> a notification. By default everything stays
local (SQLite files, no server needed); with ``PHANTOMLAB_REDIS_URL`` /
``PHANTOMLAB_DATABASE_URL`` it goes to Redis / PostgreSQL.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from research.config import ScorerConfig
from research.notify import notifier_from_env
from research.pipeline import StudyData, run_signals_and_phantoms
from research.replay import ReplayConfig, ReplayResult, replay
from research.reports.period import save_replay_frames
from research.stores.audit import AuditTrail
from research.stores.persist import audit_rows, save_replay
from research.stores.registry import KEY_ENV, ModelRegistry
from research.stores.state import open_state

logger = logging.getLogger(__name__)

REPLAY_DIR = "replay"  # replay frames (Parquet) under the demo's workdir


@dataclass(frozen=True, kw_only=True, slots=True)
class DemoResult:
    """What the demo produced and where it put it."""

    study: StudyData
    replay: ReplayResult
    state_url: str
    database_url: str
    published: dict[str, int | None]


def demo_signing_key(workdir: Path) -> str:
    """``$PHANTOMLAB_SIGNING_KEY``, else a random key kept in ``workdir/.signing_key`` (0600).

    A local convenience so the demo runs with nothing configured; production sets the variable
    (the key is never written to the state store).
    """
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV]
    path = workdir / ".signing_key"
    if not path.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
        logger.warning("no %s set: the demo signs with a local key in %s", KEY_ENV, path)
    return path.read_text().strip()


def demo_config(retrain_every: int = 50, *, seed: int = 0) -> ReplayConfig:
    """The demo's replay settings: the seed's cadence, the rigorous cost-aware rule, exploration.

    * The seed's rule: retrain every ``retrain_every`` (50) outcomes once 30 exist — cheap
      because a retrain calibrates on the scores outcomes were decided on (prequential) and
      renews 10 % of the forest and trains the net a few epochs on (a full refit once the
      data grew by 20 %). Range, whose signals are ~10 x rarer than scalp's, retrains every
      ``retrain_every / 4`` outcomes, at least 50 (with the default: 50, the seed's rule).
    * Timeouts are kept as outcomes with their R (rigorous; the seed drops them), so the
      model's P(win) is over every trade the decision rule can take.
    * 5 % of the signals the filter rejects are executed anyway (``p_execute`` logged), so
      the model keeps seeing what the threshold rejects and the no-filter value stays
      estimable from executed trades alone.
    * A lighter ensemble (100 trees, 100 boosting iterations) than the seed's 200/200.
    """
    scorer = ScorerConfig(retrain_every=retrain_every, n_estimators=100, gb_max_iter=100,
                          learn_from_timeouts=True)  # fmt: skip
    return ReplayConfig(scorer=scorer, retrain_every={"range": max(50, retrain_every // 4)},
                        exploration=0.05, seed=seed)  # fmt: skip


def run_demo(candles: dict[str, pd.DataFrame], *, workdir: Path, state_url: str | None = None,
             database_url: str | None = None, retrain_every: int = 50, seed: int = 0,
             progress: bool = True) -> DemoResult:  # fmt: skip
    """Run the main job on ``candles``; state and models go to ``state_url``.

    Parameters
    ----------
    candles : dict of symbol -> candles
    workdir : Path
        Where local files go (the embedded state database, the demo signing key).
    state_url : str, optional
        ``redis://…`` or ``sqlite:///…``; default ``$PHANTOMLAB_REDIS_URL`` or
        ``sqlite:///<workdir>/state.db``.
    database_url : str, optional
        The SQL audit trail; default ``$PHANTOMLAB_DATABASE_URL`` or
        ``sqlite:///<workdir>/audit.db``.
    retrain_every : int
        Outcomes between retrains of trend and scalp (range: a quarter of it, at least 50;
        see :func:`demo_config`); default the seed's 50.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    state_url = (
        state_url
        or os.environ.get("PHANTOMLAB_REDIS_URL")
        or (f"sqlite:///{(workdir / 'state.db').resolve()}")
    )
    database_url = (
        database_url
        or os.environ.get("PHANTOMLAB_DATABASE_URL")
        or (f"sqlite:///{(workdir / 'audit.db').resolve()}")
    )
    store = open_state(state_url)
    store.ping()  # fail early, with a fix, before the long part
    audit = AuditTrail(database_url)
    study = run_signals_and_phantoms(candles, progress=progress)
    result = replay(candles, config=demo_config(retrain_every, seed=seed), study=study,
                    progress=progress)  # fmt: skip
    # durability order: the audit trail (SQL) first, then the state store and the registry
    audit.record_trades(audit_rows(result.decisions, study.signals), features=study.features)
    registry = ModelRegistry(store, key=demo_signing_key(workdir), audit=audit)
    published = save_replay(store, result, registry=registry, publish=True,
                            signals=study.signals)  # fmt: skip
    # what only the replay knows (costed baseline, retrain timeline) for the report pipeline
    save_replay_frames(result, workdir / REPLAY_DIR)
    audit.close()
    notifier_from_env().send(
        "Phantom Lab demo: "
        + ", ".join(f"{s} v{v}" for s, v in published.items() if v)
        + f" published to {store.url}"
    )
    return DemoResult(study=study, replay=result, state_url=state_url,
                      database_url=database_url, published=published)  # fmt: skip


def run_report(result: DemoResult, *, workdir: Path, reports_dir: Path | None = None,
               timeout_sec: float = 1800, progress: bool = False):  # fmt: skip
    """Run ``pipelines/report.ipynb`` on the demo's stores through the pipeline runner.

    The tear sheet reads the audit trail and the state store the demo wrote (SQLite files, or
    Redis/PostgreSQL when configured) and the replay frames in ``workdir``; the runner leaves
    ``reports/report/<run-id>/`` (notebook, HTML, manifest) and rebuilds
    ``reports/index.html``. Returns the :class:`research.runner.RunResult`.
    """
    from research.runner import run_pipeline

    params = {"replay_dir": str((workdir / REPLAY_DIR).resolve())}
    # URLs from the environment are not passed: the kernel inherits them, and parameters are
    # printed in the report (a password in a URL must not end up in an HTML file)
    for name, url, var in (("database_url", result.database_url, "PHANTOMLAB_DATABASE_URL"),
                           ("state_url", result.state_url, "PHANTOMLAB_REDIS_URL")):  # fmt: skip
        if url != os.environ.get(var):
            params[name] = url
    return run_pipeline("report", params, reports_dir=reports_dir, timeout_sec=timeout_sec,
                        progress=progress)  # fmt: skip
