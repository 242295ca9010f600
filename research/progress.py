"""Progress bars that reach whoever waits: a widget in JupyterLab, text on a terminal or in a log.

``tqdm.auto`` draws an ipywidgets bar inside a Jupyter kernel — right in JupyterLab, invisible
when papermill runs the notebook for a scheduler (a widget's state is not a stream). The
pipeline runner sets ``PHANTOMLAB_PROGRESS=text`` for its kernels: bars are then plain text
on stderr, which the runner streams to the run's log (and to the terminal with ``--progress``),
updated at most every few seconds so the log stays readable.
"""

from __future__ import annotations

import os

from tqdm.auto import tqdm as _auto
from tqdm.std import tqdm as _text

#: environment variable: ``text`` forces plain-text bars (set by the pipeline runner)
PROGRESS_ENV = "PHANTOMLAB_PROGRESS"


def tqdm(*args, **kwargs):
    """A ``tqdm`` bar: text when ``$PHANTOMLAB_PROGRESS`` is ``text``, else ``tqdm.auto``."""
    if os.environ.get(PROGRESS_ENV) == "text":
        kwargs.setdefault("mininterval", 5.0)
        return _text(*args, **kwargs)
    return _auto(*args, **kwargs)
