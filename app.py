"""Player–Coach Trade Review: the entry point and its navigation (`streamlit run app.py`)."""

import streamlit as st

from ui import session, shell

st.set_page_config(page_title="Player–Coach Trade Review", page_icon="⚖️", layout="wide")
session.init()

PAGES = [
    st.Page("pages/trade_review.py", title="Trade Review", icon="⚖️", default=True),
    st.Page("pages/constraints.py", title="Constraints", icon="📏"),
    st.Page("pages/history.py", title="History", icon="🗂️"),
    st.Page("pages/backtest.py", title="Backtest", icon="📈"),
    st.Page("pages/settings.py", title="Settings", icon="🔑"),
]

with shell.app_running():
    st.navigation(PAGES).run()
