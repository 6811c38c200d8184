"""History: every stored exchange, filtered, summarised, inspected and replayed without any agent call."""

import json
import math

import pandas as pd
import streamlit as st

from ui import shell

shell.require_app()

import core  # noqa: E402
from ui import charts, exchange_view, session  # noqa: E402
from ui.session import sticky  # noqa: E402

PAGE_SIZE = 20
state = st.session_state
store = session.store()

st.title("History")

# -- filters --------------------------------------------------------------------------------
row = st.columns([2, 2, 2, 3, 3])
# sticky(): the filters are still set after a visit to another page (a kept value a new database
# lacks is dropped first, so the multiselects never hold an unknown option).
symbols, strategies = store.symbols(), store.strategies()
for key, known in ((session.H_SYMBOL, symbols), (session.H_STRATEGY, strategies)):
    if session.KEPT + key in state:
        state[session.KEPT + key] = [v for v in state[session.KEPT + key] if v in known]
outcome = sticky(row[0].multiselect, "Outcome", key=session.H_OUTCOME, options=list(core.OUTCOMES))
symbol = sticky(row[1].multiselect, "Symbol", key=session.H_SYMBOL, options=symbols)
strategy = sticky(row[2].multiselect, "Strategy", key=session.H_STRATEGY, options=strategies)
dates = sticky(row[3].date_input, "Dates", key=session.H_DATES, value=(), help="A day or a range (UTC).")
text = sticky(row[4].text_input, "Search reasoning and critiques", key=session.H_TEXT, placeholder="e.g. risk_reward")
since = dates[0] if len(dates) > 0 else None
until = dates[1] if len(dates) > 1 else since
filters = {"outcome": outcome, "symbol": symbol, "strategy": strategy, "since": since, "until": until,
           "text": text.strip() or None}

# -- summary and charts -----------------------------------------------------------------------
summary = store.summary(**filters)
figures = st.columns(5)
figures[0].metric("Exchanges", f"{summary['count']:,}")
figures[1].metric("Approval rate", f"{summary['approval_rate']:.0%}")
figures[2].metric("Mean rounds", f"{summary['mean_rounds']:.2f}")
figures[3].metric("Tokens", f"{summary['tokens']:,}")
figures[4].metric("Cost", f"${summary['cost_usd']:.4f}")

if summary["count"] == 0:
    st.info("No exchanges match. Run one on Trade Review, or widen the filters.", icon=":material/info:")
    st.stop()

newest = tuple((r["run_id"], r["outcome"], r["rounds_taken"]) for r in store.list_exchanges(**filters, limit=5))
over_time, violations = charts.history_figures(store, str(store.path), filters, (tuple(summary.values()), newest))
left, right = st.columns(2)
left.plotly_chart(over_time, width="stretch")
if violations:
    right.plotly_chart(violations, width="stretch")
else:
    right.caption("No violations in these exchanges.")

# -- the table, a page at a time ------------------------------------------------------------------
pages = max(1, math.ceil(summary["count"] / PAGE_SIZE))
head = st.columns([3, 1, 1], vertical_alignment="bottom")
head[0].subheader(f"Exchanges ({summary['count']:,}, newest first)")
number = head[1].number_input("Page", min_value=1, max_value=pages, value=1, key=session.H_PAGE)
head[2].download_button("Export CSV", lambda: pd.DataFrame(store.list_exchanges(**filters, limit=None)).to_csv(index=False),
                        file_name="exchanges.csv", mime="text/csv", icon=":material/download:", on_click="ignore",
                        help="Every exchange that matches the filters (built when you click).")
rows = store.list_exchanges(**filters, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
table = pd.DataFrame(rows)[["timestamp", "outcome", "symbol", "strategy_id", "rounds_taken", "total_tokens",
                            "cost_usd", "violations", "termination_reason", "player", "run_id"]]
table["timestamp"] = pd.to_datetime(table["timestamp"], utc=True, format="ISO8601").dt.strftime("%Y-%m-%d %H:%M:%S")


def picked_row() -> None:
    selected = state[session.H_TABLE]["selection"]["rows"]
    if selected:
        state[session.HISTORY_SELECTED] = rows[selected[0]]["run_id"]


st.dataframe(table, hide_index=True, width="stretch", on_select=picked_row, selection_mode="single-row",
             key=session.H_TABLE, column_config={
                 "timestamp": "time (UTC)", "strategy_id": "strategy", "rounds_taken": "rounds", "total_tokens": "tokens",
                 "cost_usd": st.column_config.NumberColumn("cost $", format="%.4f"),
                 "termination_reason": "reason", "run_id": st.column_config.TextColumn("run id", width="small")})

# -- one exchange ----------------------------------------------------------------------------------
labels = {r["run_id"]: f"{r['timestamp'][:19].replace('T', ' ')} · {r['symbol']} · {r['outcome']} · {r['run_id'][:8]}"
          for r in rows}
chosen = state.get(session.HISTORY_SELECTED)
if chosen and chosen not in labels:
    found = store.get_exchange(chosen)
    if found:
        labels = {chosen: f"{found['timestamp'][:19].replace('T', ' ')} · {found['symbol']} · {found['outcome']} · "
                          f"{chosen[:8]}", **labels}
state[session.H_PICK] = chosen if chosen in labels else next(iter(labels))


def picked_box() -> None:
    state[session.HISTORY_SELECTED] = state[session.H_PICK]


st.divider()
pick = st.columns([3, 2, 1, 1.3], vertical_alignment="bottom")
run_id = pick[0].selectbox("Exchange", list(labels), format_func=labels.get, key=session.H_PICK, on_change=picked_box,
                           help="Or click a row in the table.")
speed = sticky(pick[1].select_slider, "Replay speed", key=session.H_SPEED, options=list(session.SPEEDS), value="Normal")
replay = pick[2].button("Replay", type="primary", icon=":material/replay:")
artifact = store.get_exchange(run_id)
pick[3].download_button("Export JSON", json.dumps(artifact, indent=2), file_name=f"exchange-{run_id}.json",
                        mime="application/json", icon=":material/download:")

if replay:
    exchange_view.play(core.replay_exchange(artifact), exchange_view.ExchangeView(session.SPEEDS[speed], key="replay"))
else:
    exchange_view.show(artifact, key="history")
