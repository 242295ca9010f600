"""Reports: compose analyses and plots into tear sheets (compute lives in
:mod:`research.analysis`, drawing in :mod:`research.plots`).

:func:`load_period` reads one period from the stores; the functions of :mod:`tearsheet` turn
it into sections that ``pipelines/report.ipynb`` shows one per cell.
"""

from __future__ import annotations

from research._lazy import lazy_getattr

# Resolved lazily: the demo saves replay frames without loading the plotting stack.
_EXPORTS = {
    "PeriodData": "research.reports.period",
    "Section": "research.reports.section",
    "format_table": "research.reports.format",
    "no_skill_notes": "research.reports.skill",
    "pick_candles": "research.reports.inputs",
    "show_notes": "research.reports.format",
    "synthetic_note": "research.reports.inputs",
    "show_table": "research.reports.format",
    "timeframe_text": "research.reports.format",
    "gate_frame": "research.reports.period",
    "load_period": "research.reports.period",
    "load_replay_frames": "research.reports.period",
    "save_replay_frames": "research.reports.period",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS)
