"""Notebook 08 (a sweep of replay settings) runs end to end under papermill, small."""

from __future__ import annotations

import re

from test_notebooks_explore import _check_clean_run, _execute, _stdout, _tables

SMALL_SWEEP = {
    "kind": "planted",
    "seed": 2,
    "n_bars": 1500,
    "strategies": ["scalp"],
    "rules": ["seed", "rigorous"],
    "retrain_every": [100],
    "costs": ["crypto_perp"],
    "scheduler": "in-process",
    "light": True,
    "n_boot": 100,
}


def test_sweep_notebook_shows_the_tidy_table_and_the_skill_plot(tmp_path):
    nb = _execute(tmp_path, "08_sweep", **SMALL_SWEEP)
    outputs = _check_clean_run(nb, n_images=1)  # skill with its interval per setting
    assert "2 settings on the 'planted' market (seed 2" in _stdout(outputs)
    tables = _tables(outputs, "verdict")
    assert len(tables) == 1
    header = tables[0].splitlines()[0].split()
    assert header[:4] == ["rule", "retrain_every", "costs", "strategy"]
    for column in (
        "n_signals",
        "n_passed",
        "skill",
        "skill_low",
        "skill_high",
        "uplift",
        "ci_low",
        "ci_high",
        "null_low",
        "null_high",
        "retrains",
        "verdict",
    ):
        assert column in tables[0], column
    rows = re.findall(
        r"^\d+\s+(seed|rigorous)\s+100\s+crypto_perp\s+(scalp|all)\s", tables[0], flags=re.MULTILINE
    )
    assert rows == [("seed", "scalp"), ("seed", "all"), ("rigorous", "scalp"), ("rigorous", "all")]
