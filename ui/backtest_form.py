"""The Backtest page's form: what a run will be, shown before it runs.

The dates are two date boxes bounded by the days every chosen symbol has, and they keep the user's
choice when the symbols change while it still fits. A past run's form (Open, Resume) is written
into session state before the widgets are drawn, so the browser shows what Run will do at once.
"""

from __future__ import annotations

from datetime import date

import streamlit as st

from core.backtest.spec import BacktestSpec
from ui import session
from ui.backtest_view import AGENTS, listed
from ui.text import literal

DEFAULT_DAYS = 252  # a new form backtests the last year of the days every chosen symbol has
state = st.session_state


def restore(form: dict) -> None:
    """Put a past run's widget values (backtest_view.restored_form) where the widgets will read them.

    Setting a widget's key before it is drawn makes Streamlit send the value to the browser; a value
    passed only as a widget's default would leave the browser showing the old one."""
    for key, value in form.items():
        state.pop(key, None)
        state[session.KEPT + key] = value


def _fitted(days: list[date], start: date | None, end: date | None) -> tuple[date, date, bool]:
    """(start, end, moved): the user's dates when they fit in `days`' range and hold some of its days;
    clamped to it when they overlap it; else the default, the last DEFAULT_DAYS days."""
    first, last = days[0], days[-1]
    default = days[max(0, len(days) - DEFAULT_DAYS)], last
    if start is None or end is None:
        return *default, False
    if first <= end < start <= last:  # being typed in: the form says the start is after the end
        return start, end, False
    clamped = max(start, first), min(end, last)
    if clamped[0] > clamped[1] or not any(clamped[0] <= d <= clamped[1] for d in days):  # outside, or in a gap
        return *default, True
    return *clamped, clamped != (start, end)


def date_inputs(days: list[date], column, book: list[str]) -> tuple[date, date]:
    """Start and end date boxes in `column`, bounded by `days` (the days all of `book` have)."""
    kept = [state.get(key, state.get(session.KEPT + key)) for key in (session.BT_START, session.BT_END)]
    start, end, moved = _fitted(days, *kept)
    left, right = column.columns(2)
    chosen = {}
    span = "" if len(book) == 1 else f" (the days {', '.join(book)} all have)"
    for col, key, label, value in ((left, session.BT_START, "Start", start), (right, session.BT_END, "End", end)):
        if state.get(key) != value:
            state[key] = value  # through session state: the browser shows it (see restore)
        chosen[key] = state[session.KEPT + key] = col.date_input(
            label, key=key, min_value=days[0], max_value=days[-1], format="YYYY-MM-DD",
            help=f"From {days[0]:%d %b %Y} to {days[-1]:%d %b %Y}{span}; only trading days are run.")
    if moved:
        column.caption(f"Dates moved to fit the days {', '.join(book)} all have.")
    return chosen[session.BT_START], chosen[session.BT_END]


def missing_presets(spec: BacktestSpec, presets: list[str]) -> list[str]:
    """The presets of a past run that the form no longer offers (a custom preset deleted or renamed)."""
    return [p.name for p in spec.presets if p.name not in presets]


def restored_form(spec: BacktestSpec, agent_options: list[str]) -> dict:
    """The widget values that put a past run's spec back on the page, by session key."""
    chosen = [p.name for p in spec.presets]
    agents = AGENTS.get(spec.agents, spec.agents)
    return {
        session.BT_SYMBOL: spec.symbols[0], session.BT_MORE: spec.symbols[1:],
        session.BT_START: spec.start, session.BT_END: spec.end,
        session.BT_PRESET: chosen[0], session.BT_COMPARE: chosen[1] if len(chosen) > 1 else "(none)",
        # agents no longer offered (a key cleared, an agent uninstalled) come back as the house agents
        session.BT_AGENTS: agents if agents in agent_options else agent_options[0],
        session.BT_DEPTH: spec.depth, session.BT_CAPITAL: spec.capital, session.BT_FEE: spec.costs.fee_bps,
        session.BT_SLIPPAGE: spec.costs.slippage_bps, session.BT_HOLD: spec.costs.max_hold_days,
        # its schemas allowed the whole book: natively (the box is not shown) or allowed for that run
        session.BT_ALLOW: not any(spec.forbidden().values()),
    }


def allow_book(spec: BacktestSpec) -> BacktestSpec:
    """Say which symbols of the book each preset forbids (they would never trade), with one click to allow
    them for this run; the spec Run will run."""
    forbidden = {name: symbols for name, symbols in spec.forbidden().items() if symbols}
    if not forbidden:
        return spec
    allowed = session.sticky(st.checkbox, "Allow the book's symbols for this run", key=session.BT_ALLOW, value=False,
                             help="Adds them to each preset's allowed_symbols for this run only, as a sweep does; "
                                  "the presets themselves stay as they are.")
    if allowed:
        st.info(" ".join(f"{listed(symbols)} added to {literal(name)}'s allowed_symbols for this run."
                         for name, symbols in forbidden.items()), icon=":material/playlist_add_check:")
        return spec.book_allowed()
    st.warning(" ".join(f"{listed(symbols)} {'is' if len(symbols) == 1 else 'are'} not in {literal(name)}'s "
                        f"allowed_symbols: {'it' if len(symbols) == 1 else 'they'} will never trade."
                        for name, symbols in forbidden.items()), icon=":material/block:")
    return spec
