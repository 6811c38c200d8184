"""Streamlit pieces shared by the pages: the shell, session keys, the exchange view, charts."""
