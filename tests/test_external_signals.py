"""Bring your own signals: the file's format and fix-it errors, symbol matching, the file's own
columns as model features, and a study of a user's signals (research.signals.external)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from external_files import write_candles, write_signals

from research import schema as S
from research.pipeline import study_from_signals
from research.replay import ReplayConfig, replay
from research.scoring import EnsembleScorer
from research.scoring.encode import encoded_columns, entry_features
from research.signals import new_signal_ids
from research.signals.external import load_signals, match_symbols, prepare_signals
from research.signals.extras import MAX_CATEGORIES, extra_columns

HEADER = "symbol,side,signal_time,entry,sl,tp"
ROWS = [
    "BTC/USDT,long,2024-01-01T00:10:00Z,100,99,102",
    "BTC/USDT,short,2024-01-01 00:05:00,100,101,98",
]


def _csv(tmp_path, *rows, header=HEADER, name="signals.csv"):
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _error(tmp_path, *rows, header=HEADER) -> str:
    with pytest.raises(S.SchemaError) as info:
        load_signals(_csv(tmp_path, *rows, header=header))
    assert "Fix:" in str(info.value)
    return str(info.value)


# --------------------------------------------------------------------------------------------
# happy paths
# --------------------------------------------------------------------------------------------
def test_minimal_file_becomes_the_signals_frame(tmp_path):
    sig = load_signals(_csv(tmp_path, *ROWS))
    assert list(sig.columns) == list(S.SIGNAL_COLUMNS)
    S.validate_signals(sig)
    # sorted by time; the naive time is UTC; strategy defaults to 'external'
    assert sig[S.SIGNAL_TIME].tolist() == [
        pd.Timestamp("2024-01-01 00:05", tz="UTC"),
        pd.Timestamp("2024-01-01 00:10", tz="UTC"),
    ]
    assert sig[S.SIDE].tolist() == ["short", "long"] and set(sig[S.STRATEGY]) == {"external"}
    expected = new_signal_ids("BTC/USDT", "external", sig[S.SIDE], sig[S.SIGNAL_TIME])
    assert sig[S.SIGNAL_ID].tolist() == expected  # deterministic, as our own strategies'
    assert load_signals(_csv(tmp_path, *ROWS))[S.SIGNAL_ID].tolist() == expected


def test_aliases_case_offsets_epochs_and_parquet(tmp_path):
    raw = pd.DataFrame(
        {
            "Symbol": ["ETH-USD", "ETH-USD", "ETH-USD"],
            "SIDE": [" Buy", "SELL", "Long"],
            "Signal Time": [1704067500, 1704067800000, 1704068100],  # seconds, milliseconds
            "entry": [10.0, 10.0, 10.0],
            "sl": [9.0, 11.0, 9.5],
            "tp": [12.0, 8.0, 11.0],
            "strategy": ["a", "b", "a"],
            "signal_id": ["x1", "x2", "x3"],
            "timeout_hours": [6, None, 2],
        }
    )
    raw.to_parquet(tmp_path / "s.parquet")
    sig = load_signals(tmp_path / "s.parquet")
    assert sig[S.SIDE].tolist() == ["long", "short", "long"]
    assert sig[S.SIGNAL_TIME].tolist() == list(
        pd.to_datetime([1704067500, 1704067800, 1704068100], unit="s", utc=True)
    )
    assert sig[S.SIGNAL_ID].tolist() == ["x1", "x2", "x3"]
    assert sig[S.STRATEGY].tolist() == ["a", "b", "a"]
    assert sig[S.TIMEOUT_HOURS].tolist()[::2] == [6.0, 2.0] and np.isnan(sig[S.TIMEOUT_HOURS][1])
    offset = load_signals(_csv(tmp_path, "X,long,2024-01-01T02:05:00+02:00,100,99,102"))
    assert offset[S.SIGNAL_TIME][0] == pd.Timestamp("2024-01-01 00:05", tz="UTC")


def test_extra_columns_become_x_features_with_a_fixed_vocabulary(tmp_path, caplog):
    rows = [
        r + extra
        for r, extra in zip(
            ROWS, [",0.5,okx,True,2024-01-01", ",,binance,False,2024-01-02"], strict=True
        )
    ]
    many = "|".join(f"v{i}" for i in range(MAX_CATEGORIES + 1))
    header = f"{HEADER},confidence,venue,flag,seen"
    with caplog.at_level(logging.WARNING):
        sig = load_signals(_csv(tmp_path, *rows, header=header))
    assert extra_columns(sig) == ["x_confidence", "x_venue=binance", "x_venue=okx", "x_flag"]
    assert sig[extra_columns(sig)].dtypes.eq("float64").all()
    first = sig.iloc[1]  # the file's first row (sorted by time)
    assert (first["x_confidence"], first["x_venue=okx"], first["x_venue=binance"]) == (0.5, 1, 0)
    assert np.isnan(sig.iloc[0]["x_confidence"])  # empty = missing, imputed by the models
    assert sig.attrs["extra_categories"] == {"venue": ("binance", "okx")}
    assert "seen (dates)" in caplog.text and "not used as features" in caplog.text
    # a later file scored by a fitted model: the same columns, whatever values it has
    later = load_signals(
        _csv(tmp_path, ROWS[0] + ",1,bybit,True,2024-01-03", header=header, name="later.csv"),
        categories=sig.attrs["extra_categories"],
    )
    assert [c for c in extra_columns(later) if "venue" in c] == ["x_venue=binance", "x_venue=okx"]
    assert later[["x_venue=binance", "x_venue=okx"]].to_numpy().tolist() == [[0.0, 0.0]]
    wide = pd.DataFrame(
        {
            **{
                c: [v] * (MAX_CATEGORIES + 1)
                for c, v in zip(
                    HEADER.split(","), ["A", "long", "2024-01-01", 10, 9, 11], strict=True
                )
            },
            "signal_id": [f"s{i}" for i in range(MAX_CATEGORIES + 1)],
            "tag": many.split("|"),
        }
    )
    assert extra_columns(prepare_signals(wide)) == []  # too many values to one-hot


def test_leaky_looking_column_is_warned_about(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        sig = load_signals(_csv(tmp_path, ROWS[0] + ",1.5", header=f"{HEADER},realized_pnl"))
    assert "x_realized_pnl" in sig and "known only after the trade" in caplog.text


# --------------------------------------------------------------------------------------------
# every error names the rows and the fix
# --------------------------------------------------------------------------------------------
def test_missing_file_and_unknown_type(tmp_path):
    with pytest.raises(S.SchemaError, match="no signals file at .*Fix: check the path"):
        load_signals(tmp_path / "nope.csv")
    (tmp_path / "s.xlsx").write_text("x")
    with pytest.raises(S.SchemaError, match=r"unknown file type.*\.parquet"):
        load_signals(tmp_path / "s.xlsx")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(S.SchemaError, match="the file is empty. Fix"):
        load_signals(tmp_path / "empty.csv")
    assert "no signals (0 rows)" in _error(tmp_path)


def test_missing_columns_suggest_close_names(tmp_path):
    msg = _error(
        tmp_path, "X,long,2024-01-01,100,99,102", header="symbol,side,signal_tme,entry,stop_loss,tp"
    )
    assert "missing column(s) ['signal_time', 'sl']" in msg
    assert "'signal_tme' -> 'signal_time'" in msg and "'stop_loss' -> 'sl'" in msg
    assert "duplicate" not in msg
    msg = _error(tmp_path, "X;long;2024-01-01;100;99;102", header=HEADER.replace(",", ";"))
    assert "save the file comma-separated" in msg
    msg = _error(tmp_path, "X,long,2024-01-01,100,99,102,99", header=f"{HEADER},SL")
    assert "['sl'] appear more than once" in msg


def test_empty_required_values(tmp_path):
    msg = _error(tmp_path, ROWS[0], "BTC/USDT,long,2024-01-01T00:15:00Z,,99,102")
    assert "empty 'entry' at line 3" in msg


def test_unreadable_times_name_the_lines_and_say_utc_close_time(tmp_path):
    msg = _error(
        tmp_path,
        ROWS[0],
        "BTC/USDT,long,yesterday,100,99,102",
        "BTC/USDT,long,2024-13-45,100,99,102",
    )
    assert "unreadable signal_time at lines 3 ('yesterday'), 4 ('2024-13-45')" in msg
    assert "UTC" in msg and "close time of the bar" in msg


def test_side_must_be_long_or_short(tmp_path):
    msg = _error(tmp_path, ROWS[0], "BTC/USDT,up,2024-01-01T00:15:00Z,100,99,102")
    assert "unknown side at line 3 ('up')" in msg and "buy and sell" in msg


def test_prices_must_be_positive_numbers(tmp_path):
    msg = _error(tmp_path, 'BTC/USDT,long,2024-01-01T00:15:00Z,"1,000",99,102')
    assert "'entry' is not a number at line 2 ('1,000')" in msg
    msg = _error(tmp_path, "BTC/USDT,short,2024-01-01T00:15:00Z,100,101,-5")
    assert "'tp' must be a finite number > 0" in msg and "line 2" in msg


def test_sl_tp_on_the_wrong_side_for_the_side(tmp_path):
    msg = _error(
        tmp_path,
        ROWS[0],
        "BTC/USDT,long,2024-01-01T00:15:00Z,100,102,99",
        "BTC/USDT,short,2024-01-01T00:20:00Z,100,98,101",
    )
    assert "wrong side of entry for the side at lines 3, 4" in msg
    assert "first: long: sl=102, entry=100, tp=99" in msg
    assert "a long needs sl < entry < tp and a short tp < entry < sl" in msg


def test_duplicate_signal_ids_given_or_derived(tmp_path):
    msg = _error(tmp_path, ROWS[0] + ",a", ROWS[1] + ",a", header=f"{HEADER},signal_id")
    assert "duplicate signal_id at lines 2 ('a'), 3 ('a')" in msg
    msg = _error(tmp_path, *ROWS, ROWS[0])
    assert "duplicate signal_id at lines 2" in msg and ", 4" in msg
    assert "same signal (symbol, strategy, side and signal_time" in msg
    assert "empty signal_id at line 3" in _error(
        tmp_path, ROWS[0] + ",a", ROWS[1] + ",", header=f"{HEADER},signal_id"
    )


def test_optional_columns_and_extras_are_checked_too(tmp_path):
    msg = _error(tmp_path, ROWS[0] + ",", header=f"{HEADER},strategy")
    assert "empty strategy at line 2" in msg and "'external'" in msg
    msg = _error(tmp_path, ROWS[0] + ",0", header=f"{HEADER},timeout_hours")
    assert "'timeout_hours' must be a finite number > 0" in msg
    msg = _error(tmp_path, ROWS[0] + ",inf", header=f"{HEADER},conf")
    assert "infinite 'conf' at line 2" in msg
    msg = _error(tmp_path, ROWS[0] + ",1,2", header=f"{HEADER},conf,x_conf")
    assert "becomes feature 'x_conf'" in msg


# --------------------------------------------------------------------------------------------
# symbols -> candle files
# --------------------------------------------------------------------------------------------
def test_symbols_match_file_stems():
    sig = pd.DataFrame({S.SYMBOL: ["BTC/USDT", "ETH-USDT", "SOLUSDT", "ADA_BTC_5m"]})
    keys = ["BTC_USDT_5m", "ETHUSDT-5m", "SOLUSDT_5m", "ADA_BTC_5m", "BTCDOM_5m"]
    assert match_symbols(sig, keys)[S.SYMBOL].tolist() == keys[:4]
    with pytest.raises(S.SchemaError) as info:
        match_symbols(sig, ["BTC_USDT_5m", "BTC_USDT_1h", "ADA_BTC_5m"])
    msg = str(info.value)
    assert "no candles for symbol(s) ['ETH-USDT', 'SOLUSDT']" in msg
    assert "'BTC/USDT': ['BTC_USDT_5m', 'BTC_USDT_1h']" in msg and "Fix:" in msg


# --------------------------------------------------------------------------------------------
# the file's columns as model inputs
# --------------------------------------------------------------------------------------------
def test_extra_features_are_model_inputs_with_the_same_columns_at_scoring():
    from research.scoring.fast import FastScorer

    rng = np.random.default_rng(0)
    n = 300
    x = pd.DataFrame(
        {
            "rsi_14": rng.uniform(0, 100, n),
            "session": rng.choice(S.SESSIONS, n),
            "x_conf": rng.normal(size=n),
            "x_venue=okx": rng.integers(0, 2, n) * 1.0,
        }
    )
    y = (x["x_conf"] + 0.3 * rng.normal(size=n) > 0).astype(int).to_numpy()
    assert entry_features(x) == ["rsi_14", "session", "x_conf", "x_venue=okx"]
    model = EnsembleScorer(n_estimators=20, gb_max_iter=20, nn_enabled=False).fit(x, y)
    assert model.feature_names_[-2:] == ["x_conf", "x_venue=okx"]
    assert model.encoded_feature_names() == encoded_columns(model.feature_names_)
    new = x.iloc[:50].sample(frac=1.0, axis=1, random_state=1)  # same columns, other order
    np.testing.assert_allclose(model.score_signals(new), model.score_signals(x.iloc[:50]))
    assert np.corrcoef(model.score_signals(x), x["x_conf"])[0, 1] > 0.5  # the column is used
    fast = FastScorer.from_model(model)  # the ONNX fast path knows the extras too
    one = x.iloc[0].to_dict()
    assert fast.score_one(one) == pytest.approx(model.score_signals(x.iloc[[0]])[0], abs=1e-6)


# --------------------------------------------------------------------------------------------
# a study of a user's signals, and its replay
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("byo")
    markets = write_candles(root / "data", n_bars=4000)
    write_signals(root / "signals.csv", markets)
    return root, markets


def test_study_from_signals_joins_extras_and_fills_timeouts(user_files, caplog):
    root, markets = user_files
    signals = load_signals(root / "signals.csv")
    signals.loc[0, S.SIGNAL_TIME] = pd.Timestamp("2020-01-01", tz="UTC")  # before every candle
    own = signals.assign(timeout_hours=np.where(np.arange(len(signals)) == 1, 6.0, np.nan))
    candles = {f"{k}_5m": c for k, c in markets.items()}
    with caplog.at_level(logging.WARNING):
        study = study_from_signals(candles, own, timeout_hours=2, progress=False)
    assert "1 of" in caplog.text and "outside their candles' period" in caplog.text
    assert len(study.signals) == len(signals) - 1 == len(study.outcomes) == len(study.features)
    assert set(study.signals[S.SYMBOL]) == set(candles)
    assert study.features.index.tolist() == study.signals[S.SIGNAL_ID].tolist()
    assert extra_columns(study.features) == ["x_confidence", "x_venue=binance", "x_venue=okx"]
    hours = study.signals.set_index(S.SIGNAL_ID)[S.TIMEOUT_HOURS]
    assert (
        hours[signals.loc[1, S.SIGNAL_ID]] == 6.0
        and (hours.drop(signals.loc[1, S.SIGNAL_ID]) == 2.0).all()
    )
    timeouts = study.outcomes[S.EXIT_REASON] == "timeout"
    held = study.outcomes[S.TIME_TO_EXIT_SEC][timeouts] / 3600
    assert timeouts.sum() > 10
    assert (held <= 6 + 5 / 60).all() and (held <= 2 + 5 / 60).mean() > 0.9  # not 36 h


def test_study_errors_for_unknown_symbols_and_disjoint_periods(user_files):
    root, markets = user_files
    signals = load_signals(root / "signals.csv")
    with pytest.raises(S.SchemaError, match=r"no candles for symbol.*SYNTH_A_5m.*Fix"):
        study_from_signals({"SYNTH_A_5m": markets["SYNTH_A"]}, signals, progress=False)
    late = signals.assign(signal_time=signals[S.SIGNAL_TIME] + pd.Timedelta(days=3650))
    with pytest.raises(S.SchemaError, match=r"none of the .* signals falls within .*Fix: load"):
        study_from_signals({f"{k}_5m": c for k, c in markets.items()}, late, progress=False)


def test_replay_accepts_the_files_strategy_names(user_files):
    root, markets = user_files
    candles = {f"{k}_5m": c for k, c in markets.items()}
    study = study_from_signals(candles, load_signals(root / "signals.csv"), progress=False)
    config = ReplayConfig(n_boot=50)
    with pytest.raises(ValueError, match=r"unknown strategies \['other'\].*'mybot'"):
        replay(candles, ["other"], config, study=study, progress=False)
    with pytest.raises(ValueError, match="unknown strategies"):
        replay(candles, ["mybot"], config, progress=False)  # no study: built-in names only
