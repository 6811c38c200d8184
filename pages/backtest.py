"""Backtest: replay the loop over trading days (the backtest issue replaces this placeholder)."""

import streamlit as st

from ui import shell

shell.require_app()

st.title("Backtest")
st.info("**Coming soon.** The Backtest page is not built yet: it will replay the Player–Coach loop over the "
        "days of the market snapshot and compare two presets. Nothing on this page runs a backtest today.",
        icon=":material/construction:")
