"""The main job end to end, as one call: what ``phantomlab demo`` (``make demo``) runs.

market -> signals -> features -> phantoms -> replay of the online loop (scores, thresholds,
retrains) -> state saved in the seed's keys and the models published, signed, to the registry.
By default everything stays local (the SQLite state backend, no server needed); with
``PHANTOMLAB_REDIS_URL`` it goes to Redis.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from research.config import ScorerConfig
from research.pipeline import StudyData, run_signals_and_phantoms
from research.replay import ReplayConfig, ReplayResult, replay
from research.stores.persist import save_replay
from research.stores.registry import KEY_ENV, ModelRegistry
from research.stores.state import open_state

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class DemoResult:
    """What the demo produced and where it put it."""

    study: StudyData
    replay: ReplayResult
    state_url: str
    published: dict[str, int | None]
    versions: dict[str, pd.DataFrame]


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


def run_demo(candles: dict[str, pd.DataFrame], *, workdir: Path, state_url: str | None = None,
             retrain_every: int = 500, seed: int = 0, progress: bool = True) -> DemoResult:  # fmt: skip
    """Run the main job on ``candles``; state and models go to ``state_url``.

    Parameters
    ----------
    candles : dict of symbol -> candles
    workdir : Path
        Where local files go (the embedded state database, the demo signing key).
    state_url : str, optional
        ``redis://…`` or ``sqlite:///…``; default ``$PHANTOMLAB_REDIS_URL`` or
        ``sqlite:///<workdir>/state.db``.
    retrain_every : int
        Outcomes between retrains (the seed's 50 retrains the full ensemble hundreds of times
        on a long history; the demo trades that for minutes).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    state_url = (
        state_url
        or os.environ.get("PHANTOMLAB_REDIS_URL")
        or (f"sqlite:///{(workdir / 'state.db').resolve()}")
    )
    store = open_state(state_url)
    store.ping()  # fail early, with a fix, before the long part
    study = run_signals_and_phantoms(candles, progress=progress)
    config = ReplayConfig(scorer=ScorerConfig(retrain_every=retrain_every, n_estimators=100,
                                              gb_max_iter=100), seed=seed)  # fmt: skip
    result = replay(candles, config=config, study=study, progress=progress)
    registry = ModelRegistry(store, key=demo_signing_key(workdir))
    published = save_replay(store, result, registry=registry, publish=True)
    versions = {s: registry.list_versions(s) for s, v in published.items() if v is not None}
    return DemoResult(study=study, replay=result, state_url=state_url, published=published,
                      versions=versions)  # fmt: skip
