"""``phantomlab data`` / research.data against a local server speaking Binance's REST API.

No mocks: the real ccxt ``binance`` client sends its real requests (exchangeInfo, klines) to
``tests/exchange_server.py`` on 127.0.0.1, which answers in Binance's format, caps ``limit`` at
500 (so downloads paginate), can answer HTTP 429 with ``Retry-After`` and serves a gap.
"""

from __future__ import annotations

import gzip
import json
import time

import ccxt
import pandas as pd
import pytest
from click.testing import CliRunner
from exchange_server import ExchangeServer

from research.candles import load_candles
from research.cli import main
from research.data import DownloadConfig, download
from research.data_files import write_freqtrade
from research.errors import DataError, DownloadError
from research.known_answer import known_answer_market
from research.schema import CANDLE_COLUMNS, SchemaError

HOUR = pd.Timedelta("1h")
GAP = slice(2000, 2005)  # ETHUSDT misses these 5 hourly bars


def _ms(stamp: pd.Timestamp) -> int:
    return stamp.value // 1_000_000


@pytest.fixture(scope="module")
def market() -> dict[str, pd.DataFrame]:
    """Two hourly markets of 3,600 bars (2024-01-01 on); ETHUSDT with a 5-bar gap."""
    synth = known_answer_market("planted", n_bars=3600, seed=0)
    btc = synth["SYNTH_A"][list(CANDLE_COLUMNS)].copy()
    eth = synth["SYNTH_B"][list(CANDLE_COLUMNS)].copy()
    eth = eth.drop(eth.index[GAP])
    for frame in (btc, eth):
        frame.attrs = {}
    return {"BTCUSDT": btc, "ETHUSDT": eth}


@pytest.fixture
def server(market):
    srv = ExchangeServer(
        spot={
            "BTCUSDT": ("BTC", "USDT", {"1h": market["BTCUSDT"]}),
            "ETHUSDT": ("ETH", "USDT", {"1h": market["ETHUSDT"]}),
        },
        futures={"BTCUSDT": ("BTC", "USDT", {"1h": market["BTCUSDT"]})},
        max_limit=500,
    ).start()
    yield srv
    srv.stop()


def _config(tmp_path, server, **kwargs) -> DownloadConfig:
    base = dict(
        pairs=("BTC/USDT",),
        timeframes=("1h",),
        start=pd.Timestamp("2024-01-01", tz="UTC"),
        datadir=tmp_path / "data",
        api_url=server.url,
        progress=False,
    )
    return DownloadConfig(**{**base, **kwargs})


def test_download_paginates_backs_off_on_429_and_skips_the_forming_candle(tmp_path, server, market):
    """1,500 bars in pages of 500, one HTTP 429 mid-way; a ccxt client pointed at the server."""
    bars = market["BTCUSDT"].iloc[:1500]
    server.set_bars("/api/v3", "BTCUSDT", "1h", bars)
    server.fail_klines_at = {2}
    exchange = ccxt.binance({"enableRateLimit": True, "options": {"fetchMarkets": ["spot"]}})
    exchange.urls["api"]["public"] = f"{server.url}/api/v3"  # the only endpoints spot needs
    now = bars.index[-1] + pd.Timedelta("30min")  # the last bar is still forming
    started = time.monotonic()
    [res] = download(_config(tmp_path, server), exchange=exchange, now=now)
    assert time.monotonic() - started >= 1.0, "the Retry-After: 1 of the 429 was honoured"
    starts = [int(q["startTime"]) for q in server.klines_requests()]
    first = _ms(bars.index[0])
    page = 500 * 3_600_000
    assert starts == [first, first + page, first + page, first + 2 * page]  # 2nd one retried
    assert all(q["limit"] == "1000" and q["symbol"] == "BTCUSDT" for q in server.klines_requests())
    assert res.path == tmp_path / "data" / "binance" / "BTC_USDT-1h.parquet"
    assert (res.new_bars, res.bars, res.last) == (1499, 1499, bars.index[-2])
    stored = pd.read_parquet(res.path)
    assert list(stored.columns) == ["date", *CANDLE_COLUMNS]
    assert str(stored["date"].dtype) == "datetime64[ns, UTC]"
    expected = bars.iloc[:-1].rename_axis("date").reset_index()
    pd.testing.assert_frame_equal(stored, expected, check_freq=False)
    assert res.gaps.empty


def test_gap_is_kept_reported_and_found_by_load_candles(tmp_path, server, market):
    now = pd.Timestamp("2026-01-01", tz="UTC")
    [res] = download(_config(tmp_path, server, pairs=("ETH/USDT",)), now=now)
    source = market["ETHUSDT"]
    assert res.bars == len(source) == 3595
    assert res.gaps["missing_bars"].tolist() == [5]
    full = known_answer_market("planted", n_bars=3600, seed=0)["SYNTH_B"].index
    assert res.gaps["gap_start"].tolist() == [full[GAP.start]]
    assert res.gaps["gap_end"].tolist() == [full[GAP.stop - 1]]
    candles = load_candles(res.path)
    assert (candles.attrs["n_gaps"], candles.attrs["missing_bars"]) == (1, 5)
    assert candles.attrs["symbol"] == "ETH_USDT" and candles.attrs["timeframe"] == HOUR
    assert not candles.index.isin(full[GAP]).any(), "a gap is never filled"


def test_second_download_requests_only_bars_after_the_last_stored(tmp_path, server, market):
    bars = market["BTCUSDT"]
    server.set_bars("/api/v3", "BTCUSDT", "1h", bars.iloc[:1200])
    [first] = download(_config(tmp_path, server), now=bars.index[1199] + pd.Timedelta("1min"))
    assert first.last == bars.index[1198]  # 1199 was still forming
    server.set_bars("/api/v3", "BTCUSDT", "1h", bars.iloc[:1300])
    server.requests.clear()
    [second] = download(_config(tmp_path, server), now=bars.index[1299] + pd.Timedelta("1min"))
    starts = [int(q["startTime"]) for q in server.klines_requests()]
    assert starts == [_ms(bars.index[1199])], "resumes one bar after the last stored"
    assert (second.new_bars, second.bars, second.last) == (100, 1299, bars.index[1298])
    stored = load_candles(second.path)
    pd.testing.assert_frame_equal(
        stored[list(CANDLE_COLUMNS)], bars.iloc[:1299], check_names=False, check_freq=False
    )
    server.requests.clear()
    [third] = download(_config(tmp_path, server), now=bars.index[1299] + pd.Timedelta("1min"))
    assert third.new_bars == 0 and not server.klines_requests(), "up to date: nothing asked"


def test_futures_go_to_their_own_folder_with_freqtrade_names(tmp_path, server, market):
    config = _config(tmp_path, server, trading_mode="futures")
    [res] = download(config, now=pd.Timestamp("2026-01-01", tz="UTC"))
    assert res.pair == "BTC/USDT:USDT"
    assert res.path == tmp_path / "data/binance/futures/BTC_USDT_USDT-1h-futures.parquet"
    paths = {path for path, _ in server.requests}
    assert paths == {"/fapi/v1/exchangeInfo", "/fapi/v1/klines"}, "only USDT-M endpoints"
    candles = load_candles(res.path)
    assert candles.attrs["symbol"] == "BTC_USDT_USDT" and candles.attrs["timeframe"] == HOUR
    assert len(candles) == len(market["BTCUSDT"])


def test_feather_and_json_files_load_like_the_parquet(tmp_path, server):
    [res] = download(_config(tmp_path, server), now=pd.Timestamp("2026-01-01", tz="UTC"))
    parquet = load_candles(res.path)
    folder = tmp_path / "freqtrade"
    folder.mkdir()
    feather = write_freqtrade(parquet, folder / "BTC_USDT-1h.feather")
    as_json = write_freqtrade(parquet, folder / "BTC_USDT-1h.json")
    rows = json.loads(as_json.read_text())
    assert rows[0] == [_ms(parquet.index[0]), *parquet.iloc[0].tolist()]  # freqtrade's rows
    assert list(pd.read_feather(feather).columns) == ["date", *CANDLE_COLUMNS]
    as_gz = folder / "BTC_USDT-1h.json.gz"  # freqtrade's jsongz format
    as_gz.write_bytes(gzip.compress(as_json.read_bytes()))
    for path in (feather, as_json, as_gz):
        loaded = load_candles(path)
        pd.testing.assert_frame_equal(loaded, parquet)
        assert loaded.attrs == parquet.attrs
    (folder / "X_USDT-1h.json").write_text('{"not": "a list of rows"}')
    with pytest.raises(SchemaError, match="Fix"):
        load_candles(folder / "X_USDT-1h.json")
    (folder / "Y_USDT-1h.feather").write_bytes(b"not arrow at all")
    with pytest.raises(SchemaError, match="Fix"):
        load_candles(folder / "Y_USDT-1h.feather")


def test_unknown_timeframe_or_pair_is_a_usage_error_with_a_fix(tmp_path, server):
    with pytest.raises(DataError, match=r"no timeframe '7h'.*Fix: use one of \[.*'1h'"):
        download(_config(tmp_path, server, timeframes=("7h",)))
    with pytest.raises(DataError, match=r"no spot market 'DOGE/USDT'.*Fix.*'(BTC|ETH)/USDT'"):
        download(_config(tmp_path, server, pairs=("DOGE/USDT",)))
    result = CliRunner().invoke(
        main,
        [
            "data",
            "download",
            "--pairs",
            "BTC/USDT",
            "--timeframes",
            "7h",
            "--api-url",
            server.url,
            "--datadir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2 and "Fix" in result.output


def test_download_that_keeps_failing_exits_1_after_its_retries(tmp_path, server):
    server.fail_always = True
    with pytest.raises(DownloadError, match="failed 2 times.*DDoSProtection.*Fix"):
        download(_config(tmp_path, server, max_attempts=2, max_backoff_s=0.1))
    result = CliRunner().invoke(
        main,
        [
            "data",
            "download",
            "--pairs",
            "BTC/USDT",
            "--retries",
            "2",
            "--api-url",
            server.url,
            "--datadir",
            str(tmp_path),
            "--no-progress",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "failed 2 times" in result.output and "Fix" in result.output
    assert len(server.klines_requests()) == 4


def test_cli_download_list_check_then_demo_on_the_folder(tmp_path, server, monkeypatch):
    for var in ("PHANTOMLAB_REDIS_URL", "PHANTOMLAB_DATABASE_URL", "PHANTOMLAB_SIGNING_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PHANTOMLAB_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("PHANTOMLAB_WORKSPACE", str(tmp_path / "workspace"))
    datadir = tmp_path / "data"
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "data",
            "download",
            "--exchange",
            "binance",
            "--pairs",
            "BTC/USDT",
            "ETH/USDT",
            "--timeframes",
            "1h",
            "--start",
            "2024-01-01",
            "--datadir",
            str(datadir),
            "--api-url",
            server.url,
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "BTC/USDT 1h: 3,600 new bar(s)" in result.output
    assert "ETH/USDT 1h: 3,595 new bar(s)" in result.output
    assert "1 gap(s), 5 missing bar(s), kept as gaps" in result.output
    assert f"phantomlab demo --data {datadir / 'binance'}" in result.output
    listed = runner.invoke(main, ["data", "list", "--datadir", str(datadir)])
    assert listed.exit_code == 0, listed.output
    lines = {line.split()[0]: line.split() for line in listed.output.splitlines()[1:]}
    assert lines["binance/BTC_USDT-1h.parquet"][1:3] == ["BTC/USDT", "1h"]
    assert lines["binance/ETH_USDT-1h.parquet"][-3:] == ["3595", "1", "5"]  # bars gaps missing
    checked = runner.invoke(main, ["data", "check", "--datadir", str(datadir)])
    assert checked.exit_code == 0, checked.output
    assert "1 gap(s), 5 missing bar(s)" in checked.output and "2 ok, 0 bad" in checked.output
    demo = runner.invoke(
        main,
        [
            "demo",
            "--data",
            str(datadir / "binance"),
            "--workdir",
            str(tmp_path / "work"),
            "--no-report",
            "--retrain-every",
            "200",
        ],
    )
    assert demo.exit_code == 0, demo.output
    assert "BTC_USDT-1h" in demo.output and "ETH_USDT-1h" in demo.output
    (datadir / "binance" / "XRP_USDT-1h.json").write_text("[[1, 2, 3]]")
    bad = runner.invoke(main, ["data", "check", "--datadir", str(datadir)])
    assert bad.exit_code == 1
    assert "BAD  binance/XRP_USDT-1h.json" in bad.output and "Fix" in bad.output


def test_an_earlier_start_fetches_only_the_missing_head(tmp_path, server, market):
    bars = market["BTCUSDT"].iloc[:1000]
    server.set_bars("/api/v3", "BTCUSDT", "1h", bars)
    now = bars.index[-1] + HOUR  # every served bar is closed
    download(_config(tmp_path, server, start=bars.index[600]), now=now)
    server.requests.clear()
    [res] = download(_config(tmp_path, server, start=bars.index[0]), now=now)
    starts = [int(q["startTime"]) for q in server.klines_requests()]
    assert starts == [_ms(bars.index[0]), _ms(bars.index[500])], "the head only, 2 pages"
    assert (res.new_bars, res.bars, res.first) == (600, 1000, bars.index[0])
    assert res.gaps.empty
