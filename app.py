"""Player–Coach Trade Review: the entry point and its navigation (`streamlit run app.py`)."""

import gc

import streamlit as st

from ui import session, shell

if not gc.get_freeze_count():
    # Streamlit collects every generation after each run, a fragment's too (runner.postScriptGC): 0.1-0.3 s spent
    # walking the ~130,000 objects that importing streamlit, core, pandas and plotly made, which live as long as the
    # process. Frozen once, after the first run's imports, a collection walks only what the runs made since.
    gc.collect()
    gc.freeze()

st.set_page_config(page_title="Player–Coach Trade Review", page_icon="⚖️", layout="wide")
session.init()

PAGES = [
    st.Page("pages/trade_review.py", title="Trade Review", icon=":material/balance:", default=True),
    st.Page("pages/constraints.py", title="Constraints", icon=":material/tune:"),
    st.Page("pages/history.py", title="History", icon=":material/history:"),
    st.Page("pages/backtest.py", title="Backtest", icon=":material/query_stats:"),
    st.Page("pages/settings.py", title="Settings", icon=":material/key:"),
]

st.sidebar.caption(
    "Agents: **house** (no API key set)" if not session.has_key() else "Agents: **Claude** (key set for this session)"
    if session.key_verified() else "Agents: **Claude**, key **not verified** (the house agents: Agents, on Trade Review)"
)

with shell.app_running():
    st.navigation(PAGES).run()
