"""The phantomlab command: help, the demo on synthetic and on a user folder, exit codes."""

from __future__ import annotations

import pandas as pd
from click.testing import CliRunner

from research.cli import main


def test_help_lists_the_demo():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0 and "demo" in result.output


def test_demo_on_synthetic_market_prints_a_summary_per_strategy(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--bars", "4000", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for strategy in ("trend", "range", "scalp"):
        assert strategy in result.output
    assert "win_rate" in result.output and "mean_r" in result.output
    outcomes = pd.read_parquet(tmp_path / "outcomes.parquet")
    signals = pd.read_parquet(tmp_path / "signals.parquet")
    assert len(outcomes) == len(signals) > 0


def test_demo_on_a_user_folder(tmp_path, data_dir):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "BTC_USDT_1h.csv.gz").write_bytes((data_dir / "BTC_USDT_1h.csv.gz").read_bytes())
    result = CliRunner().invoke(main, ["demo", "--data", str(folder)])
    assert result.exit_code == 0, result.output
    assert "BTC_USDT_1h" in result.output


def test_bad_candles_exit_2_with_a_fix(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "X_1h.csv").write_text(
        "timestamp,open,high,low,close,volume\n"
        "2024-01-01T00:00:00Z,100,99,98,100,1\n"  # high below open and close
        "2024-01-01T01:00:00Z,100,101,99,100,1\n"
    )
    result = CliRunner().invoke(main, ["demo", "--data", str(folder)])
    assert result.exit_code == 2
    assert "high below open or close" in result.output and "Fix" in result.output
