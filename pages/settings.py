"""Settings: bring your own Anthropic key (session only), the model, the spend guard, the database, About."""

import streamlit as st

from ui import shell

shell.require_app()

import core  # noqa: E402
from core import about, prices
from core.claude import prompts  # noqa: E402
from ui import pruning, session  # noqa: E402
from ui.text import literal  # noqa: E402

state = st.session_state
store = session.store()


def validate() -> None:
    key = (state.get(session.S_KEY_INPUT) or "").strip()
    if not key:
        state[session.KEY_STATUS] = ("error", "Enter a key first.")
        return
    try:
        from core.claude import models as claude
    except ImportError:
        state[session.KEY_STATUS] = ("error", "The Claude agents are not installed in this build.")
        return
    check = claude.validate_key(key, model=state[session.MODEL], base_url=session.base_url(), today=session.today())
    message = str(check.message).replace(key, "[key]")  # belt and braces: a key never reaches the screen
    if check.keep:
        state[session.API_KEY] = key
        state[session.KEY_VERIFIED] = check.status != "unchecked"  # the API answered for it (a refused model too)
    if check.models:
        state[session.MODEL_LIST] = check.models
        state.pop(session.MODEL_LIST_NOTE, None)
    if check.ok:
        state[session.S_KEY_INPUT] = ""  # the field empties; the key lives only in API_KEY once valid
        state[session.KEY_STATUS] = ("success", f"Key is valid: {message}")
    elif check.status == "invalid":
        if message.startswith("The key was rejected"):
            state[session.S_KEY_INPUT] = ""  # only a 401 discards what was typed
        state[session.KEY_STATUS] = ("error", f"Key refused: {message}" if "401" in message else message)
    else:  # could not check now, or the model is refused: the key stays, and so does the field
        state[session.KEY_STATUS] = ("warning", message)


def clear() -> None:
    for key in (session.API_KEY, session.KEY_VERIFIED, session.S_KEY_INPUT, session.MODEL_LIST, session.MODEL_LIST_NOTE):
        state.pop(key, None)
    state[session.KEY_STATUS] = ("success", "Key cleared: the house agents play from now on.")


def guard_changed() -> None:
    state[session.CALLS_PER_HOUR] = state[session.S_CALLS]
    state[session.DOLLARS_PER_SESSION] = state[session.S_DOLLARS]
    guard = session.spend_guard()  # keep what was spent; only the limits change
    guard.calls_per_hour = state[session.CALLS_PER_HOUR]
    guard.dollars_per_session = state[session.DOLLARS_PER_SESSION]


def base_url_changed() -> None:
    state[session.BASE_URL] = (state[session.S_BASE_URL] or "").strip() or None
    for stale in (session.MODEL_LIST, session.MODEL_LIST_NOTE):  # another server may offer other models
        state.pop(stale, None)


def offered_models() -> tuple[list[prices.ModelInfo], str | None]:
    """The models to offer, newest first, and a note when they are the built-in list."""
    listed = state.get(session.MODEL_LIST)
    if listed:
        return listed, None
    if session.has_key() and session.MODEL_LIST_NOTE not in state:
        from core.claude import models as claude

        try:
            state[session.MODEL_LIST] = claude.list_models(state[session.API_KEY], base_url=session.base_url(), today=session.today())
            return state[session.MODEL_LIST], None
        except claude.AgentError as failure:
            state[session.MODEL_LIST_NOTE] = f"Could not list the models for this key ({failure})."
    note = state.get(session.MODEL_LIST_NOTE, "Validate a key to see the models it may use.")
    return prices.builtin_models(session.today()), f"{note} Showing the built-in list instead."


st.title("Settings")

st.subheader("Anthropic API key")
st.info("Your key is kept **only in this browser session's memory** (Streamlit session state). It is never "
        "written to a file, the database, a log, the URL or an error message, and it is gone when you close the "
        "tab or click Clear.", icon=":material/lock:")
if session.key_verified():
    st.success("A key is set for this session: Claude plays both roles on Trade Review.", icon=":material/key:")
elif session.has_key():  # kept, but never seen working: amber, and the house agents one click away
    st.warning("A key is kept for this session but **not verified**: the Anthropic API could not be asked. "
               "Trade Review offers Claude marked *key not verified*, with the house agents one click away; "
               "Validate again once you are online.", icon=":material/key_off:")
else:
    st.caption("No key set: the built-in house agents play (offline, free, deterministic).")
st.text_input("API key", type="password", key=session.S_KEY_INPUT, placeholder="sk-ant-…", autocomplete="off")
buttons = st.columns([1, 1, 4])
buttons[0].button("Validate", on_click=validate, type="primary", icon=":material/verified:")
buttons[1].button("Clear key", on_click=clear, disabled=not session.has_key(), icon=":material/delete:")
status = state.get(session.KEY_STATUS)
if status:
    kind, text = status
    {"success": st.success, "warning": st.warning}.get(kind, st.error)(literal(text))
with st.expander("Advanced: a gateway that speaks Anthropic's API"):
    state.setdefault(session.S_BASE_URL, state.get(session.BASE_URL) or "")
    st.text_input("Base URL", key=session.S_BASE_URL, on_change=base_url_changed,
                  placeholder="https://gateway.example.com (empty: Anthropic's API)",
                  help="Requests go to this URL instead of Anthropic's API, and a key of any shape is accepted "
                       "(the gateway decides). ANTHROPIC_BASE_URL in the environment does the same.")
    st.caption(f"Requests go to: {literal(session.base_url() or 'https://api.anthropic.com (Anthropic)')}")

st.subheader("Model")
models, note = offered_models()
if note:
    st.caption(literal(note))
ids = [m.id for m in models]
if state[session.MODEL] not in ids:  # a retired or unlisted model is never offered: back to the default
    state[session.MODEL] = prices.DEFAULT_MODEL if prices.DEFAULT_MODEL in ids else ids[0]
by_id = {m.id: m for m in models}
state[session.MODEL] = st.selectbox("Claude model for the Player and the Coach", ids,
                                    index=ids.index(state[session.MODEL]), key=session.S_MODEL,
                                    format_func=lambda model: by_id[model].label())
if not by_id[state[session.MODEL]].priced:
    st.warning(f"{literal(state[session.MODEL])} is not in the price table: its cost is "
               f"{literal(prices.price_text(state[session.MODEL]))}, so the dollar limit below counts it only as "
               "well as that; the calls-per-hour limit always holds.", icon=":material/price_change:")
state[session.INDEPENDENT] = st.toggle(
    "Independent Coach", value=state[session.INDEPENDENT], key=session.S_INDEPENDENT,
    help="The Claude Coach judges each proposal without seeing the rules' checks and writes its own critique. "
         "The verdict still comes from the rules; the Coach's own verdict is stored beside it and every "
         "disagreement is flagged in the round card and the artifact.")
state[session.GRADE_REASONING] = st.toggle(
    "Grade the reasoning", value=state[session.GRADE_REASONING], key=session.S_GRADE,
    help="After each proposal, a third Claude call grades the Player's reasoning from 1 to 5 with one sentence, "
         "shown on the round card. It never changes the verdict.")
grading = prompts.grade_estimate(state[session.MODEL], core.Constraints())
st.caption(f"Grading adds one call per round: about {prices.cost_text(grading)} each with "
           f"{literal(state[session.MODEL])} (the shared prompt read from the cache, one sentence back). Off by default.")

st.subheader("Spend guard")
st.caption("Paid calls stop (the exchange ends ABORT, reason spend_guard) once either limit is reached.")
state[session.S_CALLS] = state[session.CALLS_PER_HOUR]
state[session.S_DOLLARS] = state[session.DOLLARS_PER_SESSION]
limits = st.columns(2)
limits[0].number_input("Calls per hour", min_value=1, max_value=10_000, step=10, key=session.S_CALLS,
                       on_change=guard_changed)
limits[1].number_input("Dollars per session", min_value=0.01, max_value=1000.0, step=0.5, format="%.2f",
                       key=session.S_DOLLARS, on_change=guard_changed)
guard = session.spend_guard()
spent = st.columns(2)
spent[0].progress(min(1.0, guard.calls_last_hour() / max(1, guard.calls_per_hour or 1)),
                  text=f"{guard.calls_last_hour()} of {guard.calls_per_hour} calls in the last hour")
spent[1].progress(min(1.0, guard.spent_usd / (guard.dollars_per_session or 1)),
                  text=f"${guard.spent_usd:.4f} of ${guard.dollars_per_session:.2f} spent this session")
st.caption(literal(guard.summary()))

st.subheader("Data")
st.markdown(f"Exchanges, rounds, coach memory and custom presets live in one SQLite file:\n\n`{store.path}`")
st.caption(f"Size: {store.size_bytes() / 1024:,.1f} KiB · set PLAYER_COACH_DB to use another file.")
# Built only on a click: the file may hold gigabytes, and serialize() is a consistent copy, WAL included.
st.download_button("Download the database", store.copy_bytes, file_name=store.path.name,
                   mime="application/vnd.sqlite3", icon=":material/download:", on_click="ignore")
pruning.section(store)

st.subheader("About")
st.markdown(f"**Player–Coach Trade Review** {about.APP_VERSION}")
versions = about.library_versions()
st.caption(" · ".join(f"{name} {version}" for name, version in versions.items()))
st.caption(f"Database: `{store.path}` · {store.size_bytes() / 1024:,.1f} KiB")
st.dataframe([{"data source": s["source"], "licence": s["licence"], "licence file": s["file"]}
              for s in about.data_sources()], hide_index=True, width="stretch")
st.caption("Symbol by symbol, with dates and adjustments: data/README.md.")
