"""Settings: bring your own Anthropic key (session only), the model, the spend guard, the database."""

import os

import streamlit as st

from ui import shell

shell.require_app()

from ui import pruning, session  # noqa: E402
from ui.exchange_view import literal  # noqa: E402

state = st.session_state
store = session.store()


def validate() -> None:
    key = (state.get(session.S_KEY_INPUT) or "").strip()
    state[session.S_KEY_INPUT] = ""  # the field empties; the key lives only in API_KEY once valid
    if not key:
        state[session.KEY_STATUS] = ("error", "Enter a key first.")
        return
    try:
        from core import claude
    except ImportError:
        state[session.KEY_STATUS] = ("error", "The Claude agents are not installed in this build.")
        return
    ok, message = claude.validate_key(key, model=state[session.MODEL],
                                      base_url=os.environ.get("ANTHROPIC_BASE_URL") or None)
    message = str(message).replace(key, "[key]")  # belt and braces: a key never reaches the screen
    if ok:
        state[session.API_KEY] = key
        state.pop(session.SPEND_GUARD, None)
        state[session.KEY_STATUS] = ("success", f"Key is valid: {message}")
    else:
        state[session.KEY_STATUS] = ("error", f"Key refused: {message}")


def clear() -> None:
    for key in (session.API_KEY, session.SPEND_GUARD, session.S_KEY_INPUT):
        state.pop(key, None)
    state[session.KEY_STATUS] = ("success", "Key cleared: the house agents play from now on.")


def guard_changed() -> None:
    state[session.CALLS_PER_HOUR] = state[session.S_CALLS]
    state[session.DOLLARS_PER_SESSION] = state[session.S_DOLLARS]
    guard = state.get(session.SPEND_GUARD)
    if guard is not None:
        # Keep what was spent; only the limits change.
        for name, value in (("calls_per_hour", state[session.CALLS_PER_HOUR]),
                            ("dollars_per_session", state[session.DOLLARS_PER_SESSION])):
            if hasattr(guard, name):
                setattr(guard, name, value)


st.title("Settings")

st.subheader("Anthropic API key")
st.info("Your key is kept **only in this browser session's memory** (Streamlit session state). It is never "
        "written to a file, the database, a log, the URL or an error message, and it is gone when you close the "
        "tab or click Clear.", icon=":material/lock:")
if session.has_key():
    st.success("A key is set for this session: Claude plays both roles on Trade Review.", icon=":material/key:")
else:
    st.caption("No key set: the built-in house agents play (offline, free, deterministic).")
st.text_input("API key", type="password", key=session.S_KEY_INPUT, placeholder="sk-ant-…", autocomplete="off")
buttons = st.columns([1, 1, 4])
buttons[0].button("Validate", on_click=validate, type="primary", icon=":material/verified:")
buttons[1].button("Clear key", on_click=clear, disabled=not session.has_key(), icon=":material/delete:")
status = state.get(session.KEY_STATUS)
if status:
    kind, text = status
    (st.success if kind == "success" else st.error)(literal(text))

st.subheader("Model")
models = list(session.MODELS)
if state[session.MODEL] not in models:
    models.insert(0, state[session.MODEL])
state[session.MODEL] = st.selectbox("Claude model for the Player and the Coach", models,
                                    index=models.index(state[session.MODEL]), key=session.S_MODEL)
state[session.INDEPENDENT] = st.toggle(
    "Independent Coach", value=state[session.INDEPENDENT], key=session.S_INDEPENDENT,
    help="The Claude Coach judges each proposal without seeing the rules' checks and writes its own critique. "
         "The verdict still comes from the rules; the Coach's own verdict is stored beside it and every "
         "disagreement is flagged in the round card and the artifact.")

st.subheader("Spend guard")
st.caption("Paid calls stop (the exchange ends ABORT, reason spend_guard) once either limit is reached.")
state[session.S_CALLS] = state[session.CALLS_PER_HOUR]
state[session.S_DOLLARS] = state[session.DOLLARS_PER_SESSION]
limits = st.columns(2)
limits[0].number_input("Calls per hour", min_value=1, max_value=10_000, step=10, key=session.S_CALLS,
                       on_change=guard_changed)
limits[1].number_input("Dollars per session", min_value=0.01, max_value=1000.0, step=0.5, format="%.2f",
                       key=session.S_DOLLARS, on_change=guard_changed)
guard = state.get(session.SPEND_GUARD)
if guard is not None:
    st.caption(f"This session so far: ${guard.spent_usd:.4f} spent, {guard.calls_last_hour()} calls in the last hour.")

st.subheader("Data")
st.markdown(f"Exchanges, rounds, coach memory and custom presets live in one SQLite file:\n\n`{store.path}`")
st.caption(f"Size: {store.size_bytes() / 1024:,.1f} KiB · set PLAYER_COACH_DB to use another file.")
# Built only on a click: the file may hold gigabytes, and serialize() is a consistent copy, WAL included.
st.download_button("Download the database", store.db.conn.serialize, file_name=store.path.name,
                   mime="application/vnd.sqlite3", icon=":material/download:", on_click="ignore")
pruning.section(store)
