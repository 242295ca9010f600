"""Notebooks run end to end (papermill), stay commit-clean, and the plot helpers draw."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pandas as pd  # noqa: E402
import papermill  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from support import code_outputs, execute_notebook  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
SIGNALS_NB = REPO / "notebooks" / "01_signals_and_phantoms.ipynb"
COMMITTED = sorted([*REPO.glob("notebooks/*.ipynb"), *REPO.glob("pipelines/*.ipynb")])
STRATEGIES = ("trend", "range", "scalp")


def _execute(tmp_path: Path, **parameters) -> nbformat.NotebookNode:
    return execute_notebook(SIGNALS_NB, tmp_path / "executed.ipynb", parameters)


_outputs = code_outputs


def _check_executed(nb: nbformat.NotebookNode) -> None:
    outputs = _outputs(nb)
    errors = [f"{o.get('ename')}: {o.get('evalue')}" for o in outputs if o.output_type == "error"]
    assert not errors, errors
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3, "the three figures should render as image/png outputs"
    tables = [
        o["data"]["text/plain"]
        for o in outputs
        if o.output_type == "execute_result"
        and "win_rate" in o.get("data", {}).get("text/plain", "")
    ]
    assert len(tables) == 1, "expected exactly one summary table (with a win_rate column)"
    for strategy in STRATEGIES:
        assert re.search(rf"^{strategy}\b", tables[0], flags=re.MULTILINE), (strategy, tables[0])


def test_signals_notebook_runs_on_synthetic_market(tmp_path):
    _check_executed(_execute(tmp_path, n_bars=3000, seed=1))


def test_signals_notebook_runs_on_real_data(tmp_path):
    assert (DATA_DIR / "BTC_USDT_1h.csv.gz").is_file(), f"real data expected in {DATA_DIR}"
    _check_executed(_execute(tmp_path, data_dir=str(DATA_DIR), symbol="BTC_USDT_1h"))


def test_unknown_strategy_fails_with_fix_it_message(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError) as info:
        _execute(tmp_path, n_bars=3000, strategies=["breakout"])
    assert info.value.ename == "ValueError"
    assert "unknown strategy 'breakout'" in str(info.value)
    assert "Fix:" in str(info.value)


def test_there_are_committed_notebooks():
    assert SIGNALS_NB in COMMITTED


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.relative_to(REPO).as_posix())
def test_committed_notebook_is_clean(path):
    raw = json.loads(path.read_text(encoding="utf-8"))
    nb = nbformat.reads(json.dumps(raw), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert {"display_name", "language"} <= set(nb.metadata["kernelspec"])
    assert nb.metadata.get("language_info", {}).get("name") == "python"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    for i, cell in enumerate(code):
        assert cell.outputs == [], f"code cell {i} has outputs; clear them before committing"
        assert cell.execution_count is None, f"code cell {i} has an execution_count"
        defs = re.findall(r"^(?:async\s+)?(?:def|class)\s+\w+", cell.source, flags=re.MULTILINE)
        assert not defs, f"code cell {i} defines {defs}; move functions to the research package"
    tagged = [cell for cell in nb.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{len(tagged)} cells tagged 'parameters', expected exactly one"
    assert tagged[0].cell_type == "code"


# --------------------------------------------------------------------------------------------
# research.plots, drawn directly (no kernel)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def phantom_run():
    from research.phantom import simulate
    from research.signals import generate_signals
    from research.synthetic import sample_market

    candles = sample_market()
    signals = pd.concat([generate_signals(candles, s) for s in STRATEGIES], ignore_index=True)
    return candles, signals, simulate(candles, signals)


def _assert_drawn(fig) -> None:
    try:
        assert isinstance(fig, Figure)
        assert fig.axes
        ax = fig.axes[0]
        artists = [*ax.lines, *ax.patches, *ax.collections]
        assert artists, "the axis has nothing drawn on it"
    finally:
        plt.close(fig)


def test_plot_r_distribution(phantom_run):
    from research.plots import plot_r_distribution

    _, signals, outcomes = phantom_run
    fig = plot_r_distribution(outcomes, signals)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(label.startswith("trend") and "mean R=" in label for label in labels), labels
    assert "realized R" in fig.axes[0].get_xlabel()
    _assert_drawn(fig)


def test_plot_exit_reasons(phantom_run):
    from research.plots import plot_exit_reasons

    _, signals, outcomes = phantom_run
    fig = plot_exit_reasons(outcomes, signals)
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert all("win" in t for t in ticks) and len(ticks) == len(STRATEGIES), ticks
    _assert_drawn(fig)


def test_plot_candles_with_signals_draws_on_given_axis(phantom_run):
    from research.plots import plot_candles_with_signals

    candles, signals, _ = phantom_run
    fig, ax = plt.subplots()
    assert plot_candles_with_signals(candles, signals, ax=ax, max_bars=500) is fig
    assert len(ax.lines[0].get_xdata()) == 500
    assert sum(len(c.get_offsets()) for c in ax.collections) > 0, "no signal markers drawn"
    _assert_drawn(fig)


def test_plots_skip_censored_rows(phantom_run):
    from research.plots import plot_r_distribution

    _, signals, outcomes = phantom_run
    censored = outcomes.assign(censored=True, realized_rr=float("nan"), exit_reason=pd.NA)
    fig = plot_r_distribution(censored, signals)
    assert "of 0 finished" in fig.axes[0].get_title()
    plt.close(fig)
