"""``ScorerConfig``: the online scorer's rules and the one spec of its model.

It lives here, not in :mod:`research.config`, because it holds an estimator: the model is one
unfitted :class:`~research.scoring.EnsembleScorer` that every fit ``clone()``s, as
scikit-learn's meta-estimators do with theirs, so its settings are written in one place (the
estimator's own parameters) and never copied knob by knob. :mod:`research.config` sits below
the features and the scorers and cannot import them.

A variant: ``ScorerConfig(model=EnsembleScorer(n_estimators=30, nn_enabled=False))`` or
``dataclasses.replace(cfg, model=clone(cfg.model).set_params(random_state=1))``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from sklearn.base import BaseEstimator

from research.scoring.ensemble import EnsembleScorer


def estimator_key(estimator: BaseEstimator) -> tuple[type, str]:
    """What identifies an unfitted estimator's spec: its class and parameters.

    Configs compare and hash their model through it, so two configs holding equal specs are
    equal (an estimator itself compares by identity).
    """
    params = sorted(estimator.get_params(deep=False).items())
    return type(estimator), repr(params)


def config_key(config) -> tuple:
    """A frozen dataclass config's field values, its ``model`` field by :func:`estimator_key`."""
    return tuple(
        estimator_key(value) if isinstance(value, BaseEstimator) else value
        for value in (getattr(config, f.name) for f in fields(config))
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class ScorerConfig:
    """The online scorer's rules (seed "Data Flow Architecture", "Error Handling").

    Attributes
    ----------
    min_trades : int
        Seed: no training before 30 completed trades.
    retrain_every : int
        Seed: retrain when ``total - last_train_count >= 50``.
    learn_from_timeouts : bool
        Seed: timeouts are not fed to the model (False); the rigorous rule keeps them.
    retry_after : int
        After a failed retrain, records to wait before trying again (the old model stays).
    model : EnsembleScorer
        The unfitted model every retrain clones (default: the seed's ensemble, 200 trees and
        200 boosting iterations, prequential calibration — on the scores outcomes were
        decided on, K-fold until 200 such exist). Its ``nn_enabled`` is the scorer's starting
        value; the scorer's own (``ml:{strategy}:nn_enabled``, restored from state) wins.
    incremental : bool
        A retrain renews the forest of the model in force (10 % of its trees, regrown on all
        rows; a full refit once the rows grew by 20 %) instead of regrowing it.
    fast_path : bool
        Score single signals through the model's ONNX export (:mod:`research.scoring.fast`).
    """

    min_trades: int = 30
    retrain_every: int = 50
    learn_from_timeouts: bool = False
    retry_after: int = 10
    model: EnsembleScorer = field(default_factory=EnsembleScorer)
    incremental: bool = True
    fast_path: bool = True

    def __eq__(self, other: object) -> bool:  # the model by its spec, not its identity
        if type(other) is not type(self):
            return NotImplemented
        return config_key(self) == config_key(other)

    def __hash__(self) -> int:
        return hash(config_key(self))
