"""Keeps app.py's navigation in charge of every page, whichever way Streamlit starts a run.

Because the page files live in a folder named `pages/`, Streamlit 1.67 sometimes runs a page
file on its own, without app.py: AppTest does it on every run after the first, and the server
does it when a fresh process is first asked for a page's URL (its legacy pages-directory
mode). Each page file starts with `require_app()`: run inside app.py's `st.navigation` it
returns at once; run on its own it runs app.py (which opens the same page through
st.navigation, page config and sidebar included) and ends the outer run.
"""

from __future__ import annotations

import runpy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from ui.text import literal

APP = Path(__file__).resolve().parent.parent / "app.py"

_run = threading.local()  # Streamlit runs each session's script in its own thread


@contextmanager
def app_running() -> Iterator[None]:
    """Mark this thread as inside app.py's navigation while the page runs.

    A database that fails part-way (a corrupt page, a file made read-only) stops the page with its
    reason in words, never a traceback.
    """
    # core is imported by now (app.py's ui.session); not when this module is: a page file run on its own imports this
    # module before it runs app.py, which must see a process that has not imported core yet (see FIRST_PAINT_CODE)
    from core import StoreError

    _run.inside_app = True
    try:
        yield
    except StoreError as error:
        st.error(f"{literal(error)}. Set PLAYER_COACH_DB to another file, or move this one aside.",
                 icon=":material/database:")
    finally:
        _run.inside_app = False


def require_app() -> None:
    """Make sure app.py's navigation runs this page (see the module docstring)."""
    if getattr(_run, "inside_app", False):
        return
    runpy.run_path(str(APP), run_name="__main__")
    st.stop()
