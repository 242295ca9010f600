"""The pipeline runner: production notebooks run by papermill, validated, timed out, reported.

``phantomlab pipeline run NAME -p key=value`` (or :func:`run_pipeline`) parses the notebook's
``parameters`` cell (:mod:`~research.runner.params`), validates the overrides against it, runs
the notebook in the :data:`KERNEL_NAME` kernel under a wall-clock limit
(:mod:`~research.runner.execute`), and leaves ``reports/<pipeline>/<run-id>/`` with the
executed notebook, a self-contained HTML report (:mod:`~research.runner.html`) and
``manifest.json`` (:mod:`~research.runner.manifest`); ``reports/index.html`` lists every run
(:mod:`~research.runner.index`). Inside a notebook, :func:`record` hands results (model
version, metrics) to the manifest. See ``pipelines/README.md``.

A run is visible from its start (manifest status ``running``, refreshed by a heartbeat); a
SIGTERM stops it cleanly (``failed``, ``Terminated``); a runner killed outright leaves a stale
heartbeat, and :func:`mark_dead_runs` (called by every index rebuild) marks the run ``died``.
Parameters reach the executor on its stdin, and URL passwords are masked wherever a run is
shown (notebook, HTML, manifest).

The runner is general: what a caller keeps outside the run folder (the workbench's SQL
``pipeline_runs`` rows) is closed by the caller's ``on_failure`` hook, and the kernel's extra
environment comes from ``kernel_env``; :mod:`research.runs` is the workbench's side.
"""

from __future__ import annotations

import importlib

# Resolved lazily: a pipeline notebook's `from research.runner import record` must not pay for
# nbformat/nbconvert (seconds of import) inside the kernel.
_EXPORTS = {
    "KERNEL_NAME": "research.runner.kernel",
    "RESULT_MIME": "research.runner.results",
    "SUPPORTED_TYPES": "research.runner.params",
    "Parameter": "research.runner.params",
    "ParameterError": "research.errors",
    "PipelineInfo": "research.runner.catalog",
    "PipelineNotFoundError": "research.errors",
    "RunResult": "research.runner.execute",
    "build_index": "research.runner.index",
    "collect_results": "research.runner.results",
    "ensure_kernel": "research.runner.kernel",
    "list_pipelines": "research.runner.catalog",
    "mark_dead_runs": "research.runner.index",
    "new_run_id": "research.runner.execute",
    "parse_parameters": "research.runner.params",
    "record": "research.runner.results",
    "run_pipeline": "research.runner.execute",
    "validate_parameters": "research.runner.overrides",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    """Import an export's module on first use (PEP 562; the runner needs no helper for it)."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
