"""A plain-Python reference of the simulator rules: the oracle of tests and benchmarks.

Written independently of the compiled kernel (no shared code, no long-space trick: longs and
shorts are spelled out), so that agreement between the two is evidence, not tautology. Not used
by the product: it is ~100x slower.
"""

from __future__ import annotations

import math


def simulate_one(bars, start, side, entry, sl, tp, deadline, tp1_r=1.6, at_entry=False):
    """Simulate one signal over ``bars`` from index ``start``.

    Parameters
    ----------
    bars : list of tuple
        ``(open, high, low, close, close_time)`` per bar, close_time in ns.
    start : int
        Index of the first bar whose open time is at or after the signal time.
    side : {'long', 'short'}
    entry, sl, tp : float
    deadline : int
        ``signal_time + timeout`` in ns.

    Returns
    -------
    dict
        ``reason`` (None if censored), ``price``, ``exit_time``, ``tp1_hit``, ``tp1_time``,
        ``be_moved``, ``mfe``, ``mae``, ``ambiguous``, ``checks``.
    """
    long = side == "long"
    risk = abs(entry - sl)
    if tp1_r > 0:
        tp1 = entry + tp1_r * risk if long else entry - tp1_r * risk
    else:
        tp1 = math.inf if long else -math.inf
    stop, pending = sl, sl
    res = {
        "reason": None,
        "price": math.nan,
        "exit_time": None,
        "tp1_hit": False,
        "tp1_time": None,
        "be_moved": False,
        "mfe": math.nan,
        "mae": math.nan,
        "ambiguous": False,
        "checks": 0,
    }
    slack = 1e-12 * abs(tp1) if math.isfinite(tp1) else 0.0
    for o, h, lo, c, t_close in bars[start:]:
        res["checks"] += 1
        stop = pending
        if long:
            res["mfe"] = h if math.isnan(res["mfe"]) else max(res["mfe"], h)
            res["mae"] = lo if math.isnan(res["mae"]) else min(res["mae"], lo)
        else:
            res["mfe"] = lo if math.isnan(res["mfe"]) else min(res["mfe"], lo)
            res["mae"] = h if math.isnan(res["mae"]) else max(res["mae"], h)
        at_be = stop >= entry if long else stop <= entry
        stop_reason = "be" if at_be else "sl"
        reason, price = None, math.nan
        if long:
            if o <= stop:
                reason, price = stop_reason, o
            elif o >= tp:
                reason, price = "tp", o
            elif lo <= stop:
                reason, price, res["ambiguous"] = stop_reason, stop, h >= tp
            elif h >= tp:
                reason, price = "tp", tp
            reached_tp1 = h >= tp1 - slack
        else:
            if o >= stop:
                reason, price = stop_reason, o
            elif o <= tp:
                reason, price = "tp", o
            elif h >= stop:
                reason, price, res["ambiguous"] = stop_reason, stop, lo <= tp
            elif lo <= tp:
                reason, price = "tp", tp
            reached_tp1 = lo <= tp1 + slack
        if reason == "tp" and not res["tp1_hit"]:
            if (tp >= tp1 - slack) if long else (tp <= tp1 + slack):
                res["tp1_hit"], res["tp1_time"] = True, t_close
        if reason is None:
            if not res["tp1_hit"] and reached_tp1:
                res["tp1_hit"], res["tp1_time"], res["be_moved"] = True, t_close, True
                pending = max(stop, entry) if long else min(stop, entry)
            if t_close >= deadline:
                reason, price = "timeout", entry if at_entry else c
        if reason is not None:
            res.update(reason=reason, price=price, exit_time=t_close)
            return res
    return res
