"""History: every stored exchange, filtered, summarised, inspected and replayed without any agent call.

The summary figures and the table paint first; the picked exchange and the charts follow (the
charts, on a session's first visit, once the browser has drawn the table, so plotly.js never holds it up).
"""

import dataclasses
import json
import math

import streamlit as st

from ui import shell

shell.require_app()

import core  # noqa: E402
from core.journal.history import HistoryFilter  # noqa: E402
from ui import after_paint, charts, exchange_view, history_view, repeat_view, session  # noqa: E402
from ui.session import sticky  # noqa: E402
from ui.text import literal  # noqa: E402

PAGE_SIZE = 20
state = st.session_state
store = session.store()

st.title("History")

# -- filters --------------------------------------------------------------------------------
# Two rows, so that a chip such as REJECT-MAX is never cut to "R…" (issue 20).
row = st.columns([3, 2, 2, 2, 3])
# sticky(): the filters are still set after a visit to another page (a kept value a new database
# lacks is dropped first, so the multiselects never hold an unknown option).
symbols, strategies, players = store.symbols(), store.strategies(), store.players()
for key, known in ((session.H_SYMBOL, symbols), (session.H_STRATEGY, strategies), (session.H_PLAYER, players)):
    if session.KEPT + key in state:
        state[session.KEPT + key] = [v for v in state[session.KEPT + key] if v in known]
outcome = sticky(row[0].multiselect, "Outcome", key=session.H_OUTCOME, options=list(core.OUTCOMES))
symbol = sticky(row[1].multiselect, "Symbol", key=session.H_SYMBOL, options=symbols)
strategy = sticky(row[2].multiselect, "Strategy", key=session.H_STRATEGY, options=strategies)
player = sticky(row[3].multiselect, "Player", key=session.H_PLAYER, options=players,
                help="Who played the Player: house-player, claude-player, an agent of your own, or external: <client> "
                     "for one that played over MCP.")
text = sticky(row[4].text_input, "Search reasoning and critiques", key=session.H_TEXT, placeholder="e.g. risk_reward")
row = st.columns([2, 2, 3, 3], vertical_alignment="bottom")
# Two boxes, not one range: typing the first date and pressing Tab moves on to the second.
since = sticky(row[0].date_input, "From", key=session.H_SINCE, value=None, min_value=history_view.EARLIEST,
               max_value=history_view.LATEST, help="The first day, included (empty: from the first exchange).")
until = sticky(row[1].date_input, "To", key=session.H_UNTIL, value=None, min_value=history_view.EARLIEST,
               max_value=history_view.LATEST, help="The last day, included (empty: up to the newest).")
dates_by = sticky(row[2].radio, "Dates are", key=session.H_DATES_BY, options=list(history_view.DATES_BY),
                  format_func=history_view.DATES_BY.get, horizontal=True,
                  help="Filter and order by the market day the exchange decided on, or by when it was run.")
# A label that fits its column at 1,400 px (the longer one was cut to "Only exchanges whose reasoning mi…").
unfaithful = sticky(row[3].checkbox, "Only misstated reasoning", key=session.H_UNFAITHFUL,
                    help="Only the exchanges whose reasoning misstated its own trade: a round whose reasoning states "
                         "a number or side its actions do not have (the reasoning column below 1).")
if since and until and until < since:
    st.warning(f"To ({until:%d %b %Y}) is before From ({since:%d %b %Y}): no day is in between.", icon=":material/event_busy:")
matching = HistoryFilter(outcome=outcome, symbol=symbol, strategy=strategy, since=since, until=until,
                         text=text.strip() or None, dates_by=dates_by, unfaithful=unfaithful, player=player)
one_row_a_group = dataclasses.replace(matching, one_per_group=True)  # a group of Run k times is one row

# -- summary --------------------------------------------------------------------------------
summary = store.summary(matching)
with st.container(horizontal=True):  # side by side, wrapping two or three to a row on a phone
    st.metric("Exchanges", f"{summary['count']:,}")
    st.metric("Approval rate", f"{summary['approval_rate']:.0%}")
    st.metric("Mean rounds", f"{summary['mean_rounds']:.2f}")
    st.metric("Tokens", f"{summary['tokens']:,}")
    st.metric("Cost", f"${summary['cost_usd']:,.4f}")

if summary["count"] == 0:
    st.info("No exchanges match. Run one on Trade Review, or widen the filters.", icon=":material/info:")
    st.stop()


# -- the table, a page at a time, and the picked exchange (a fragment: paging and picking rerun only this) --
@st.fragment
def exchanges() -> None:
    rows_count = store.count_exchanges(one_row_a_group)
    pages = max(1, math.ceil(rows_count / PAGE_SIZE))
    head = st.columns([3, 1, 1], vertical_alignment="bottom")
    order = "market day" if dates_by == "market" else "run time"
    head[0].subheader(f"Exchanges ({summary['count']:,}, newest {order} first)")
    number = head[1].number_input("Page", min_value=1, max_value=pages, value=1, key=session.H_PAGE)
    head[2].download_button(
        "Export CSV", lambda: history_view.csv(store.list_exchanges(matching, limit=None)),
        file_name=history_view.csv_name(matching), mime="text/csv", icon=":material/download:", on_click="ignore",
        help="Every exchange that matches the filters, with the table's columns (built when you click).")
    rows = store.list_exchanges(one_row_a_group, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
    groups = {r["repeat_id"]: [g["outcome"] for g in store.list_exchanges(repeat_id=r["repeat_id"], limit=None)]
              for r in rows if r["repeat_id"]}
    labels = {r["run_id"]: history_view.label(r) for r in rows}

    def picked_row() -> None:
        selected = state[session.H_TABLE]["selection"]["rows"]
        if selected:
            state[session.HISTORY_SELECTED] = rows[selected[0]]["run_id"]

    st.dataframe(history_view.table(rows, groups), hide_index=True, width="stretch", on_select=picked_row,
                 selection_mode="single-row", key=session.H_TABLE, column_config=history_view.COLUMNS)
    picked(labels)


def picked(labels: dict[str, str]) -> None:
    """The picked exchange: its rounds, a replay at a chosen speed, its artifact. Nothing until one is picked."""
    chosen = state.get(session.HISTORY_SELECTED)
    try:
        artifact = store.get_exchange(chosen) if chosen else None
    except core.StoreError as error:  # a damaged exchange: named, and the others still read
        st.error(literal(error), icon=":material/database:")
        artifact = None
    if artifact and chosen not in labels:
        labels = {chosen: history_view.label({"market_time": artifact.world_state.as_of.isoformat(), "symbol": artifact.symbol,
                                                  "outcome": artifact.outcome, "run_id": artifact.run_id}), **labels}
    state[session.H_PICK] = chosen if artifact else None

    def picked_box() -> None:
        state[session.HISTORY_SELECTED] = state[session.H_PICK]

    st.divider()
    pick = st.columns([3, 2, 1, 1.3], vertical_alignment="bottom")
    pick[0].selectbox("Exchange", list(labels), format_func=labels.get, key=session.H_PICK, on_change=picked_box,
                      index=None, placeholder="Pick a row in the table, or here", help="Its rounds show below.")
    if artifact is None:
        return
    if artifact.repeat_id:  # one of a group: the group's figures, and any of its exchanges one pick away
        group = repeat_view.group_of(store, artifact.repeat_id)
        repeat_view.show(core.Repeatability(artifact.repeat_id, tuple(group)))
        by_id = {a.run_id: a for a in group}
        ids = list(by_id)
        opened = st.selectbox("Exchange of the group", ids, index=ids.index(chosen) if chosen in ids else 0,
                              format_func=lambda run_id: f"{ids.index(run_id) + 1} · {by_id[run_id].outcome} · {run_id[:8]}",
                              key=session.H_GROUP_PICK)
        artifact = by_id[opened]
    speed = sticky(pick[1].select_slider, "Replay speed", key=session.H_SPEED, options=list(session.SPEEDS),
                   value="Normal")
    replay = pick[2].button("Replay", type="primary", icon=":material/replay:")
    pick[3].download_button("Export JSON", json.dumps(artifact.model_dump(mode="json"), indent=2),
                            file_name=exchange_view.artifact_name(artifact), mime="application/json",
                            icon=":material/download:")
    if replay:
        exchange_view.play(core.replay_exchange(artifact), exchange_view.ExchangeView(session.SPEEDS[speed], key="replay"))
    else:
        exchange_view.show(artifact, key="history")


exchanges()

# -- charts: after the table ---------------------------------------------------------------------
@st.fragment
def history_charts(matching: HistoryFilter, summary: dict) -> None:
    """A session's first visit: the charts come on a rerun of this fragment alone, which the browser
    asks for once the table is on screen (a timer could fire while a fresh tab still loads the
    table's code); it loads plotly's code then too, while the rerun runs, not after the charts came.
    Every later run draws them at once."""
    if state.get(session.HISTORY_CHARTS) is None:
        state[session.HISTORY_CHARTS] = "waiting"
        st.caption("The charts follow…")
        after_paint.rerun_once_drawn('[data-testid="stDataFrame"] canvas', key=session.H_CHARTS_CUE,
                                     then_load=("PlotlyChart",))
        return
    state[session.HISTORY_CHARTS] = "drawn"
    newest = tuple((r["run_id"], r["outcome"], r["rounds_taken"]) for r in store.list_exchanges(matching, limit=5))
    over_time, violations = charts.history_figures(store, str(store.path), matching, (tuple(summary.values()), newest))
    left, right = st.columns(2)
    left.plotly_chart(over_time, width="stretch", config=charts.CONFIG)
    if violations:
        right.plotly_chart(violations, width="stretch", config=charts.CONFIG)
    else:
        right.caption("No violations in these exchanges.")


st.divider()
history_charts(matching, summary)
