"""Player–Coach Trade Review: the entry point and its navigation (`streamlit run app.py`)."""

import streamlit as st

from ui import session, shell

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
