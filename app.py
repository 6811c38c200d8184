"""Player–Coach Trade Review: the entry point and its navigation (`streamlit run app.py`)."""

import gc
import sys
from pathlib import Path

import streamlit as st

from ui import after_paint

st.set_page_config(page_title="Player–Coach Trade Review", layout="wide")

# The process's first run imports core, pandas and sqlite-utils and reads the market data (1-2 s) before it draws the
# sidebar; only then did the browser start loading each kind of widget's code, a kind at a time (0.3-1 s more, after
# the run). Asked for here, before those imports, that code loads while the server works. The element draws nothing
# and is hidden by a style, whose own element's code the browser loads first: mounted only in the session that pays
# the imports (and on its every run, so that it never leaves), the style is in place long before the page comes. In
# a later tab, whose run imports nothing, the style could come a few frames after the element, and its 16-px gap
# would push the page down and back up; that tab's run is short, and the element would buy it little.
# Its key is named here, not in ui.session: importing that imports core, which this must come before (and a page file
# run on its own, a fresh process's first URL, imports none of core before it runs this: ui.shell).
# The kinds are those the first paint of Trade Review and of Backtest draw: on Backtest, a kind whose code came after the
# run (its With box, radios, number boxes) stood as a 40-px placeholder, then grew and moved the Past runs box down.
# (rehype-raw is not an element but what the characters' HTML is parsed with.)
FIRST_PAINT_CODE = "first_paint_code"
if st.session_state.setdefault(f"{FIRST_PAINT_CODE}_mounted", "core" not in sys.modules):
    st.html(f"<style>.st-key-{FIRST_PAINT_CODE} {{display: none}}</style>")
    after_paint.load_code(("Selectbox", "Multiselect", "Radio", "DateInput", "TimeInput", "NumberInput", "TextInput",
                           "PageLink", "Slider", "Button", "rehype-raw"), key=FIRST_PAINT_CODE)

from ui import session, shell  # noqa: E402

# The tab's icon, a file: Streamlit checks an emoji against its whole emoji list (~0.1 s to load), and the browser fetches
# a Material icon from Google's fonts (none offline). A file is read as an image, which imports numpy (imported by now,
# with core) and PIL (~0.03 s).
st.set_page_config(page_icon=Path(__file__).parent / "static" / "scales.svg")

session.init()
session.note_cut_short()

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

if not gc.get_freeze_count():
    # Streamlit collects every generation after each run, a fragment's too (runner.postScriptGC): 0.1-0.3 s spent
    # walking the ~130,000 objects that importing streamlit, core, pandas and plotly made, which live as long as the
    # process. Frozen once, a collection walks only what the runs made since. Frozen here, at the end of the first run
    # (a cheap call), not before its page: that page is drawn without waiting for a collection (0.2 s), and Streamlit's
    # collection after the run walks none of it (a full one held the interpreter 0.15 s while the run's last messages
    # waited to go out). The run's few unreachable objects are frozen with the rest: ~600, about 0.1 MB, once.
    gc.freeze()
