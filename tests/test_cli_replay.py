"""``phantomlab replay --signals FILE --data DIR``: a user's own signals, end to end (in process
and as a real subprocess), and exit 2 with the fix for bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from external_files import write_candles, write_signals

from research import schema as S
from research.cli import main
from research.signals.external import load_signals

PHANTOMLAB = Path(sys.executable).parent / "phantomlab"
FAST = ["--light", "--retrain-every", "100", "--no-progress"]
OUTPUTS = (
    "decisions.parquet",
    "summary.parquet",
    "uplift.parquet",
    "retrains.parquet",
    "uplift.csv",
)


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    """Candles as CSV files and a signals CSV written from outside the package."""
    root = tmp_path_factory.mktemp("user")
    markets = write_candles(root / "data", n_bars=6000)
    written = write_signals(root / "signals.csv", markets)
    return root, written


def _check_outputs(out: Path, signals_csv: Path) -> pd.DataFrame:
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    decisions = pd.read_parquet(out / "decisions.parquet")
    expected = load_signals(signals_csv)
    assert len(decisions) == len(expected) == decisions[S.SIGNAL_ID].nunique()
    assert set(decisions[S.SIGNAL_ID]) == set(expected[S.SIGNAL_ID])  # one row per signal
    assert set(decisions[S.STRATEGY]) == {"mybot"}
    assert set(decisions[S.SYMBOL]) == {"SYNTH_A_5m", "SYNTH_B_5m", "SYNTH_C_5m"}
    uplift = pd.read_csv(out / "uplift.csv", index_col=0)
    assert list(uplift.index) == ["mybot", "all"] and uplift.loc["all", "retrains"] >= 2
    return decisions


def test_replay_of_a_users_signals_in_process(user_files, tmp_path, monkeypatch):
    root, written = user_files
    monkeypatch.setenv("PHANTOMLAB_REPORTS_DIR", str(tmp_path / "reports"))
    result = CliRunner().invoke(
        main,
        ["replay", "--signals", str(root / "signals.csv"), "--data", str(root / "data"), *FAST],
    )
    assert result.exit_code == 0, result.output
    assert f"Replay of {len(written):,} signals" in result.output
    assert "x_confidence, x_venue=binance, x_venue=okx" in result.output
    assert "uplift" in result.output and "ci_low" in result.output
    runs = list((tmp_path / "reports").glob("replay-*"))  # the default --out
    assert len(runs) == 1 and str(runs[0]) in result.output
    decisions = _check_outputs(runs[0], root / "signals.csv")
    assert decisions[S.MODEL_VERSION].max() >= 2  # the models learnt, with the file's columns


def test_replay_of_a_users_signals_as_a_subprocess(user_files, tmp_path):
    root, _ = user_files
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PHANTOMLAB_REPORTS_DIR": str(tmp_path)}
    proc = subprocess.run(
        [
            str(PHANTOMLAB),
            "replay",
            "--signals",
            str(root / "signals.csv"),
            "--data",
            str(root / "data"),
            "--out",
            str(out),
            "--timeout-hours",
            "12",
            "--seed",
            "1",
            *FAST,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Filter uplift" in proc.stdout
    _check_outputs(out, root / "signals.csv")


def test_help_documents_the_options():
    result = CliRunner().invoke(main, ["replay", "--help"])
    assert result.exit_code == 0
    for option in (
        "--signals",
        "--data",
        "--out",
        "--timeout-hours",
        "--seed",
        "--light",
        "--retrain-every",
        "--no-progress",
        "signal_time",
    ):
        assert option in result.output, option


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        (None, "no signals file at"),
        ("symbol,side,time,entry,sl,tp", "missing column(s) ['signal_time']"),
        ("symbol,side,signal_time,entry,sl,tp", "no candles for symbol(s) ['NOPE/USDT']"),
    ],
    ids=["missing-file", "bad-column", "unknown-symbol"],
)
def test_bad_input_exits_2_with_the_fix(user_files, tmp_path, header, needle):
    root, _ = user_files
    path = tmp_path / "signals.csv"
    if header is not None:
        path.write_text(f"{header}\nNOPE/USDT,long,2024-01-02T00:00:00Z,100,99,102\n")
    result = CliRunner().invoke(
        main, ["replay", "--signals", str(path), "--data", str(root / "data"), *FAST]
    )
    assert result.exit_code == 2, result.output
    assert needle in result.output and "Fix:" in result.output


def test_bad_input_exits_2_as_a_subprocess(user_files, tmp_path):
    root, _ = user_files
    proc = subprocess.run(
        [
            str(PHANTOMLAB),
            "replay",
            "--signals",
            str(tmp_path / "missing.csv"),
            "--data",
            str(root / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "no signals file at" in proc.stderr and "Fix: check the path" in proc.stderr
