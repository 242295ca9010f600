"""Issue 13, item 7: every bad input gets a fix-it error, never a traceback.

Candle files that are not what their name says (fake ``.gz``, binary, corrupt Parquet) and
prices, volumes or times that are infinite or absurd; ``score_signal`` given something that is
not a mapping; an infinite feature (one rule: missing, in training, scikit-learn and ONNX
scoring); pipeline parameters outside their declared range; a pipeline "name" that is a path.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from support import closed_scalp_dataset
from threadpoolctl import threadpool_limits

from nbrunner import ParameterError, PipelineNotFoundError, parse_parameters, run_pipeline
from nbrunner import validate_parameters as validate
from nbrunner.params import parse_cell
from research import schema as S
from research.candles import load_candles
from research.cli import main
from research.scoring import EnsembleScorer, FastScorer, MLScorer, ScorerConfig
from research.synthetic import edge, make_market

REPO = Path(__file__).resolve().parents[1]
NUMERIC = ("int", "float", "int | None", "float | None", "list[int]", "list[float]")


# --------------------------------------------------------------------------------------------
# candle files
# --------------------------------------------------------------------------------------------
def _candles(n: int = 300) -> pd.DataFrame:
    """A valid hourly random walk in the header layout ``timestamp,open,high,low,close,volume``."""
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    stamps = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    return pd.DataFrame(
        {
            "timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "open": open_,
            "high": np.maximum(open_, close) * 1.002,
            "low": np.minimum(open_, close) * 0.998,
            "close": close,
            "volume": rng.uniform(1, 100, n),
        }
    )


def _with(column: str, value, row: int = 7) -> bytes:
    frame = _candles()
    frame[column] = frame[column].astype(object if column == "timestamp" else float)
    frame.loc[row, column] = value
    return frame.to_csv(index=False).encode()


def _parquet() -> bytes:
    buffer = io.BytesIO()
    _candles().to_parquet(buffer)
    return buffer.getvalue()


def _epoch_with_inf() -> bytes:
    frame = _candles()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"]).astype("int64") / 1e6  # ms, float
    frame.loc[3, "timestamp"] = -np.inf
    return frame.to_csv(index=False).encode()


_TEXT = _candles().to_csv(index=False).encode()
#: file name -> (bytes, what the message must say is wrong)
BAD_FILES = {
    "fake_gz": ("X_1h.csv.gz", _TEXT, "not gzip-compressed"),
    "truncated_gz": ("X_1h.csv.gz", gzip.compress(_TEXT)[:300], "corrupt or truncated gzip"),
    "binary": ("X_1h.csv", bytes(range(256)) * 16, "not a CSV text file"),
    "latin1": (
        "X_1h.csv",
        "timestamp,ouvert\u00e9\n".encode("latin-1") * 50 + b"\xff" * 99,
        "not a CSV text file",
    ),
    "random_parquet": ("X_1h.parquet", np.random.default_rng(1).bytes(2000), "not a Parquet file"),
    "truncated_parquet": ("X_1h.parquet", _parquet()[:600], "corrupt or truncated"),
    "inf_price": ("X_1h.csv", _with("high", np.inf), "infinite or implausibly large"),
    "inf_volume": ("X_1h.csv", _with("volume", np.inf), "infinite or implausibly large"),
    "huge_price": ("X_1h.csv", _with("high", 1e300), "infinite or implausibly large"),
    "neg_inf_volume": ("X_1h.csv", _with("volume", -np.inf), "infinite or implausibly large"),
    "inf_epoch": ("X_1h.csv", _epoch_with_inf(), "no valid time"),
}


def _write(folder: Path, name: str, content: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    return path


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``phantomlab ARGS`` in a fresh process (as a user runs it), away from any server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHANTOMLAB_")}
    return subprocess.run(
        [sys.executable, "-m", "research.cli", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _assert_fix_it(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit 2, no traceback, and one paragraph ``Error: ... Fix: ...`` naming ``needles``."""
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    error = proc.stderr[proc.stderr.index("Error: ") :].strip()
    assert "\n" not in error, f"not one paragraph: {error!r}"
    for needle in (*needles, "Fix: "):
        assert needle in error, (needle, error)


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_load_candles_refuses_a_bad_file_with_a_fix(tmp_path, case):
    name, content, what = BAD_FILES[case]
    path = _write(tmp_path, name, content)
    with pytest.raises(S.SchemaError) as info:
        load_candles(path)
    message = str(info.value)
    assert str(path) in message and what in message and "Fix: " in message, message


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_demo_with_a_bad_data_file_exits_2_with_one_fix_it_paragraph(tmp_path, case):
    name, content, what = BAD_FILES[case]
    _write(tmp_path / "data", name, content)
    proc = _cli(tmp_path, "demo", "--data", "data", "--workdir", "wd", "--no-report")
    _assert_fix_it(proc, f"X_1h.{name.split('.', 1)[1]}", what)


def test_demo_on_too_little_history_says_so_instead_of_crashing(tmp_path):
    _write(tmp_path / "data", "X_1h.csv", _candles(300).to_csv(index=False).encode())
    proc = _cli(tmp_path, "demo", "--data", "data", "--workdir", "wd", "--no-report")
    _assert_fix_it(proc, "data: 300 bars gave no closed trade", "more history")


def test_demo_on_a_folder_without_candle_files_exits_2(tmp_path):
    _write(tmp_path / "data", "notes.txt", b"no candles here")
    _assert_fix_it(_cli(tmp_path, "demo", "--data", "data", "--no-report"), "no candle files")


@pytest.mark.parametrize(
    ("value", "ok"),
    [(9.99e11, True), (1e12, False), (np.inf, False), (-np.inf, False), (1e300, False)],
)
def test_prices_must_be_finite_and_below_the_documented_bound(value, ok):
    frame = _candles().set_index("timestamp")
    frame.index = pd.to_datetime(frame.index, utc=True).as_unit("ns")
    frame.loc[frame.index[5], ["high"]] = value
    frame.loc[frame.index[5], ["open", "close", "low"]] = min(abs(value), 1e11) / 2
    if ok:
        assert S.validate_candles(frame) is frame
        return
    with pytest.raises(S.SchemaError, match=r"infinite or implausibly large.*\['high'\].*Fix:"):
        S.validate_candles(frame)


@pytest.mark.parametrize(
    ("column", "row", "value", "needle"),
    [
        ("open", 4, -1.0, "non-positive prices"),
        ("high", 5, 50.0, "high below open or close"),
        ("timestamp", 9, "2024-01-01T08:00:00Z", "duplicate timestamps"),
        ("timestamp", 9, "2023-12-31T00:00:00Z", "not sorted"),
    ],
)
def test_malformed_prices_and_times_already_refused_stay_refused(
    tmp_path, column, row, value, needle
):
    # a guard (refused before the issue too): load_candles checks these through
    # research.schema.validate_candles, which this issue extends rather than duplicates
    path = _write(tmp_path, "X_1h.csv", _with(column, value, row))
    with pytest.raises(S.SchemaError, match=f"{re.escape(str(path))}: .*{needle}.*Fix:"):
        load_candles(path)


# --------------------------------------------------------------------------------------------
# scoring: argument types, and one rule for infinity
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [None, [("rsi_14", 50.0)], [1.0, 2.0], "rsi_14=50", 42.0, pd.DataFrame({"rsi_14": [50.0]})],
)
def test_score_signal_refuses_what_is_not_a_mapping(bad):
    scorer = MLScorer("scalp")
    with pytest.raises(TypeError) as info:  # a TypeError (as before), and one of ours
        scorer.score_signal(bad)
    message = str(info.value)
    assert isinstance(info.value, S.SchemaError), f"a raw {type(info.value).__name__}: {message}"
    assert "score_signal" in message and "mapping of feature name -> number" in message
    assert type(bad).__name__ in message and "Fix: " in message


def test_score_frame_refuses_what_is_not_a_frame_and_a_series_row_still_scores():
    scorer = MLScorer("scalp")
    for bad in (None, [{"rsi_14": 50.0}], {"rsi_14": [50.0]}):
        with pytest.raises(TypeError, match=r"score_frame takes a DataFrame.*Fix: "):
            scorer.score_frame(bad)
    row = pd.Series({"rsi_14": 50.0, "session": "us"})
    assert scorer.score_signal(row) == scorer.score_signal(row.to_dict())


@pytest.fixture(scope="module")
def trained():
    """A small ensemble (isotonic calibration: the steep part of the score) and its data."""
    with threadpool_limits(1):
        market = make_market(
            n_bars=8000, seed=5, trend_drift=0.0, edges=(edge("volume_momentum", drift=0.5),)
        )
        sig, out, x, y = closed_scalp_dataset(market)
        n = len(x) * 3 // 4
        model = EnsembleScorer(
            n_estimators=20,
            gb_max_iter=20,
            nn_enabled=True,
            hidden_layer_sizes=(8,),
            n_splits=3,
            calibration="oof",
            n_jobs=1,
        ).fit(
            x.iloc[:n],
            y[:n],
            signal_times=sig[S.SIGNAL_TIME].iloc[:n],
            exit_times=out[S.EXIT_TIME].iloc[:n],
        )
    return model, x.iloc[n:].reset_index(drop=True), (sig, out, x, y, n)


def test_an_infinite_feature_scores_as_missing_on_both_paths_and_is_logged(trained, caplog):
    model, test, _ = trained
    scorer = MLScorer("scalp", config=ScorerConfig(fast_path=True))
    scorer.set_model(model)
    assert isinstance(scorer.fast, FastScorer)
    for i in range(20):
        row = test.iloc[i].to_dict()
        missing = {**row, "rsi_14": np.nan}
        expected = float(model.score_signals(pd.DataFrame([missing]))[0])
        for inf in (np.inf, -np.inf):
            bad = {**row, "rsi_14": inf}
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="research.scoring"):
                assert float(model.score_signals(pd.DataFrame([bad]))[0]) == expected  # sklearn
                assert scorer.fast.score_one(bad) == scorer.fast.score_one(missing)  # ONNX
                assert scorer.fast.score_one(bad) == pytest.approx(expected, abs=1e-9)
                assert scorer.score_signal(bad) == pytest.approx(expected, abs=1e-9)
                scores, source = scorer.score_frame(pd.DataFrame([bad]))
            assert source[0] == "ml" and scores[0] == expected, "the model, not the heuristic"
            logged = [r.getMessage() for r in caplog.records]
            assert logged and all("rsi_14" in m and "missing" in m for m in logged), logged


def test_training_treats_an_infinite_feature_as_missing_too(trained):
    model, test, (sig, out, x, y, n) = trained
    train = x.iloc[:n].copy()
    holes = np.arange(0, n, 7)
    with_nan, with_inf = train.copy(), train.copy()
    col = train.columns.get_loc("rsi_14")
    with_nan.iloc[holes, col] = np.nan
    with_inf.iloc[holes, col] = np.where(holes % 2, np.inf, -np.inf)
    kwargs = {"signal_times": sig[S.SIGNAL_TIME].iloc[:n], "exit_times": out[S.EXIT_TIME].iloc[:n]}
    with threadpool_limits(1):
        a = EnsembleScorer(**model.get_params()).fit(with_nan, y[:n], **kwargs)
        b = EnsembleScorer(**model.get_params()).fit(with_inf, y[:n], **kwargs)
    np.testing.assert_array_equal(a.score_signals(test), b.score_signals(test))


# --------------------------------------------------------------------------------------------
# pipelines: declared parameter ranges, and only catalogued names run
# --------------------------------------------------------------------------------------------
NOTEBOOKS = sorted((REPO / "pipelines").glob("*.ipynb")) + sorted(
    (REPO / "notebooks").glob("*.ipynb")
)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_numeric_parameter_declares_a_range_holding_its_default(path):
    params = parse_parameters(path)  # a default outside its range would raise here
    numeric = [p for p in params if p.type_text in NUMERIC]
    assert numeric, f"{path.name} has no numeric parameter?"
    missing = [p.name for p in numeric if p.range is None]
    assert not missing, f"{path.name}: declare a range at the end of the comment of {missing}"


def test_a_huge_n_estimators_is_refused_naming_parameter_range_and_value():
    params = parse_parameters(REPO / "pipelines" / "retrain_publish.ipynb")
    for value in (10**26, "100000000000000000000000000", 0):
        with pytest.raises(ParameterError) as info:
            validate(params, {"n_estimators": value})
        message = str(info.value)
        assert "'n_estimators' of retrain_publish.ipynb" in message and "[1, 5000]" in message
        assert f"is {int(value)}" in message and "Fix: " in message, message
    assert validate(params, {"n_estimators": "5000"}) == {"n_estimators": 5000}


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"oos_fraction": 1}, "is 1, outside its range (0, 1)"),
        ({"oos_fraction": ".inf"}, "is infinite"),
        ({"min_improvement": 10**400}, "is infinite (or too large for a float)"),
        ({"max_train_trades": 29}, "is 29, outside its range [30, 1000000000]"),
    ],
)
def test_float_and_optional_parameters_are_range_checked_too(overrides, needle):
    params = parse_parameters(REPO / "pipelines" / "retrain_publish.ipynb")
    with pytest.raises(ParameterError) as info:
        validate(params, overrides)
    assert needle in str(info.value) and "Fix: " in str(info.value), str(info.value)
    assert validate(params, {"max_train_trades": None}) == {"max_train_trades": None}


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("n: int = 3  # trees [10, 5000]", "the default of 'n' is 3, outside its range [10, 5000]"),
        ("xs: list[int] = [5, 50]  # sizes [10, 100]", "has element 5, outside"),
        ("s: str = 'a'  # text [1, 2]", "is a str, but its comment ends in a range"),
        ("n: int = 3  # trees [5, 1]", "holds no value"),
        ("x: float = 1e400  # huge", "is infinite"),
    ],
)
def test_a_malformed_range_declaration_is_a_clear_error(source, needle):
    with pytest.raises(ParameterError) as info:
        parse_cell(source, "nb.ipynb, parameters cell")
    assert needle in str(info.value) and "Fix: " in str(info.value), str(info.value)


def test_the_cli_refuses_an_out_of_range_parameter_before_the_run_starts(tmp_path):
    urls = [f"{k}_url=sqlite:///{tmp_path / k}.db" for k in ("database", "state")]
    result = CliRunner().invoke(
        main,
        [
            "pipeline",
            "run",
            "retrain_publish",
            "-p",
            "n_estimators=100000000000000000000000000",
            "-p",
            urls[0],
            "-p",
            urls[1],
            "--reports-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2, result.output
    assert "n_estimators" in result.output and "[1, 5000]" in result.output
    assert "100000000000000000000000000" in result.output and "Fix: " in result.output
    (manifest,) = tmp_path.glob("retrain_publish/*/manifest.json")
    assert '"failed"' in manifest.read_text(encoding="utf-8"), "refused, never run"


def _foreign_files(tmp_path: Path) -> list[Path]:
    secret = tmp_path / "elsewhere" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("TOP SECRET first bytes\n")
    other = tmp_path / "elsewhere" / "other.ipynb"  # a valid notebook, but not catalogued
    cell = nbformat.v4.new_code_cell("n: int = 1", metadata={"tags": ["parameters"]})
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), other)
    return [secret, other]


def test_a_path_given_as_pipeline_name_is_refused_before_anything_is_written(tmp_path):
    reports = tmp_path / "reports"
    for path in _foreign_files(tmp_path):
        for name in (str(path), os.path.relpath(path, REPO), path):
            with pytest.raises(PipelineNotFoundError) as info:
                run_pipeline(name, reports_dir=reports)
            message = str(info.value)
            assert "is a path" in message and "Available: report, retrain_publish" in message
            assert "Fix: " in message
        result = CliRunner().invoke(
            main, ["pipeline", "run", str(path), "--reports-dir", str(reports)]
        )
        assert result.exit_code == 2 and "is a path" in result.output, result.output
        assert "Available: report, retrain_publish" in result.output
    assert not reports.exists(), "nothing may be written for a refused name"


def test_a_catalogued_name_with_its_suffix_points_to_the_bare_name(tmp_path):
    with pytest.raises(PipelineNotFoundError, match=r"Did you mean 'report'\?.*Fix: "):
        run_pipeline("pipelines/report.ipynb", reports_dir=tmp_path)
    with pytest.raises(PipelineNotFoundError, match=r"no pipeline named 'nope'.*Available"):
        run_pipeline("nope", reports_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_bars_of_different_lengths_are_never_pooled(tmp_path):
    from research.pipeline import load_market

    hourly = make_market(n_bars=300, seed=1, timeframe="1h")
    five = make_market(n_bars=300, seed=2, timeframe="5min")
    hourly.to_csv(tmp_path / "AAA_USDT_1h.csv")
    five.to_csv(tmp_path / "BBB_USDT_5m.csv")
    with pytest.raises(ValueError, match=r"2 lengths \(1h: AAA_USDT_1h; 5m: BBB_USDT_5m\).*Fix"):
        load_market(tmp_path)
    assert list(load_market(tmp_path, timeframe="5m")) == ["BBB_USDT_5m"]
    assert list(load_market(tmp_path, symbols=["AAA_USDT_1h"])) == ["AAA_USDT_1h"]
    result = CliRunner().invoke(main, ["demo", "--data", str(tmp_path), "--no-report"])
    assert result.exit_code != 0 and "Fix: pass timeframe=" in result.output
    assert "Traceback" not in result.output
