"""Settings' "Delete old exchanges": how many would go, a confirmation, then the deletion and VACUUM."""

from __future__ import annotations

from datetime import datetime, timedelta

import streamlit as st

import core
from ui import session

SCOPES = {"older": "Older than N days", "all": "All exchanges"}


def _before(scope: str, days: int) -> datetime | None:
    return None if scope == "all" else session.now() - timedelta(days=days)


def section(store: core.Store) -> None:
    """Choose what to delete, see how many exchanges that is, confirm, delete."""
    state = st.session_state

    def forget() -> None:  # another choice: the confirmation asked about the old one
        state.pop(session.PRUNE_PENDING, None)
        state.pop(session.PRUNE_DONE, None)

    st.markdown("**Delete old exchanges**")
    row = st.columns([2, 1, 2], vertical_alignment="bottom")
    scope = row[0].radio("Delete", list(SCOPES), format_func=SCOPES.get, key=session.S_PRUNE_SCOPE, horizontal=True,
                         on_change=forget)
    days = row[1].number_input("Days", min_value=1, max_value=36_500, value=90, step=30, key=session.S_PRUNE_DAYS,
                               disabled=scope == "all", help="Exchanges run more than this many days ago.",
                               on_change=forget)
    before = _before(scope, int(days))
    count, total = store.count_older(before), store.count_exchanges()
    when = "in the database" if before is None else f"run before {before:%Y-%m-%d %H:%M} UTC"

    def ask() -> None:
        forget()
        state[session.PRUNE_PENDING] = (None if before is None else before.isoformat(), count)

    row[2].button(f"Delete {count:,} exchanges…", disabled=count == 0, icon=":material/delete_sweep:", on_click=ask)
    st.caption(f"{count:,} of {total:,} exchanges {when}; their rounds, coach memory and portfolio snapshots go "
               "with them, and the file is compacted (VACUUM). Backtest results stay. A backtest's exchanges are "
               "dated on the day they simulate.")
    pending = state.get(session.PRUNE_PENDING)
    if pending:
        _confirm(store, *pending)
    done = state.get(session.PRUNE_DONE)
    if done:
        st.success(done, icon=":material/check_circle:")


def _confirm(store: core.Store, before: str | None, count: int) -> None:
    state = st.session_state
    what = "every exchange" if before is None else f"the {count:,} exchanges run before {before[:16].replace('T', ' ')} UTC"
    st.warning(f"Delete {what} for good? This cannot be undone; download the database first to keep a copy.",
               icon=":material/warning:")

    def delete() -> None:
        size = store.size_bytes()
        deleted = store.prune(None if before is None else datetime.fromisoformat(before))
        state.pop(session.PRUNE_PENDING, None)
        state[session.PRUNE_DONE] = (f"Deleted {deleted:,} exchanges; the database went from {size / 1e6:,.1f} MB "
                                     f"to {store.size_bytes() / 1e6:,.1f} MB.")

    buttons = st.columns([1, 1, 3])
    buttons[0].button(f"Yes, delete {count:,}", type="primary", on_click=delete, icon=":material/delete_forever:")
    buttons[1].button("Cancel", on_click=lambda: state.pop(session.PRUNE_PENDING, None))
