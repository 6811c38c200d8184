"""Plotly figures for the pages (History here; the backtest charts join them)."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

OUTCOME_COLOURS = {"APPROVE": "#16a34a", "REJECT-MAX": "#f59e0b", "ABORT": "#dc2626", "ERROR": "#7c3aed",
                   "INTERRUPTED": "#64748b"}


def outcomes_over_time(rows: list[dict]) -> go.Figure:
    """Exchanges per day, stacked by outcome."""
    frame = pd.DataFrame(rows, columns=["timestamp", "outcome"])
    frame["day"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601").dt.date
    counts = frame.groupby(["day", "outcome"]).size().reset_index(name="exchanges")
    figure = px.bar(counts, x="day", y="exchanges", color="outcome", color_discrete_map=OUTCOME_COLOURS,
                    title="Outcomes over time")
    figure.update_layout(height=300, margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend_title_text="",
                         xaxis_title=None, bargap=0.3)
    return figure


def violation_bars(counts: list[tuple[str, int]], top: int = 10) -> go.Figure:
    """The most frequent violations, most first."""
    frame = pd.DataFrame(counts[:top], columns=["constraint", "violations"])
    figure = px.bar(frame, x="violations", y="constraint", orientation="h", title="Most frequent violations",
                    color_discrete_sequence=["#f97316"])
    figure.update_layout(height=300, margin={"l": 10, "r": 10, "t": 40, "b": 10}, yaxis_title=None,
                         yaxis={"autorange": "reversed"})
    return figure
