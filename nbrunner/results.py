"""Results a pipeline notebook hands to the runner: :func:`record` inside, :func:`collect_results`
outside.

A notebook calls ``record(model_version=3, metrics={"auc": 0.61})``; that displays a mime
bundle of type :data:`RESULT_MIME` (stored in the executed ``.ipynb`` like any output), and
the runner merges every such bundle into the run's manifest. Nothing else is needed: no file,
no environment variable, so the same notebook runs unchanged in JupyterLab or plain papermill.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import nbformat

logger = logging.getLogger(__name__)

RESULT_MIME = "application/vnd.phantomlab.result+json"
"""Mime type of the outputs :func:`record` displays."""


def record(**values: Any) -> dict[str, Any]:
    """Hand named results of a pipeline run to the runner (and show them in the notebook).

    Parameters
    ----------
    **values
        JSON-able results, e.g. ``model_version=3, metrics={"auc": 0.61}, published=True``.
        numpy scalars, NaN (-> null), timestamps (-> ISO text) and paths (-> text) are
        converted. Later calls win over earlier ones for the same name.
        ``model_version`` and ``metrics`` are also copied to the top of the run's manifest
        and shown in the reports index.

    Returns
    -------
    dict
        The values as recorded (plain JSON types).
    """
    from nbrunner.jsonable import to_jsonable  # pandas: loaded only inside notebooks

    clean = to_jsonable(values)
    text = "phantomlab results: " + ", ".join(f"{k}={v!r}" for k, v in clean.items())
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - ipykernel (a dependency) brings IPython
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display({RESULT_MIME: clean, "text/plain": text}, raw=True)
    else:  # a plain script: nothing collects display outputs, so only log them
        logger.info("%s", text)
    return clean


def collect_results(nb: nbformat.NotebookNode) -> dict[str, Any]:
    """Merge every :data:`RESULT_MIME` output of an executed notebook (later outputs win)."""
    results: dict[str, Any] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = out.get("data", {})
            if out.get("output_type") in ("display_data", "execute_result") and RESULT_MIME in data:
                payload = data[RESULT_MIME]
                if isinstance(payload, dict):
                    results.update(payload)
                else:  # a hand-made output of the wrong shape must not break the manifest
                    logger.warning("ignoring a %s output that is not an object", RESULT_MIME)
    return results
