"""Rerun the page once the browser has drawn something, so that heavy parts come after it; and have the
browser load the code of an element before the run that first draws one.

A timer started on the server cannot know when a fresh tab has drawn the page: on a loaded
machine the browser may still be loading the table's code when the timer fires, and the
rerun's charts (plotly.js is 4.7 MB to parse) then hold the table up by seconds. This tiny
component asks the browser instead: it reruns the page after the element has been drawn.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import streamlit as st

_WAIT_AT_MOST_MS = 10_000
"""Rerun anyway after this long, so that what follows always comes (a page with no such element)."""

_JS = """
export default function ({ data, setTriggerValue }) {
    // Code to load (load_code, then_load), from the address of the frontend's own import of it: loaded and run once.
    const load = () => { for (const path of data.paths) import(new URL(path, document.baseURI).href).catch(() => {}); };
    if (!data.selector) { load(); return; }
    const started = performance.now();
    let gone = false, timer = null;
    const drawn = () => {
        if (gone) return;
        load();
        setTriggerValue("drawn", true);
    };
    const look = () => {
        if (gone) return;
        if (document.querySelector(data.selector) || performance.now() - started > data.wait_ms) {
            // a frame after it is in the document, so that it is on screen before the rerun starts
            requestAnimationFrame(() => { timer = setTimeout(drawn, 0); });
        } else {
            timer = setTimeout(look, 50);
        }
    };
    look();
    // Unmounted (another run came first and drew what follows): no late rerun, say in a replay.
    return () => { gone = true; clearTimeout(timer); };
}
"""

_component = st.components.v2.component("player_coach.after_paint", js=_JS)


def rerun_once_drawn(selector: str, *, key: str, then_load: tuple[str, ...] = ()) -> None:
    """Rerun the page once the browser shows an element matching the CSS `selector` (or after 10 s), and have it
    load the code of the kinds of element `then_load` names (see load_code) at the same moment, while the rerun runs.

    The rerun is the browser's doing; a script run without a browser (AppTest) never sees it.
    """
    _component(key=key, data={"paths": _code_paths(then_load), "selector": selector, "wait_ms": _WAIT_AT_MOST_MS},
               height=0, on_drawn_change=lambda: None)


_STATIC_JS = Path(st.__file__).parent / "static" / "static" / "js"
"""Where Streamlit's frontend keeps the code of each kind of element, a file per kind (Metric.<hash>.js)."""


def load_code(kinds: tuple[str, ...], *, key: str) -> None:
    """Have the browser load the code of these kinds of Streamlit element (its names: "Metric") now, so that the
    run that first draws one shows it without waiting for that code. A kind this Streamlit has no file for is
    left to load when drawn, as before."""
    # this component's own code comes with it, so the run that first draws rerun_once_drawn waits for none either
    _component(key=key, data={"paths": _code_paths(kinds)}, height=0)


@cache
def _code_paths(kinds: tuple[str, ...]) -> tuple[str, ...]:
    """The frontend's files of these kinds, looked up once per process (app.py asks on every run; ~2 ms of globs).

    A tuple, not a list: Streamlit asks whether a list in a component's data is a data frame, which imports pandas
    (0.7 s), and app.py sends this before anything else imports pandas."""
    return tuple(f"static/js/{found[0].name}" for kind in kinds if (found := sorted(_STATIC_JS.glob(f"{kind}.*.js"))))
