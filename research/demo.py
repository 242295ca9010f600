"""The main job end to end, as one call: what ``phantomlab demo`` (``make demo``) runs.

market -> signals -> features -> phantoms -> replay of the online loop (scores, thresholds,
retrains) -> every closed trade into the SQL audit trail -> state saved in the seed's keys and
the models published, signed, to the registry -> a notification. By default everything stays
local (SQLite files, no server needed); with ``PHANTOMLAB_REDIS_URL`` /
``PHANTOMLAB_DATABASE_URL`` it goes to Redis / PostgreSQL. Without ``PHANTOMLAB_SIGNING_KEY``
models are signed with a local key in ``./.phantomlab/signing_key`` (mode 0600, outside the
shared ``reports/``). URLs are shown with their passwords masked. The ``phantomlab demo`` command
then leaves the workspace file (:func:`save_workspace`) so later commands use the same stores.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from nbrunner.catalog import default_reports_dir
from research.notify import notifier_from_env
from research.online.persist import audit_rows, save_replay
from research.replay import ReplayConfig, ReplayResult, replay
from research.reports.period import save_replay_frames
from research.scoring import EnsembleScorer, ScorerConfig
from research.stores.audit import AuditTrail
from research.stores.registry import KEY_ENV, ModelRegistry
from research.stores.state import open_state
from research.study import StudyData, run_signals_and_phantoms
from research.urls import mask_url
from research.workspace import KEY_FILE, WORKSPACE_ENV, workspace_dir, write_workspace

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
    key_path: Path | None = None  # the local signing key, when PHANTOMLAB_SIGNING_KEY is unset
    replay_dir: Path | None = None  # the replay frames the report pipeline reads


def default_key_path() -> Path:
    """Where the demo keeps its local signing key: ``$PHANTOMLAB_WORKSPACE/signing_key``, else
    ``./.phantomlab/signing_key`` (relative to the working directory).

    A workspace folder of its own (git-ignored), never under ``reports/``: that folder is meant
    to be shared, and whoever holds the key can sign a model the bot would load.
    """
    return workspace_dir() / KEY_FILE


def write_secret_file(path: Path, text: str) -> bool:
    """Create ``path`` holding ``text``, mode 0600 from its first byte; never replace a file.

    The text goes to a temporary file opened with ``O_CREAT | O_EXCL`` and mode 0600 in the
    same folder (made 0700 if new), is fsynced, then hard-linked to ``path``: no reader ever
    sees a half-written key or one that others could read, and of two processes creating the
    key at once the first wins (the second reads it).

    Returns
    -------
    bool
        ``True`` if this call created ``path``, ``False`` if it already existed.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # atomic, and unlike a rename it never replaces a key
        except FileExistsError:
            return False
        except OSError:  # a filesystem without hard links: an exclusive rename instead
            if path.exists():
                return False
            os.replace(tmp, path)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def demo_signing_key(path: Path | None = None, *, legacy: Path | None = None) -> str:
    """``$PHANTOMLAB_SIGNING_KEY``, else a random key kept in ``path`` (mode 0600).

    A local convenience so the demo runs with nothing configured; production sets the variable
    (the key is never written to the state store).

    Parameters
    ----------
    path : Path, optional
        The key file; default :func:`default_key_path` (``./.phantomlab/signing_key``).
        Created atomically with mode 0600 (:func:`write_secret_file`) when missing.
    legacy : Path, optional
        Where an older version kept the key (``<workdir>/.signing_key``, inside ``reports/``):
        moved to ``path`` if ``path`` does not exist yet, so earlier models still verify.

    Raises
    ------
    ValueError
        ``path`` lies inside the reports folder (``$PHANTOMLAB_REPORTS_DIR``, else ``reports``).
    """
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV]
    path = Path(path) if path is not None else default_key_path()
    reports = default_reports_dir().resolve()
    if path.resolve().is_relative_to(reports):
        raise ValueError(
            f"the demo signing key {path} would be inside the reports folder {reports}, which "
            f"is meant to be shared. Fix: keep it elsewhere (--key-file, ${WORKSPACE_ENV}) or "
            f"set {KEY_ENV}."
        )
    if legacy is not None and legacy.is_file() and not path.exists():
        if write_secret_file(path, legacy.read_text(encoding="utf-8").strip()):
            legacy.unlink()
            logger.warning("moved the demo signing key out of %s to %s", legacy.parent, path)
    if write_secret_file(path, secrets.token_hex(32)):
        logger.info("no %s set: the demo signs with a new local key in %s", KEY_ENV, path)
    elif path.stat().st_mode & 0o077:
        logger.warning(
            "the demo signing key %s is readable by others. Fix: chmod 600 %s", path, path
        )
    return path.read_text(encoding="utf-8").strip()


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
    scorer = ScorerConfig(
        retrain_every=retrain_every,
        model=EnsembleScorer(n_estimators=100, gb_max_iter=100),
        learn_from_timeouts=True,
    )
    return ReplayConfig(
        scorer=scorer,
        retrain_every={"range": max(50, retrain_every // 4)},
        exploration=0.05,
        seed=seed,
    )


def run_demo(
    candles: dict[str, pd.DataFrame],
    *,
    workdir: Path,
    state_url: str | None = None,
    database_url: str | None = None,
    retrain_every: int = 50,
    seed: int = 0,
    progress: bool = True,
    key_path: Path | None = None,
) -> DemoResult:
    """Run the main job on ``candles``; state and models go to ``state_url``.

    Parameters
    ----------
    candles : dict of symbol -> candles
    workdir : Path
        Where local files go (the embedded state and audit databases, the replay frames).
    state_url : str, optional
        ``redis://…`` or ``sqlite:///…``; default ``$PHANTOMLAB_REDIS_URL`` or
        ``sqlite:///<workdir>/state.db``.
    database_url : str, optional
        The SQL audit trail; default ``$PHANTOMLAB_DATABASE_URL`` or
        ``sqlite:///<workdir>/audit.db``.
    retrain_every : int
        Outcomes between retrains of trend and scalp (range: a quarter of it, at least 50;
        see :func:`demo_config`); default the seed's 50.
    key_path : Path, optional
        The local signing key used when ``PHANTOMLAB_SIGNING_KEY`` is unset; default
        :func:`default_key_path` (``./.phantomlab/signing_key``, never under ``reports/``).
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
    result = replay(
        candles, config=demo_config(retrain_every, seed=seed), study=study, progress=progress
    )
    # durability order: the audit trail (SQL) first, then the state store and the registry
    audit.record_trades(audit_rows(result.decisions, study.signals), features=study.features)
    key = demo_signing_key(key_path, legacy=workdir / ".signing_key")
    registry = ModelRegistry(store, key=key, audit=audit)
    published = save_replay(store, result, registry=registry, publish=True, signals=study.signals)
    # what only the replay knows (costed baseline, retrain timeline) for the report pipeline
    save_replay_frames(result, workdir / REPLAY_DIR)
    audit.close()
    notifier_from_env().send(
        "Phantom Lab demo: "
        + ", ".join(f"{s} v{v}" for s, v in published.items() if v)
        + f" published to {mask_url(store.url)}"
    )
    local_key = None if os.environ.get(KEY_ENV) else (key_path or default_key_path())
    return DemoResult(
        study=study,
        replay=result,
        state_url=state_url,
        database_url=database_url,
        published=published,
        key_path=local_key,
        replay_dir=workdir / REPLAY_DIR,
    )


def save_workspace(result: DemoResult, path: Path | None = None) -> Path:
    """Leave the workspace file later commands use by default (:mod:`research.workspace`).

    It names the stores the demo chose itself (its SQLite files) and its local signing key
    *file*, as absolute paths; what the environment supplied (``PHANTOMLAB_REDIS_URL``,
    ``PHANTOMLAB_DATABASE_URL``, ``PHANTOMLAB_SIGNING_KEY``) is removed from the file instead of
    copied into it, so later commands follow the environment and no password lands in a file.

    Returns
    -------
    Path
        The workspace file (``$PHANTOMLAB_WORKSPACE/config.toml``, else
        ``./.phantomlab/config.toml``), replaced atomically.
    """
    own = {
        "redis_url": (result.state_url, "PHANTOMLAB_REDIS_URL"),
        "database_url": (result.database_url, "PHANTOMLAB_DATABASE_URL"),
    }
    updates: dict[str, str | None] = {
        name: None if url == os.environ.get(var) else url for name, (url, var) in own.items()
    }
    key = result.key_path
    updates["signing_key_file"] = None if key is None else str(Path(key).resolve())
    frames = result.replay_dir
    updates["replay_dir"] = None if frames is None else str(Path(frames).resolve())
    return write_workspace(updates, path)


def run_report(
    result: DemoResult,
    *,
    workdir: Path,
    reports_dir: Path | None = None,
    timeout_sec: float = 1800,
    progress: bool = False,
):
    """Run ``pipelines/report.ipynb`` on the demo's stores through the pipeline runner.

    The tear sheet reads the audit trail and the state store the demo wrote (SQLite files, or
    Redis/PostgreSQL when configured) and the replay frames in ``workdir``; the runner leaves
    ``reports/report/<run-id>/`` (notebook, HTML, manifest) and rebuilds
    ``reports/index.html``. Returns the :class:`nbrunner.RunResult`.
    """
    from research.runs import run_pipeline

    params = {"replay_dir": str((workdir / REPLAY_DIR).resolve())}
    # URLs from the environment are not passed: the kernel inherits them, and parameters are
    # printed in the report (a password in a URL must not end up in an HTML file)
    for name, url, var in (
        ("database_url", result.database_url, "PHANTOMLAB_DATABASE_URL"),
        ("state_url", result.state_url, "PHANTOMLAB_REDIS_URL"),
    ):
        if url != os.environ.get(var):
            params[name] = url
    return run_pipeline(
        "report", params, reports_dir=reports_dir, timeout_sec=timeout_sec, progress=progress
    )
