import streamlit as st

from ui import shell

shell.require_app()

st.title("settings")
