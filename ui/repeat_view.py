"""How repeatable an agent is, on screen (Trade Review's "Run k times", History's groups): the k outcomes
as a strip, the agreement figures and the spread of the final trade, the rounds and the cost."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import core
from core.exchange.repeat import SPREAD_FIELDS
from core.prices import cost_text

OUTCOME_COLOURS = {"APPROVE": "green", "REJECT-MAX": "orange", "ABORT": "red", "ERROR": "violet", "INTERRUPTED": "gray"}
FIGURES = {"size_pct": "size %", "entry_price": "entry", "stop_loss": "stop", "take_profit": "target",
           "rounds_taken": "rounds", "cost_usd": "cost $"}


def group_of(store: core.Store, repeat_id: str) -> list[core.Artifact]:
    """The stored exchanges of one group, in the order they ran."""
    rows = reversed(store.list_exchanges(repeat_id=repeat_id, dates_by="run", limit=None))
    return [artifact for row in rows if (artifact := store.get_exchange(row["run_id"])) is not None]


def strip(outcomes: list[str]) -> None:
    """The outcomes in the order the exchanges finished, one coloured badge each."""
    with st.container(horizontal=True, gap="small"):
        for number, outcome in enumerate(outcomes, start=1):
            st.badge(f"{number} · {outcome}", color=OUTCOME_COLOURS.get(outcome, "gray"))


def spread_frame(result: core.Repeatability) -> pd.DataFrame:
    """Min, median and max of each figure the repeats have (size in %), one row per figure."""
    rows = []
    for name in SPREAD_FIELDS:
        spread = result.spread[name]
        if spread is None:
            continue
        scale = 100 if name == "size_pct" else 1
        form = "{:,.4f}" if name == "cost_usd" else "{:,.2f}" if name != "rounds_taken" else "{:g}"
        rows.append({"figure": FIGURES[name],
                     **{label: form.format(value * scale) for label, value in
                        (("min", spread.min), ("median", spread.median), ("max", spread.max))}})
    return pd.DataFrame(rows, columns=["figure", "min", "median", "max"])


def show(result: core.Repeatability) -> None:
    """The strip, the agreement figures and the spread table of one group."""
    outcome, side = result.most_common()
    st.subheader(f"{result.k} runs of the same exchange")
    strip(result.outcomes)
    cols = st.columns(3)
    cols[0].metric("Outcome agreement", f"{result.outcome_agreement:.0%}",
                   help=f"The share of the runs that ended {outcome}, the most common outcome.")
    cols[1].metric("Side agreement", f"{result.side_agreement:.0%}",
                   help=f"The share of the runs whose final trade was {side} (long, short, exit, hold; none: "
                        "no round was decided).")
    total = sum((a.usage for a in result.artifacts), core.Usage())
    cols[2].metric("Cost of the runs", cost_text(total))
    st.caption("The spread over the runs: the final trade's figures over the runs that ended on an entry; "
               "rounds and cost over all of them.")
    st.table(spread_frame(result), hide_index=True)
