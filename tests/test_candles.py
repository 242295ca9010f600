"""Tests of research.candles: loading, validation errors, gaps, timeframes, resampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from research.candles import (
    BINANCE_KLINE_COLUMNS,
    GAP_END,
    GAP_START,
    MISSING_BARS,
    find_gaps,
    infer_timeframe,
    load_candles,
    load_folder,
    parse_timeframe,
    resample_candles,
    timeframe_of,
)
from research.schema import (
    CANDLE_COLUMNS,
    CLOSE,
    HIGH,
    LOW,
    OPEN,
    TIMESTAMP,
    VOLUME,
    SchemaError,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
UTC = "UTC"
ISO = "%Y-%m-%dT%H:%M:%SZ"


def make_bars(n: int = 8, start: str = "2021-01-01T00:00:00Z", step: str = "5min") -> pd.DataFrame:
    """Valid hand-made candles in the loader's contract (UTC ns index named timestamp)."""
    index = pd.date_range(start, periods=n, freq=step).as_unit("ns").rename(TIMESTAMP)
    rng = np.random.default_rng(7)
    close = np.round(100 + rng.normal(0, 1, n).cumsum(), 2)
    open_ = np.r_[100.0, close[:-1]]
    frame = pd.DataFrame(
        {
            OPEN: open_,
            HIGH: np.maximum(open_, close) + 0.25,
            LOW: np.minimum(open_, close) - 0.5,
            CLOSE: close,
            VOLUME: np.round(rng.uniform(0, 10, n), 3),
        },
        index=index,
    )
    return frame


def raw_of(bars: pd.DataFrame) -> pd.DataFrame:
    """The frame as a file would hold it: ISO string times in a column."""
    raw = bars.reset_index()
    raw[TIMESTAMP] = bars.index.strftime(ISO)
    return raw


def check_contract(got: pd.DataFrame) -> None:
    assert isinstance(got.index, pd.DatetimeIndex)
    assert got.index.name == TIMESTAMP
    assert str(got.index.tz) == UTC
    assert got.index.unit == "ns"
    assert list(got.columns) == list(CANDLE_COLUMNS)
    assert (got.dtypes == "float64").all()


@pytest.fixture(scope="module")
def btc5() -> pd.DataFrame:
    return load_candles(DATA / "BTC_USDT_5m.csv.gz")


# ------------------------------------------------------------------------------------------
# loading
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["BTC_USDT_5m.csv", "BTC_USDT_5m.csv.gz"])
def test_load_iso_csv_and_gz(tmp_path: Path, name: str) -> None:
    bars = make_bars()
    raw_of(bars).to_csv(tmp_path / name, index=False)
    got = load_candles(tmp_path / name)
    check_contract(got)
    pd.testing.assert_frame_equal(got, bars, check_freq=False)
    assert got.attrs["symbol"] == "BTC_USDT"
    assert got.attrs["timeframe"] == pd.Timedelta(minutes=5)
    assert (got.attrs["n_gaps"], got.attrs["missing_bars"]) == (0, 0)
    assert list(find_gaps(got).columns) == [GAP_START, GAP_END, MISSING_BARS]


def test_iso_variants_naive_offset_and_z_are_utc(tmp_path: Path) -> None:
    bars = make_bars(3)
    raw = raw_of(bars)
    raw[TIMESTAMP] = ["2021-01-01T00:00:00Z", "2021-01-01 00:05:00", "2021-01-01T02:10:00+02:00"]
    raw.to_csv(tmp_path / "X.csv", index=False)
    got = load_candles(tmp_path / "X.csv", symbol="XYZ", timeframe="5m")
    pd.testing.assert_frame_equal(got, bars, check_freq=False)
    assert got.attrs["symbol"] == "XYZ"


def test_header_case_insensitive_extra_columns_dropped(tmp_path: Path) -> None:
    bars = make_bars()
    raw = raw_of(bars)
    raw["trades"] = 5
    raw.columns = ["Date", "Open", "HIGH", "low", "Close", "Volume", "trades"]
    raw.to_csv(tmp_path / "EURUSD_1h.csv", index=False)
    got = load_candles(tmp_path / "EURUSD_1h.csv", timeframe=pd.Timedelta(minutes=5))
    pd.testing.assert_frame_equal(got, bars, check_freq=False)
    assert got.attrs["symbol"] == "EURUSD"


@pytest.mark.parametrize("name", ["SOL_USDT_1h.parquet", "SOL_USDT_1h.pq"])
def test_load_parquet_column_and_index(tmp_path: Path, name: str) -> None:
    bars = make_bars(step="1h")
    bars.reset_index().to_parquet(tmp_path / name)
    pd.testing.assert_frame_equal(load_candles(tmp_path / name), bars, check_freq=False)
    bars.to_parquet(tmp_path / f"idx_{name}")  # time stored as the index
    got = load_candles(tmp_path / f"idx_{name}")
    check_contract(got)
    pd.testing.assert_frame_equal(got, bars, check_freq=False)
    assert got.attrs["timeframe"] == pd.Timedelta(hours=1)


@pytest.mark.parametrize("unit, divisor", [("s", 10**9), ("ms", 10**6), ("us", 10**3), ("ns", 1)])
def test_load_epoch_numbers(tmp_path: Path, unit: str, divisor: int) -> None:
    bars = make_bars()
    raw = raw_of(bars)
    raw[TIMESTAMP] = bars.index.asi8 // divisor
    raw.rename(columns={TIMESTAMP: "time"}).to_csv(tmp_path / f"E_{unit}.csv", index=False)
    got = load_candles(tmp_path / f"E_{unit}.csv")
    check_contract(got)
    pd.testing.assert_frame_equal(got, bars, check_freq=False)
    assert got.attrs["timeframe"] == pd.Timedelta(minutes=5)  # inferred: no suffix in the name


def binance_klines(bars: pd.DataFrame, divisor: int) -> pd.DataFrame:
    opens = bars.index.asi8 // divisor
    step = pd.Timedelta(minutes=5).value // divisor
    raw = pd.DataFrame(
        {
            "open_time": opens,
            **{c: bars[c].to_numpy() for c in CANDLE_COLUMNS},
            "close_time": opens + step - 1,
            "quote_asset_volume": bars[VOLUME].to_numpy() * 100,
            "number_of_trades": 42,
            "taker_buy_base": 1.5,
            "taker_buy_quote": 150.0,
            "ignore": 0,
        }
    )
    assert tuple(raw.columns) == BINANCE_KLINE_COLUMNS
    return raw


@pytest.mark.parametrize("divisor", [10**3, 10**6], ids=["microseconds", "milliseconds"])
def test_load_binance_headerless_klines(tmp_path: Path, divisor: int) -> None:
    bars = make_bars()
    path = tmp_path / "BTCUSDT-5m-2025-01.csv"
    binance_klines(bars, divisor).to_csv(path, index=False, header=False)
    got = load_candles(path)
    check_contract(got)
    pd.testing.assert_frame_equal(got, bars, check_freq=False)
    assert got.attrs["symbol"] == "BTCUSDT"
    assert got.attrs["timeframe"] == pd.Timedelta(minutes=5)


def test_load_binance_klines_with_header(tmp_path: Path) -> None:
    bars = make_bars()
    binance_klines(bars, 10**6).to_csv(tmp_path / "k.csv.gz", index=False)
    pd.testing.assert_frame_equal(load_candles(tmp_path / "k.csv.gz"), bars, check_freq=False)


def test_load_real_file(btc5: pd.DataFrame) -> None:
    check_contract(btc5)
    assert len(btc5) == 65741
    assert btc5.index[0] == pd.Timestamp("2020-12-01 00:00", tz=UTC)
    assert btc5.index[-1] == pd.Timestamp("2021-07-17 21:05", tz=UTC)
    assert btc5.iloc[0].tolist() == [19695.87, 19720.0, 19578.96, 19607.03, 794.500517]
    assert btc5.attrs["symbol"] == "BTC_USDT"
    assert btc5.attrs["timeframe"] == pd.Timedelta(minutes=5)
    assert (btc5.attrs["n_gaps"], btc5.attrs["missing_bars"]) == (6, 177)


# ------------------------------------------------------------------------------------------
# bad input: every error names the file or rows and says how to fix it
# ------------------------------------------------------------------------------------------
def _set(row: int, col: str, value: object):
    def mutate(raw: pd.DataFrame) -> pd.DataFrame:
        raw[col] = raw[col].astype(object)
        raw.loc[row, col] = value
        return raw

    return mutate


def _swap(raw: pd.DataFrame) -> pd.DataFrame:
    raw.loc[[3, 4], TIMESTAMP] = raw.loc[[4, 3], TIMESTAMP].to_numpy()
    return raw


BAD_ROWS = {
    "nan": (_set(3, HIGH, np.nan), "NaN", "2021-01-01 00:15:00+00:00"),
    "high_below_body": (_set(3, HIGH, 1.0), "high below", "2021-01-01 00:15:00+00:00"),
    "low_above_body": (_set(3, LOW, 1000.0), "low above", "2021-01-01 00:15:00+00:00"),
    "non_positive": (_set(3, LOW, -1.0), "non-positive", "2021-01-01 00:15:00+00:00"),
    "zero_price": (_set(2, OPEN, 0.0), "non-positive", "2021-01-01 00:10:00+00:00"),
    "unsorted": (_swap, "not sorted", "2021-01-01 00:15:00+00:00"),
    "duplicate": (_set(4, TIMESTAMP, "2021-01-01T00:15:00Z"), "duplicate", "00:15:00"),
    "text_price": (_set(3, CLOSE, "abc"), "non-numeric", "line(s) 5 ('abc')"),
    "bad_time": (_set(3, TIMESTAMP, "yesterday"), "unreadable", "line(s) 5 ('yesterday')"),
}


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_bad_rows_are_named_with_a_fix(tmp_path: Path, case: str) -> None:
    mutate, what, where = BAD_ROWS[case]
    path = tmp_path / "BAD_5m.csv"
    mutate(raw_of(make_bars())).to_csv(path, index=False)
    with pytest.raises(SchemaError) as err:
        load_candles(path)
    message = str(err.value)
    assert what in message and where in message and "Fix" in message
    assert "BAD_5m.csv" in message


def _write_text(text: str, name: str):
    def write(folder: Path) -> Path:
        (folder / name).write_text(text)
        return folder / name

    return write


BAD_FILES = {
    "missing_column": (_write_text("timestamp,open,high,low,close\n", "a.csv"), "missing"),
    "no_time_column": (_write_text("open,high,low,close,volume\n1,1,1,1,1\n", "a.csv"), "time"),
    "two_time_columns": (_write_text("date,time,open,high,low,close,volume\n", "a.csv"), "time"),
    "unknown_extension": (_write_text("timestamp,open\n", "a.txt"), "unknown extension"),
    "empty_file": (_write_text("", "a.csv"), "empty"),
    "header_only": (_write_text("timestamp,open,high,low,close,volume\n", "a.csv"), "no bars"),
    "headerless_6_columns": (_write_text("1609459200000,1,1,1,1,1\n", "a.csv"), "numeric"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_say_what_was_found_and_how_to_fix(tmp_path: Path, case: str) -> None:
    write, what = BAD_FILES[case]
    path = write(tmp_path)
    with pytest.raises(ValueError) as err:
        load_candles(path)
    message = str(err.value)
    assert what in message and "Fix" in message and path.name in message


def test_missing_column_lists_found_and_expected(tmp_path: Path) -> None:
    raw_of(make_bars()).drop(columns=VOLUME).to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(SchemaError, match="Fix") as err:
        load_candles(tmp_path / "a.csv")
    assert "['volume']" in str(err.value)
    assert "'close']" in str(err.value)  # the columns found are listed


def test_missing_file_and_folder_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist.*Fix"):
        load_candles(tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError, match="load_folder"):
        load_candles(tmp_path)


def test_bars_closer_than_the_timeframe_are_refused(tmp_path: Path) -> None:
    raw_of(make_bars()).to_csv(tmp_path / "BTC_USDT_1h.csv", index=False)
    with pytest.raises(SchemaError, match="less than one timeframe.*Fix"):
        load_candles(tmp_path / "BTC_USDT_1h.csv")
    got = load_candles(tmp_path / "BTC_USDT_1h.csv", timeframe="5m")
    assert got.attrs["timeframe"] == pd.Timedelta(minutes=5)


# ------------------------------------------------------------------------------------------
# timeframes and gaps
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, minutes",
    [("1m", 1), ("5m", 5), ("15m", 15), ("15min", 15), ("1h", 60), ("1H", 60), ("4h", 240)]
    + [("1d", 1440), ("1D", 1440), ("1w", 10080), ("00:30:00", 30), ("30s", 0.5)]
    + [(pd.Timedelta(minutes=3), 3)],
)
def test_parse_timeframe(text: str, minutes: float) -> None:
    assert parse_timeframe(text) == pd.Timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["1M", "abc", "0m", "", "-5m", "1MS"])
def test_parse_timeframe_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="Fix"):
        parse_timeframe(text)


def test_infer_timeframe_and_timeframe_of() -> None:
    stamps = pd.DatetimeIndex(["2021-01-01 00:00", "00:05", "00:10", "00:20", "00:25"], tz=UTC)
    assert infer_timeframe(stamps) == pd.Timedelta(minutes=5)
    tie = pd.DatetimeIndex(["2021-01-01 00:00", "2021-01-01 00:10", "2021-01-01 00:15"], tz=UTC)
    assert infer_timeframe(tie) == pd.Timedelta(minutes=5)  # tie -> the shorter step
    with pytest.raises(SchemaError, match="Fix"):
        infer_timeframe(stamps[:1])
    bars = make_bars(step="1h")
    assert timeframe_of(bars) == pd.Timedelta(hours=1)
    bars.attrs["timeframe"] = pd.Timedelta(minutes=30)
    assert timeframe_of(bars) == pd.Timedelta(minutes=30)


def test_find_gaps_hand_made() -> None:
    bars = make_bars(20).drop(index=make_bars(20).index[[3, 4, 5, 9]])
    gaps = find_gaps(bars)
    assert list(gaps.columns) == [GAP_START, GAP_END, MISSING_BARS]
    assert gaps[MISSING_BARS].tolist() == [3, 1]
    assert gaps[MISSING_BARS].dtype == "int64"
    t = pd.Timestamp("2021-01-01", tz=UTC)
    assert gaps[GAP_START].tolist() == [t + pd.Timedelta(minutes=15), t + pd.Timedelta(minutes=45)]
    assert gaps[GAP_END].tolist() == [t + pd.Timedelta(minutes=25), t + pd.Timedelta(minutes=45)]
    assert str(gaps[GAP_START].dt.tz) == UTC
    # with a 10m timeframe only steps above 10m are gaps
    assert find_gaps(bars, "10m")[MISSING_BARS].tolist() == [1]  # 00:10 -> 00:30: 00:20
    assert find_gaps(make_bars(5)).empty


def test_load_logs_the_gap_count(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    raw_of(make_bars(12).iloc[[0, 1, 2, 5, 6, 9, 10, 11]]).to_csv(
        tmp_path / "G_5m.csv", index=False
    )
    with caplog.at_level("INFO", logger="research.candles"):
        got = load_candles(tmp_path / "G_5m.csv")
    assert "2 gaps, 4 missing bars" in caplog.text
    assert len(got) == 8  # nothing was filled


def test_gaps_of_real_files(btc5: pd.DataFrame) -> None:
    gaps = find_gaps(btc5)
    assert (len(gaps), gaps[MISSING_BARS].sum()) == (6, 177)
    first = gaps.iloc[0]
    assert first[GAP_START] == pd.Timestamp("2020-12-21 14:10", tz=UTC)
    assert first[GAP_END] == pd.Timestamp("2020-12-21 17:55", tz=UTC)
    assert first[MISSING_BARS] == 46
    assert gaps[MISSING_BARS].tolist() == [46, 12, 15, 18, 30, 56]
    eur = load_candles(DATA / "EURUSD_1h.csv.gz")
    gaps = find_gaps(eur)
    assert (len(gaps), gaps[MISSING_BARS].sum()) == (321, 15189)
    largest = gaps.loc[gaps[MISSING_BARS].idxmax()]
    assert largest[GAP_START] == pd.Timestamp("2009-12-31 22:00", tz=UTC)
    assert largest[MISSING_BARS] == 72
    assert (eur[VOLUME] == 0).all()


# ------------------------------------------------------------------------------------------
# resampling
# ------------------------------------------------------------------------------------------
def test_resample_reproduces_the_shared_15m_file(btc5: pd.DataFrame) -> None:
    want = load_candles(DATA / "BTC_USDT_15m.csv.gz")
    got = resample_candles(btc5, "15m")
    check_contract(got)
    pd.testing.assert_frame_equal(got, want, check_freq=False, check_exact=False, atol=1e-9)
    assert got.attrs["symbol"] == "BTC_USDT"
    assert got.attrs["timeframe"] == pd.Timedelta(minutes=15)
    assert (got.attrs["n_gaps"], got.attrs["missing_bars"]) == (6, 58)
    for rule in ("15min", pd.Timedelta(minutes=15)):
        pd.testing.assert_frame_equal(resample_candles(btc5, rule), got)


def test_resample_keeps_partial_bins_and_never_fills() -> None:
    bars = make_bars(14)
    bars = bars.iloc[[0, 1, 2, 3, 4, 6, 13]]  # 00:25 and 00:35..01:00 missing
    bars.attrs["timeframe"] = pd.Timedelta(minutes=5)
    got = resample_candles(bars, "15m")
    t = pd.Timestamp("2021-01-01", tz=UTC)
    assert got.index.tolist() == [t + pd.Timedelta(minutes=m) for m in (0, 15, 30, 60)]
    assert got.iloc[1].tolist() == [
        bars[OPEN].iloc[3],
        bars[HIGH].iloc[3:5].max(),
        bars[LOW].iloc[3:5].min(),
        bars[CLOSE].iloc[4],
        bars[VOLUME].iloc[3:5].sum(),
    ]
    assert got.iloc[3].tolist() == bars.iloc[6].tolist()  # a one-bar bin is that bar
    assert find_gaps(got)[MISSING_BARS].tolist() == [1] and got.attrs["missing_bars"] == 1


@pytest.mark.parametrize("rule", ["1m", "7m", "1M", pd.Timedelta(minutes=4)])
def test_resample_refuses_finer_or_non_multiple_rules(rule: str) -> None:
    with pytest.raises(ValueError, match="Fix"):
        resample_candles(make_bars(), rule)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_resample_to_twice_the_timeframe_property(data: st.DataObject) -> None:
    tf = pd.Timedelta(minutes=data.draw(st.sampled_from([1, 5, 15, 60])))
    n = data.draw(st.integers(1, 40))
    slots = sorted(data.draw(st.sets(st.integers(0, 3 * n), min_size=n, max_size=n)))
    start = pd.Timestamp("2021-03-01", tz=UTC) + data.draw(st.integers(0, 3)) * tf
    price = st.floats(0.01, 1e5, allow_nan=False)
    rows = data.draw(
        st.lists(
            st.tuples(price, price, st.floats(0, 100), st.floats(0, 0.99), st.floats(0, 1e6)),
            min_size=n,
            max_size=n,
        )
    )
    o, c, up, down, vol = (np.array(col, dtype="float64") for col in zip(*rows, strict=True))
    index = pd.DatetimeIndex([start + k * tf for k in slots]).as_unit("ns").rename(TIMESTAMP)
    bars = pd.DataFrame(
        {
            OPEN: o,
            HIGH: np.maximum(o, c) + up,
            LOW: np.minimum(o, c) * (1 - down),
            CLOSE: c,
            VOLUME: vol,
        },
        index=index,
    )
    bars.attrs["timeframe"] = tf
    got = resample_candles(bars, 2 * tf)
    groups = bars.groupby(bars.index.floor(2 * tf))
    assert got.index.tolist() == list(groups.groups)
    np.testing.assert_array_equal(got[HIGH], groups[HIGH].max())
    np.testing.assert_array_equal(got[LOW], groups[LOW].min())
    np.testing.assert_array_equal(got[OPEN], [g[OPEN].iloc[0] for _, g in groups])
    np.testing.assert_array_equal(got[CLOSE], [g[CLOSE].iloc[-1] for _, g in groups])
    np.testing.assert_allclose(got[VOLUME], groups[VOLUME].sum(), rtol=1e-12)
    assert got[VOLUME].sum() == pytest.approx(vol.sum(), rel=1e-12)
    assert got.attrs["timeframe"] == 2 * tf


# ------------------------------------------------------------------------------------------
# folders
# ------------------------------------------------------------------------------------------
def test_load_folder_tmp(tmp_path: Path) -> None:
    raw_of(make_bars()).to_csv(tmp_path / "AAA_USDT_5m.csv.gz", index=False)
    make_bars(step="1h").reset_index().to_parquet(tmp_path / "BBB_1h.parquet")
    (tmp_path / "notes.txt").write_text("not candles")
    got = load_folder(tmp_path)
    assert list(got) == ["AAA_USDT_5m", "BBB_1h"]
    assert got["BBB_1h"].attrs["symbol"] == "BBB"
    assert list(load_folder(tmp_path, timeframe="5m")) == ["AAA_USDT_5m"]
    assert list(load_folder(tmp_path, pattern="B*")) == ["BBB_1h"]
    with pytest.raises(ValueError, match="Fix"):
        load_folder(tmp_path, timeframe="4h")
    raw_of(make_bars()).to_csv(tmp_path / "AAA_USDT_5m.csv", index=False)
    with pytest.raises(ValueError, match="AAA_USDT_5m.*Fix"):
        load_folder(tmp_path)


def test_load_folder_without_candle_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not candles")
    with pytest.raises(FileNotFoundError) as err:
        load_folder(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message and ".csv.gz" in message and "Fix" in message


def test_load_folder_shared_data() -> None:
    every = load_folder(DATA)
    stems = sorted(p.name.removesuffix(".csv.gz") for p in DATA.glob("*.csv.gz"))
    assert len(every) == 13 and list(every) == stems
    assert sum(len(c) for c in every.values()) == 501529
    five = load_folder(DATA, timeframe="5m")
    assert sorted(five) == [f"{s}_USDT_5m" for s in ("ADA", "BTC", "ETH", "SOL", "XRP")]
    assert all(c.attrs["timeframe"] == pd.Timedelta(minutes=5) for c in five.values())


def test_loaded_frames_concat_and_aggregate(tmp_path: Path) -> None:
    """attrs hold only scalars, so pandas operations that compare attrs keep working."""
    btc = load_candles(DATA / "BTC_USDT_1h.csv.gz")
    both = pd.concat([btc.iloc[:100], btc.iloc[100:200]])
    assert len(both) == 200
    assert len(btc.agg(["min", "max"])) == 2
