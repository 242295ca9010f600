"""The pipeline runner: production notebooks run by papermill, validated, timed out, reported.

``phantomlab pipeline run NAME -p key=value`` (or :func:`run_pipeline`) parses the notebook's
``parameters`` cell (:mod:`~nbrunner.params`), validates the overrides against it, runs
the notebook in the :data:`KERNEL_NAME` kernel under a wall-clock limit
(:mod:`~nbrunner.execute`), and leaves ``reports/<pipeline>/<run-id>/`` with the
executed notebook, a self-contained HTML report (:mod:`~nbrunner.html`) and
``manifest.json`` (:mod:`~nbrunner.manifest`); ``reports/index.html`` lists every run
(:mod:`~nbrunner.index`). Inside a notebook, :func:`record` hands results (model
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

# Resolved lazily: a pipeline notebook's `from nbrunner import record` must not pay for
# nbformat/nbconvert (seconds of import) inside the kernel.
_EXPORTS = {
    "KERNEL_NAME": "nbrunner.kernel",
    "RESULT_MIME": "nbrunner.results",
    "SUPPORTED_TYPES": "nbrunner.params",
    "Parameter": "nbrunner.params",
    "ParameterError": "nbrunner.errors",
    "PipelineInfo": "nbrunner.catalog",
    "PipelineNotFoundError": "nbrunner.errors",
    "RunResult": "nbrunner.execute",
    "build_index": "nbrunner.index",
    "collect_results": "nbrunner.results",
    "ensure_kernel": "nbrunner.kernel",
    "list_pipelines": "nbrunner.catalog",
    "mark_dead_runs": "nbrunner.index",
    "new_run_id": "nbrunner.execute",
    "parse_parameters": "nbrunner.params",
    "record": "nbrunner.results",
    "run_pipeline": "nbrunner.execute",
    "validate_parameters": "nbrunner.overrides",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    """Import an export's module on first use (PEP 562; the runner needs no helper for it)."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
