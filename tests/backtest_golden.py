"""The single-symbol backtests whose results must not change when the engine changes shape.

`python -m tests.backtest_golden` wrote tests/data/backtest_golden.json.gz from the engine as it was
before the portfolio rewrite (issue 11); tests/test_backtest_golden.py compares today's engine with it.
Record a case again only for a deliberate change of semantics, and say which in that test's docstring.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

GOLDEN = Path(__file__).with_name("data") / "backtest_golden.json.gz"

CASES = {
    # name: (symbol, start, end, preset, seed): every shipped preset on a symbol it allows
    "msft-moderate": ("MSFT", "2019-04-01", "2022-03-10", "moderate", 0),
    "msft-conservative": ("MSFT", "2019-04-01", "2022-03-10", "conservative", 1),
    "tsla-futures": ("TSLA", "2017-02-01", "2018-12-31", "futures_compatible", 0),
    "btc-aggressive": ("BTC-USD", "2019-02-01", "2021-01-12", "aggressive", 2),
    "amzn-strict": ("AMZN", "2009-09-08", "2010-08-20", "strict", 0),
    "amzn-moderate": ("AMZN", "2009-09-08", "2010-08-20", "moderate", 1),
}
DAY_COLUMNS = ["day", "outcome", "reason", "rounds", "fills", "note", "equity"]


def _round(value):
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 6)
    return value


def run_case(name: str):
    """The backtest of one case with the house agents on the shipped snapshot (offline)."""
    import core
    from core import market

    symbol, start, end, preset, seed = CASES[name]
    bars = market.load_bars(symbol, online=False)
    return core.run_backtest(symbol, start, end, core.load_preset(preset), core.HousePlayer(seed=seed),
                             core.HouseCoach(), bars=bars, preset=preset)


def summary(result) -> dict:
    """What a result must keep: every day, every trade, every metric, walk-forward and regimes."""
    days = result.days[DAY_COLUMNS].astype({"day": str})
    trades = result.trades.astype({"entry_day": str, "exit_day": str})
    return {
        "days": [[_round(v) for v in row] for row in days.itertuples(index=False)],
        "trades": [[_round(v) for v in row] for row in trades.itertuples(index=False)],
        "trade_columns": list(trades.columns),
        "equity": [round(float(v), 6) for v in result.equity],
        "equity_index": [str(d.date()) for d in result.equity.index],
        "metrics": {k: _round(float(v)) for k, v in result.metrics.items()},
        "walk_forward": result.walk_forward,
        "by_regime": {k: {c: _round(float(v)) for c, v in row.items()} for k, row in result.by_regime.iterrows()},
    }


def load() -> dict:
    return json.loads(gzip.decompress(GOLDEN.read_bytes()))


if __name__ == "__main__":  # python -m tests.backtest_golden [NAME ...]: record those cases (default: all)
    import os
    import sys

    os.environ["PLAYER_COACH_OFFLINE"] = "1"
    data = load() if GOLDEN.exists() else {}
    for name in sys.argv[1:] or list(CASES):
        data[name] = summary(run_case(name))
        print(name, len(data[name]["days"]), "days", len(data[name]["trades"]), "trades")
    GOLDEN.write_bytes(gzip.compress(json.dumps(data, separators=(",", ":")).encode(), mtime=0))
