"""Reports: compose analyses and plots into tear sheets (compute lives in
:mod:`research.analysis`, drawing in :mod:`research.plots`).

:func:`load_period` reads one period from the stores; the functions of :mod:`tearsheet` turn
it into sections that ``pipelines/report.ipynb`` shows one per cell.
"""

from research.reports.period import (
    PeriodData,
    gate_frame,
    load_period,
    load_replay_frames,
    save_replay_frames,
)
from research.reports.tearsheet import Section

__all__ = [
    "PeriodData",
    "Section",
    "gate_frame",
    "load_period",
    "load_replay_frames",
    "save_replay_frames",
]
