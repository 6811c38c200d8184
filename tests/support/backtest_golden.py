"""The single-symbol backtests whose results must not change when the engine changes shape.

`python -m tests.support.backtest_golden` wrote tests/data/backtest_golden.json.gz from the engine as it was
before the portfolio rewrite (issue 11); tests/test_backtest_golden.py compares today's engine with it.
Record a case again only for a deliberate change of semantics, and say which in that test's docstring.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "backtest_golden.json.gz"

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


class TrendPlayer:
    """A Player of its own, so the recorded results depend on the engine and the rules only (the house
    agents keep improving). Trend from sma5/sma10, stop at k ATR, target at r times the risk; the first
    proposal's size, k and r vary with the day (some break a rule), a revision takes safe values; it
    exits on a trend flip and holds one day in five."""

    name = "trend"
    model = None
    seed = 0

    def propose(self, world, constraints, portfolio, history):
        from core.exchange.agent import Turn
        from core.exchange.schema import Proposal

        n = world.as_of.toordinal()
        up = world.sma5 >= world.sma10
        held = portfolio.positions.get(world.symbol, 0.0)
        atr = world.atr or world.price * 0.02
        if n % 5 == 0 or (held > 0 and up) or (held < 0 and not up):
            actions = [{"action_type": "hold", "symbol": world.symbol}]
        elif held:
            actions = [{"action_type": "exit", "symbol": world.symbol}]
        else:
            first = not history
            size = (0.03, 0.08, 0.05)[n % 3] if first else 0.03
            k = (0.5, 1.5, 2.5)[n % 7 % 3] if first else 2.0
            r = (1.0, 2.0, 3.0)[n % 11 % 3] if first else 2.5
            side = 1 if up else -1
            e = world.price
            actions = [{"action_type": "enter_long" if up else "enter_short", "symbol": world.symbol,
                        "size_pct": size, "entry_price": e, "stop_loss": round(e - side * k * atr, 2),
                        "take_profit": round(e + side * r * k * atr, 2)}]
        yield "plan"
        return Turn(Proposal.model_validate({"reasoning": "trend", "actions": actions}))


class QuietCoach:
    """A Coach that only relays the rules' verdict (its words never change a decision)."""

    name = "quiet"
    model = None

    def critique(self, proposal, verdict, constraints, world, portfolio):
        from core.exchange.agent import Turn

        yield "ok"
        return Turn("ok")


def run_case(name: str):
    """The backtest of one case with TrendPlayer and QuietCoach on the shipped snapshot (offline)."""
    import core
    from core import market

    symbol, start, end, preset, seed = CASES[name]
    bars = market.load_bars(symbol, online=False)
    return core.run_backtest(symbol, start, end, core.load_preset(preset), TrendPlayer(), QuietCoach(),
                             bars=bars, preset=preset)


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


if __name__ == "__main__":  # python -m tests.support.backtest_golden [NAME ...]: record those cases (default: all)
    import os
    import sys

    os.environ["PLAYER_COACH_OFFLINE"] = "1"
    data = load() if GOLDEN.exists() else {}
    for name in sys.argv[1:] or list(CASES):
        data[name] = summary(run_case(name))
        print(name, len(data[name]["days"]), "days", len(data[name]["trades"]), "trades")
    GOLDEN.write_bytes(gzip.compress(json.dumps(data, separators=(",", ":")).encode(), mtime=0))
