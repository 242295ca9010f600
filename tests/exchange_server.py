"""A local stand-in for Binance's public REST API: the real requests and response shapes.

It answers what ccxt's ``binance`` client calls to download candles:

* ``GET /api/v3/exchangeInfo`` and ``GET /fapi/v1/exchangeInfo`` (spot / USDT-M futures
  markets: the fields ccxt's ``parse_market`` reads),
* ``GET /api/v3/klines`` and ``GET /fapi/v1/klines`` with ``symbol interval startTime endTime
  limit``: 12-field rows ``[openTime, "open", "high", "low", "close", "volume", closeTime,
  "quoteVolume", trades, "takerBase", "takerQuote", "0"]``, at most :attr:`max_limit` rows
  (Binance's own cap is 1000/1500; a smaller one makes a short test paginate).

Requests are recorded (:attr:`ExchangeServer.requests`); :attr:`fail_klines_at` answers the
n-th klines request (1-based, each number once) with HTTP 429, Binance's JSON error body and a
``Retry-After`` header, as Binance does when a client exceeds its request weight.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

_INTERVAL_MS = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}
_RATE_LIMIT_BODY = {
    "code": -1003,
    "msg": "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute. "
    "Please use WebSocket Streams for live updates to avoid polling the API.",
}
_FILTERS = [
    {
        "filterType": "PRICE_FILTER",
        "minPrice": "0.01000000",
        "maxPrice": "1000000.00000000",
        "tickSize": "0.01000000",
    },
    {
        "filterType": "LOT_SIZE",
        "minQty": "0.00001000",
        "maxQty": "9000.00000000",
        "stepSize": "0.00001000",
    },
    {
        "filterType": "NOTIONAL",
        "minNotional": "5.00000000",
        "applyMinToMarket": True,
        "maxNotional": "9000000.00000000",
        "applyMaxToMarket": False,
        "avgPriceMins": 5,
    },
]


def _spot_symbol(symbol: str, base: str, quote: str) -> dict:
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": _FILTERS,
        "permissions": [],
        "permissionSets": [["SPOT", "MARGIN"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def _futures_symbol(symbol: str, base: str, quote: str) -> dict:
    return {
        "symbol": symbol,
        "pair": symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": base,
        "quoteAsset": quote,
        "marginAsset": quote,
        "pricePrecision": 2,
        "quantityPrecision": 3,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": ["PoW"],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": _FILTERS,
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
    }


class ExchangeServer:
    """Serve candles as Binance does, on ``http://127.0.0.1:<port>`` (:attr:`url`).

    Parameters
    ----------
    spot, futures : dict
        ``{"BTCUSDT": ("BTC", "USDT", {"1h": candles})}``: the markets and, per interval, a
        frame of bars (index of open times, UTC; ``open high low close volume``). The frames
        may be replaced while the server runs (new bars arriving).
    max_limit : int
        Most rows one klines response holds (``limit`` is capped to it).
    """

    def __init__(
        self, *, spot: dict | None = None, futures: dict | None = None, max_limit: int = 500
    ) -> None:
        self.markets = {"/api/v3": spot or {}, "/fapi/v1": futures or {}}
        self.max_limit = max_limit
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.fail_klines_at: set[int] = set()
        self.fail_always = False
        self._klines_seen = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> ExchangeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def klines_requests(self) -> list[dict[str, str]]:
        """The query parameters of every klines request, in order (429-answered ones too)."""
        return [q for path, q in self.requests if path.endswith("/klines")]

    def set_bars(self, prefix: str, symbol: str, interval: str, bars: pd.DataFrame) -> None:
        base, quote, frames = self.markets[prefix][symbol]
        self.markets[prefix][symbol] = (base, quote, {**frames, interval: bars})

    # -- answers ---------------------------------------------------------------------------

    def _exchange_info(self, prefix: str) -> dict:
        make = _spot_symbol if prefix == "/api/v3" else _futures_symbol
        symbols = [make(s, base, quote) for s, (base, quote, _) in self.markets[prefix].items()]
        info = {
            "timezone": "UTC",
            "serverTime": int(pd.Timestamp.now("UTC").value // 10**6),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 6000,
                }
            ],
            "exchangeFilters": [],
            "symbols": symbols,
        }
        if prefix == "/fapi/v1":
            info["assets"] = [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "0"}]
        return info

    def _klines(self, prefix: str, query: dict[str, str]) -> tuple[int, object]:
        market = self.markets[prefix].get(query.get("symbol", ""))
        interval = query.get("interval", "")
        if market is None:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        if interval not in _INTERVAL_MS or interval not in market[2]:
            return 400, {"code": -1120, "msg": "Invalid interval."}
        bars = market[2][interval]
        ms = bars.index.as_unit("ns").asi8 // 10**6
        limit = min(int(query.get("limit", 500)), self.max_limit)
        keep = np.ones(len(bars), dtype=bool)
        if "endTime" in query:
            keep &= ms <= int(query["endTime"])
        if "startTime" in query:
            keep &= ms >= int(query["startTime"])
            rows = bars[keep].iloc[:limit]
        else:  # Binance: the most recent bars
            rows = bars[keep].iloc[-limit:]
        step = _INTERVAL_MS[interval]
        out = []
        for t, o, h, lo, c, v in zip(
            rows.index.as_unit("ns").asi8 // 10**6,
            rows["open"],
            rows["high"],
            rows["low"],
            rows["close"],
            rows["volume"],
            strict=True,
        ):
            out.append(
                [
                    int(t),
                    repr(float(o)),
                    repr(float(h)),
                    repr(float(lo)),
                    repr(float(c)),
                    repr(float(v)),
                    int(t) + step - 1,
                    repr(float(v * c)),
                    100,
                    repr(float(v / 2)),
                    repr(float(v * c / 2)),
                    "0",
                ]
            )
        return 200, out

    def _answer(self, path: str, query: dict[str, str]) -> tuple[int, object, dict]:
        prefix, _, endpoint = path.rpartition("/")
        if prefix not in self.markets:
            return 404, {"code": -1000, "msg": f"unknown path {path}"}, {}
        if endpoint == "exchangeInfo":
            return 200, self._exchange_info(prefix), {}
        if endpoint == "klines":
            with self._lock:
                self._klines_seen += 1
                fail = self.fail_always or self._klines_seen in self.fail_klines_at
            if fail:
                return 429, _RATE_LIMIT_BODY, {"Retry-After": "1"}
            return (*self._klines(prefix, query), {})
        if endpoint in ("ping", "time"):
            return 200, ({} if endpoint == "ping" else {"serverTime": 0}), {}
        return 404, {"code": -1000, "msg": f"unknown endpoint {path}"}, {}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                with server._lock:
                    server.requests.append((parts.path, query))
                status, body, headers = server._answer(parts.path, query)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # quiet
                pass

        return Handler
