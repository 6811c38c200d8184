"""Plotly figures for the pages: History's and the Backtest's. Every chart names what it shows in its title
and axes, and its title sits below the toolbar."""

from __future__ import annotations

import html
from collections.abc import Callable

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots
import streamlit as st

from core.journal.history import HistoryFilter

OUTCOME_COLOURS = {"APPROVE": "#16a34a", "REJECT-MAX": "#f59e0b", "ABORT": "#dc2626", "ERROR": "#7c3aed",
                   "INTERRUPTED": "#64748b"}


CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
"""plotly's config for every chart: the toolbar without the tools that mean nothing here."""


def _title(text: str) -> dict:
    """A title set below the toolbar, so the toolbar never covers it on a narrow screen."""
    return {"text": text, "x": 0, "xanchor": "left", "xref": "paper", "yref": "container", "y": 1,
            "yanchor": "top", "pad": {"t": 34}}


_MARGIN = {"l": 10, "r": 10, "t": 70, "b": 10}  # room for the title under the toolbar


def outcomes_over_time(by_day: list[tuple[str, str, int]], dates_by: str = "run") -> go.Figure:
    """Exchanges per day, stacked by outcome, from (day, outcome, count) rows; the day is the market
    day (ET) or the day the exchange was run (UTC), as `dates_by` says."""
    counts = {(day, outcome): n for day, outcome, n in by_day}
    days = sorted({day for day, _, _ in by_day})
    figure = go.Figure([
        go.Bar(x=days, y=[counts.get((day, outcome), 0) for day in days], name=outcome, marker_color=colour)
        for outcome, colour in OUTCOME_COLOURS.items() if any(o == outcome for _, o, _ in by_day)
    ])
    day = "market day (ET)" if dates_by == "market" else "day run (UTC)"
    tallest = max((sum(counts.get((d, o), 0) for o in OUTCOME_COLOURS) for d in days), default=0)
    figure.update_layout(title=_title(f"Exchanges per {day.split(' (')[0]}, by outcome"), barmode="stack",
                         height=320, margin=_MARGIN, legend_title_text="", xaxis_title=day,
                         yaxis=_counts_axis("exchanges", tallest), bargap=0.3, xaxis={"type": "category"},
                         legend={"orientation": "h", "y": -0.25})
    return figure


def _counts_axis(title: str, largest: int) -> dict:
    """An axis of whole counts: thousands separated, never a half tick."""
    return {"title": title, "tickformat": ",d", "rangemode": "tozero", **({"dtick": 1} if largest <= 6 else {})}


def violation_bars(counts: list[tuple[str, int]], top: int = 10) -> go.Figure:
    """The most frequent violations, most first: how many rounds named each constraint."""
    frame = pd.DataFrame(counts[:top], columns=["constraint", "rounds"])
    figure = px.bar(frame, x="rounds", y="constraint", orientation="h", color_discrete_sequence=["#f97316"])
    figure.update_layout(title=_title("Most frequent violations"), height=320, margin=_MARGIN,
                         xaxis=_counts_axis("rounds that broke it", int(frame["rounds"].max())), yaxis_title=None,
                         yaxis={"autorange": "reversed"})
    return figure


@st.cache_resource(show_spinner=False, max_entries=32)
def history_figures(_store, path: str, matching: HistoryFilter, version: tuple) -> tuple[go.Figure, go.Figure | None]:
    """History's two charts for the filtered exchanges: outcomes over time, violations (None: none).

    Kept because they count every matching exchange and round (0.1 s at 100k rows). `path` and
    `version` (the page's summary figures and newest rows) are the cache key: a new exchange, or
    one that finishes, changes them, so the charts follow the database. cache_resource, not cache_data, as for
    the Backtest's charts (`_kept`): cache_data hands back a copy unpickled, plotly validating both figures again
    (9-17 ms for a year of days). So the figures are shared: nothing may change one (st.plotly_chart copies them).
    """
    violations = _store.violation_counts(matching)
    by_day = outcomes_over_time(_store.outcomes_by_day(matching), matching.dates_by)
    return by_day, violation_bars(violations) if violations else None


# -- backtest charts ------------------------------------------------------------------------

class DrawnLast:
    """Charts that keep their places on the page but are built and sent after everything else on it.

    A fresh tab loads plotly's JavaScript (4.7 MB) when its first chart arrives, and chromium painted nothing
    that arrived just before that chart (the Backtest page's metrics) until it had loaded: 1-3 s on a loaded
    2-core machine. Sent after the tables, the charts find the metrics already on screen."""

    def __init__(self):
        self._charts: list[tuple] = []

    def add(self, where, figure: Callable[[], go.Figure]) -> None:
        """Keep a place for a chart in `where` (st, a column, a tab); `figure` builds it when drawn."""
        self._charts.append((where.empty(), figure))

    def draw(self) -> None:
        """Build and draw every chart kept, in the order they were added."""
        for place, figure in self._charts:
            place.plotly_chart(figure(), width="stretch", config=CONFIG)
        self._charts.clear()


def _as_typed(text: str) -> str:
    """Plotly draws a subset of HTML in titles and legends: a preset's name is shown as typed."""
    return html.escape(text, quote=False)


def _days(index: pd.DatetimeIndex):
    """A day axis plotly copies in one go and writes as before. Days with a time zone (the market's) reach plotly as
    Timestamp objects, which it deep-copies one by one on every add_trace, update and to_dict (half the time of a
    year's chart); their text, the isoformat it writes for each, is one list of strings."""
    return [day.isoformat() for day in index] if index.tz is not None else index


PRESET_COLOURS = ("#2563eb", "#f97316")
_LEGEND = {"orientation": "h", "y": -0.2, "title_text": ""}


def _kept(entries: int):
    """A Backtest chart built once per its inputs and kept, so that a rerun that changes no chart (a toggle, the
    challenge, Open of the run shown) builds none: a year's chart takes 10-35 ms to build, its inputs 0.1-0.6 ms to
    key. cache_resource, not cache_data: cache_data hands back a copy unpickled, which is plotly validating the whole
    figure again (about half a build). So the figure is shared: nothing may change one. At most `entries` are kept:
    a ten-year price chart holds 2.5 MB, its returns 0.6 MB."""
    return st.cache_resource(show_spinner=False, max_entries=entries,
                             hash_funcs={pd.DataFrame: _content, pd.Series: _content})


def _content(frame: pd.DataFrame | pd.Series) -> tuple:
    """All of a frame that can shape a chart, exactly: its shape, labels and dtypes (the days' zone among them), its
    days and every value. Streamlit's own hash of a frame leaves out the days' zone and takes 0.2-1.7 ms where this
    takes 0.01-0.3."""
    index = frame.index
    labels = (list(frame.columns), list(map(str, frame.dtypes))) if frame.ndim == 2 else (frame.name, str(frame.dtype))
    days = index.asi8 if isinstance(index, pd.DatetimeIndex) else index.to_numpy()
    return repr((frame.shape, labels, str(index.dtype))), _exact(days), _exact(frame.to_numpy())


def _exact(values: np.ndarray) -> bytes | str:
    """An array's values as their bytes, or, for objects (text, dates), as their reprs, which are exact for those."""
    return repr(values.tolist()) if values.dtype == object else values.tobytes()


@_kept(entries=8)
def returns_curves(curves: dict[str, pd.Series], capital: float, buy_hold: pd.Series | None = None) -> go.Figure:
    """Cumulative return per preset in percent of the starting capital, so a 1 % edge shows; buy-and-hold
    of the same capital, when given, dotted on a scale of its own (right), so its swings flatten nothing."""
    figure = go.Figure()
    for (name, equity), colour in zip(curves.items(), PRESET_COLOURS * 4):
        figure.add_trace(go.Scatter(x=_days(equity.index), y=(equity.to_numpy() / capital - 1) * 100,
                                    name=_as_typed(name), mode="lines", line={"color": colour},
                                    hovertemplate="%{x|%d %b %Y}: %{y:+.2f} %<extra>" + _as_typed(name) + "</extra>"))
    layout = {"yaxis": {"title": "return since the start [%]", "ticksuffix": " %", "zeroline": True}}
    if buy_hold is not None:
        figure.add_trace(go.Scatter(x=_days(buy_hold.index), y=(buy_hold.to_numpy() / capital - 1) * 100,
                                    name="buy & hold (right scale)", mode="lines",
                                    line={"color": "#94a3b8", "dash": "dot"}, yaxis="y2",
                                    hovertemplate="%{x|%d %b %Y}: %{y:+.2f} %<extra>buy & hold</extra>"))
        layout["yaxis2"] = {"title": "buy & hold [%]", "ticksuffix": " %", "overlaying": "y", "side": "right",
                            "showgrid": False}
    figure.update_layout(title=_title("Return of each preset"), height=340, margin=_MARGIN, legend=_LEGEND,
                         xaxis_title="trading day", **layout)
    return figure


@_kept(entries=8)
def drawdowns(curves: dict[str, pd.Series]) -> go.Figure:
    """Percent below the running peak per preset, drawn downwards."""
    figure = go.Figure()
    for (name, drawdown), colour in zip(curves.items(), PRESET_COLOURS * 4):
        figure.add_trace(go.Scatter(x=_days(drawdown.index), y=-drawdown.to_numpy(), name=_as_typed(name), mode="lines",
                                    fill="tozeroy", line={"color": colour},
                                    hovertemplate="%{x|%d %b %Y}: %{y:.2f} %<extra>" + _as_typed(name) + "</extra>"))
    figure.update_layout(title=_title("Drawdown: below the running peak"), height=340, margin=_MARGIN,
                         yaxis={"title": "below the peak [%]", "ticksuffix": " %"}, xaxis_title="trading day",
                         legend=_LEGEND)
    return figure


@_kept(entries=8)
def positions(frame: pd.DataFrame) -> go.Figure:
    """The book at each close: one line per symbol, its signed size in percent of equity (short below 0)."""
    figure, days = go.Figure(), _days(frame.index)
    for symbol in frame.columns:
        figure.add_trace(go.Scatter(x=days, y=frame[symbol].to_numpy() * 100, name=_as_typed(symbol),
                                    mode="lines", line={"shape": "hv"}))
    figure.update_layout(title=_title("Positions at each close (short below 0)"), height=300, margin=_MARGIN,
                         yaxis={"title": "position [% of equity]", "ticksuffix": " %"}, xaxis_title="trading day",
                         legend=_LEGEND)
    return figure


@_kept(entries=16)
def price_with_trades(prices: pd.DataFrame, trades: pd.DataFrame, title: str = "Price and trades") -> go.Figure:
    """Daily candles with a marker at every entry (triangle) and exit (cross), hover naming the reason."""
    figure = go.Figure(go.Candlestick(x=_days(prices.index), open=prices["Open"], high=prices["High"],
                                      low=prices["Low"], close=prices["Close"], name="price", showlegend=False))
    if len(trades):
        long = trades["side"] == "long"
        for mask, symbol, label, colour in ((long, "triangle-up", "long entry", "#16a34a"),
                                            (~long, "triangle-down", "short entry", "#dc2626")):
            picked = trades[mask]
            if len(picked):
                figure.add_trace(go.Scatter(
                    x=pd.to_datetime(picked["entry_day"]), y=picked["entry_price"], mode="markers", name=label,
                    marker={"symbol": symbol, "size": 11, "color": colour, "line": {"width": 1, "color": "#111"}},
                    hovertext=[f"{s:.1%} of equity, stop {st:.2f}, target {t:.2f}"
                               for s, st, t in zip(picked["size_pct"], picked["stop"], picked["target"])],
                ))
        figure.add_trace(go.Scatter(
            x=pd.to_datetime(trades["exit_day"]), y=trades["exit_price"], mode="markers", name="exit",
            marker={"symbol": "x", "size": 9, "color": "#111"},
            hovertext=[f"{r}: P&L {p:,.2f}" for r, p in zip(trades["exit_reason"], trades["pnl"])],
        ))
    figure.update_layout(title=_title(_as_typed(title)), height=380, margin=_MARGIN, xaxis_rangeslider_visible=False,
                         yaxis_title="price", xaxis_title="trading day", legend=_LEGEND)
    return figure


# -- what each rule costs -------------------------------------------------------------------

def rule_costs(rows: list[dict]) -> go.Figure:
    """What relaxing each limit would have added to the return, costliest on top; beside it, when a
    challenge was set, what it would have done to P(pass) (in points)."""
    frame = pd.DataFrame(rows)
    odds = "delta_p_pass" in frame
    figure = make_subplots(rows=1, cols=2 if odds else 1, shared_yaxes=True, horizontal_spacing=0.04,
                           subplot_titles=("Δ return [%]", "Δ P(pass) [points]") if odds else None)
    colours = ["#dc2626" if v > 0 else "#16a34a" if v < 0 else "#94a3b8" for v in frame["delta_return_pct"]]
    figure.add_trace(go.Bar(x=frame["delta_return_pct"], y=frame["limit"], orientation="h", marker_color=colours,
                            name="Δ return [%]", hovertemplate="%{y}: %{x:+.2f} % return<extra></extra>"), 1, 1)
    if odds:
        figure.add_trace(go.Bar(x=frame["delta_p_pass"] * 100, y=frame["limit"], orientation="h",
                                marker_color="#2563eb", name="Δ P(pass)",
                                hovertemplate="%{y}: %{x:+.1f} points of P(pass)<extra></extra>"), 1, 2)
    figure.update_layout(title=_title("What each limit costs: the change if it were relaxed"), showlegend=False,
                         height=120 + 32 * len(frame), margin=_MARGIN, yaxis={"autorange": "reversed"})
    figure.update_xaxes(zeroline=True, zerolinecolor="#64748b")
    return figure


def sensitivity_lines(rows: list[dict], limit: str) -> go.Figure:
    """Return and max drawdown (left, %) and P(pass) (right, when known) at each value of one limit."""
    frame = pd.DataFrame(rows)
    figure = make_subplots(specs=[[{"secondary_y": "p_pass" in frame}]])
    figure.add_trace(go.Scatter(x=frame[limit], y=frame["total_return_pct"], name="return [%]", mode="lines+markers",
                                line_color=PRESET_COLOURS[0]))
    figure.add_trace(go.Scatter(x=frame[limit], y=-frame["drawdown_pct"], name="max drawdown [%]",
                                mode="lines+markers", line_color="#dc2626"))
    if "p_pass" in frame:
        figure.add_trace(go.Scatter(x=frame[limit], y=frame["p_pass"] * 100, name="P(pass) [%]", mode="lines+markers",
                                    line={"color": "#16a34a", "dash": "dot"}), secondary_y=True)
        figure.update_yaxes(title_text="P(pass) [%]", range=[0, 100], secondary_y=True)
    figure.update_layout(title=_title(f"How the results move with {limit}"), height=340, margin=_MARGIN,
                         legend=_LEGEND, xaxis_title=limit, yaxis_title="%")
    return figure


def frontier_scatter(rows: list[dict], limits: list[str]) -> go.Figure:
    """Rule sets of the front: return against P(pass), each point labelled with its limits."""
    frame = pd.DataFrame(rows)
    labels = [", ".join(f"{k}={row[k]:g}" if isinstance(row[k], float) else f"{k}={row[k]}" for k in limits)
              for row in rows]
    colours = ["#16a34a" if passes else "#f59e0b" for passes in frame.get("passes", [False] * len(frame))]
    figure = go.Figure(go.Scatter(x=frame["p_pass"] * 100, y=frame["total_return_pct"], mode="markers",
                                  marker={"size": 12, "color": colours}, text=labels,
                                  hovertemplate="%{text}<br>P(pass) %{x:.1f} %, return %{y:+.2f} %<extra></extra>"))
    figure.update_layout(title=_title("The front: no other rule set has both more return and more P(pass)"),
                         height=340, margin=_MARGIN, xaxis_title="P(pass) [%]", yaxis_title="return [%]")
    return figure
