"""Rerun the page once the browser has drawn something, so that heavy parts come after it.

A timer started on the server cannot know when a fresh tab has drawn the page: on a loaded
machine the browser may still be loading the table's code when the timer fires, and the
rerun's charts (plotly.js is 4.7 MB to parse) then hold the table up by seconds. This tiny
component asks the browser instead: it reruns the page after the element has been drawn.
"""

from __future__ import annotations

import streamlit as st

_WAIT_AT_MOST_MS = 10_000
"""Rerun anyway after this long, so that what follows always comes (a page with no such element)."""

_JS = """
export default function ({ data, setTriggerValue }) {
    const started = performance.now();
    let gone = false, timer = null;
    const look = () => {
        if (gone) return;
        if (document.querySelector(data.selector) || performance.now() - started > data.wait_ms) {
            // a frame after it is in the document, so that it is on screen before the rerun starts
            requestAnimationFrame(() => { timer = setTimeout(() => gone || setTriggerValue("drawn", true), 0); });
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


def rerun_once_drawn(selector: str, *, key: str) -> None:
    """Rerun the page once the browser shows an element matching the CSS `selector` (or after 10 s).

    The rerun is the browser's doing; a script run without a browser (AppTest) never sees it.
    """
    _component(key=key, data={"selector": selector, "wait_ms": _WAIT_AT_MOST_MS}, height=0,
               on_drawn_change=lambda: None)
