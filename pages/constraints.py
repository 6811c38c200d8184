"""Constraints: edit a schema, import/export it, save it as a preset, push it to Trade Review, derive it."""

import json

import streamlit as st

from ui import shell

shell.require_app()

import core  # noqa: E402
from ui import constraint_editor as editor  # noqa: E402
from ui import session  # noqa: E402
from ui.text import literal  # noqa: E402

store = session.store()
state = st.session_state
choices = session.schemas()
labels = list(choices)
state.setdefault(session.EDITOR_BASE, "moderate" if "moderate" in labels else labels[0])
editor.ensure_loaded(choices.get(state[session.EDITOR_BASE], core.Constraints()).model_dump(mode="json"))


def load_chosen() -> None:
    label = state[session.C_PRESET]
    state[session.EDITOR_BASE] = label
    editor.load(choices[label].model_dump(mode="json"))
    state[session.EDITOR_NOTICE] = ("success", f"Loaded {label}.")


def import_upload() -> None:
    upload = state.get(session.C_UPLOAD)
    if upload is None:
        return
    try:
        imported = core.parse_constraints(upload.getvalue())
    except core.InvalidInput as error:
        state[session.EDITOR_NOTICE] = ("error", f"Could not import {upload.name}: {error}. Nothing was changed.")
        return
    editor.load(imported.model_dump(mode="json"))
    state[session.EDITOR_NOTICE] = ("success", f"Imported {upload.name}.")


def save_preset(values: dict | None, name_key: str, replace: bool = False) -> None:
    """Save the schema (the editor's own when `values` is None) as a custom preset; ask before replacing one."""
    values = editor.current() if values is None else values
    name = (state.get(name_key) or "").strip()
    state.pop(session.C_REPLACE, None)
    try:
        constraints = core.parse_constraints(values)
        if not replace and name in store.custom_presets():
            state[session.C_REPLACE] = {"name": name, "schema": values, "key": name_key}
            return
        store.save_preset(name, constraints)
    except (ValueError, core.InvalidInput) as error:
        state[session.EDITOR_NOTICE] = ("error", f"Not saved: {error}")
        return
    state[session.C_SAVED] = {"name": name, "schema": constraints.model_dump(mode="json"), "key": name_key}
    if values == editor.current():  # the editor now shows that preset: diff and push name follow it
        state[session.EDITOR_BASE] = state[session.C_PRESET] = f"{name} (custom)"


def confirm_replace(yes: bool) -> None:
    pending = state.pop(session.C_REPLACE)
    if yes:
        save_preset(pending["schema"], pending["key"], replace=True)


def apply_derived() -> None:
    editor.load(state[session.DERIVED]["schema"])
    state[session.EDITOR_NOTICE] = ("success", "Applied the derived schema to the editor.")


def push_to_trade_review() -> None:
    schema = editor.current()
    base = state[session.EDITOR_BASE]
    same = base in choices and choices[base].model_dump(mode="json") == schema
    session.push_schema(base if same else session.edited_name(base), core.parse_constraints(schema))


def save_feedback(name_key: str, values: dict) -> None:
    """Beside a Save button: a pending replace question, or "Saved" while that name and `values` are as saved."""
    pending = state.get(session.C_REPLACE)
    if pending and pending["key"] == name_key:
        st.warning(f"A custom preset “{literal(pending['name'])}” exists. Replace it with this schema?",
                   icon=":material/help:")
        yes, no = st.columns(2)
        yes.button("Replace it", key=f"{name_key}.replace", on_click=confirm_replace, args=(True,), type="primary")
        no.button("Keep the old one", key=f"{name_key}.keep", on_click=confirm_replace, args=(False,))
        return
    saved = state.get(session.C_SAVED)
    if (saved and saved["key"] == name_key and (state.get(name_key) or "").strip() == saved["name"]
            and saved["schema"] == values):
        st.success(f"Saved as the preset “{literal(saved['name'])}”.", icon=":material/check:")


st.title("Constraints")
st.caption("Edit the schema the Coach checks every proposal against: load a preset, change it, save it as a preset "
           "of your own or use it on Trade Review. Percentages are of equity, stored as fractions (5.0 % = 0.05).")

top = st.columns([2, 3])
if state.get(session.C_PRESET) not in labels:
    state[session.C_PRESET] = state[session.EDITOR_BASE] if state[session.EDITOR_BASE] in labels else labels[0]
top[0].selectbox("Load a preset", labels, key=session.C_PRESET, on_change=load_chosen,
                 help="The shipped presets, your saved presets and the edited schema pushed to Trade Review.")
top[1].file_uploader("Import a schema (JSON)", type=["json"], key=session.C_UPLOAD, on_change=import_upload,
                     help="Every field is required; unknown keys and bad values are refused.")
notice = state.pop(session.EDITOR_NOTICE, None)
if notice:
    kind, text = notice
    (st.error if kind == "error" else st.success)(literal(text))

controls_column, json_column = st.columns([3, 2], gap="large")
with controls_column:
    editor.controls()
    editor.tier_controls()
schema = editor.current()  # after the widgets took the latest change: everything below reads this
try:
    valid = core.parse_constraints(schema)
    problem = None
except core.InvalidInput as error:
    valid, problem = None, str(error)

with json_column:
    st.subheader("Live JSON")
    if problem:
        editor.errors(problem)
    else:
        st.success("Valid schema.", icon=":material/check:")
    st.code(json.dumps(schema, indent=2), language="json")
    base_label = state[session.EDITOR_BASE]
    base = choices.get(base_label)
    st.subheader(f"Changes against {literal(base_label)}")
    changes = editor.diff_frame(base.model_dump(mode="json") if base else {}, schema)
    if changes.empty:
        st.caption("No changes.")
    else:
        st.table(changes.rename(columns={"before": base_label, "after": "edited"}).set_index("field"))

st.divider()
actions = st.columns(3)
with actions[0]:
    st.download_button("Export JSON", json.dumps(schema, indent=2), file_name="constraints.json",
                       mime="application/json", disabled=valid is None, icon=":material/download:")
with actions[1]:
    st.text_input("Preset name", key=session.C_SAVE_NAME, placeholder="e.g. My RR 2.5")
    st.button("Save as preset", on_click=save_preset, args=(None, session.C_SAVE_NAME), disabled=valid is None,
              icon=":material/save:")
    save_feedback(session.C_SAVE_NAME, schema)
with actions[2]:
    if st.button("Use in Trade Review", type="primary", disabled=valid is None, icon=":material/send:",
                 on_click=push_to_trade_review):
        st.switch_page("pages/trade_review.py")

st.divider()
st.subheader("Derive from history")
st.caption("From what the Coach has seen a strategy do: min_risk_reward from the 25th percentile of the R/R of "
           "approved entries; allowed_symbols from each symbol's approval confidence. Other fields stay as edited.")
strategies = store.strategies()
if not strategies:
    st.info("No strategy has exchanges yet: run some on Trade Review first.", icon=":material/info:")
else:
    pick, go = st.columns([3, 1], vertical_alignment="bottom")
    strategy = pick.selectbox("Strategy", strategies, key=session.C_DERIVE_STRATEGY)
    if go.button("Derive", disabled=valid is None, icon=":material/auto_fix_high:"):
        derived, evidence = core.derive_constraints(store, strategy, valid)
        # Rounded as the sliders show it, so what is applied or saved is what the diff says.
        current = valid.model_dump(mode="json")
        state[session.DERIVED] = {"strategy": strategy, "schema": editor.rounded(derived.model_dump(mode="json"), current),
                                  "current": current, "evidence": evidence}
    result = state.get(session.DERIVED)
    if result and result["strategy"] == strategy:
        evidence = result["evidence"]
        fields = evidence["fields"]
        if evidence["too_thin"]:
            st.warning(f"**Too little evidence to derive anything for {literal(strategy)}** "
                       f"({evidence['entries']} entry actions on record):\n\n"
                       + "\n".join(f"- {f}: {literal(editor.evidence_line(f, facts))}" for f, facts in fields.items()),
                       icon=":material/hourglass_empty:")
        else:
            changed = editor.diff_frame(result["current"], result["schema"])
            if changed.empty:
                st.info("The evidence supports the current schema: nothing to change.", icon=":material/check:")
            else:
                changed["evidence"] = [editor.evidence_line(f, fields.get(f, {})) for f in changed.index]
                st.table(changed.rename(columns={"before": "current", "after": "derived"}).set_index("field"))
            for field, facts in fields.items():
                if "too_thin" in facts and field not in changed.index:
                    st.caption(f"{field} unchanged — {literal(editor.evidence_line(field, facts))}")
            if fields.get("allowed_symbols", {}).get("symbols"):
                st.markdown("**Per-symbol confidence**")
                st.dataframe(editor.confidence_frame(fields["allowed_symbols"]), hide_index=True, width="stretch")
            apply, save = st.columns(2, vertical_alignment="bottom")
            apply.button("Apply to the editor", on_click=apply_derived, icon=":material/done_all:")
            state.setdefault(session.C_DERIVED_NAME, f"derived-{strategy}")
            with save:
                st.text_input("Preset name", key=session.C_DERIVED_NAME)
                st.button("Save derived as preset", on_click=save_preset, args=(result["schema"], session.C_DERIVED_NAME),
                          icon=":material/save:")
                save_feedback(session.C_DERIVED_NAME, result["schema"])
