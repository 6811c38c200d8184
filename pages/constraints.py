"""Constraints: edit the Coach's schema, import/export it, save it, push it to Trade Review, derive it."""

import json

import streamlit as st

from ui import shell

shell.require_app()

import core  # noqa: E402
from ui import constraint_editor as editor  # noqa: E402
from ui import session  # noqa: E402
from ui.exchange_view import literal  # noqa: E402

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


def save_preset(values: dict, name_key: str) -> None:
    name = (state.get(name_key) or "").strip()
    try:
        replaced = store.save_preset(name, core.parse_constraints(values))
    except (ValueError, core.InvalidInput) as error:
        state[session.EDITOR_NOTICE] = ("error", f"Not saved: {error}")
        return
    done = "Replaced" if replaced else "Saved"
    state[session.EDITOR_NOTICE] = ("success", f"{done} the custom preset “{name}”; it is listed with the shipped ones.")


def apply_derived() -> None:
    editor.load(state[session.DERIVED]["schema"])
    state[session.EDITOR_NOTICE] = ("success", "Applied the derived schema to the editor.")


st.title("Constraints")
st.caption("The schema the Coach checks every proposal against. Percentages are fractions: 0.05 = 5 %.")

top = st.columns([2, 3])
if state.get(session.C_PRESET) not in labels:
    state[session.C_PRESET] = state[session.EDITOR_BASE] if state[session.EDITOR_BASE] in labels else labels[0]
top[0].selectbox("Load a preset", labels, key=session.C_PRESET, on_change=load_chosen,
                 help="The shipped presets, your saved custom presets and the schema pushed to Trade Review.")
top[1].file_uploader("Import a schema (JSON)", type=["json"], key=session.C_UPLOAD, on_change=import_upload,
                     help="Every field is required; unknown keys and bad values are refused.")
notice = state.pop(session.EDITOR_NOTICE, None)
if notice:
    kind, text = notice
    (st.error if kind == "error" else st.success)(literal(text))

controls_column, json_column = st.columns([3, 2], gap="large")
with controls_column:
    candidate = editor.controls()

try:
    valid = core.parse_constraints(candidate)
    problem = None
except core.InvalidInput as error:
    valid, problem = None, str(error)

with json_column:
    st.subheader("Live JSON")
    if problem:
        editor.errors(problem)
    else:
        st.success("Valid schema.", icon=":material/check:")
    st.json(candidate, expanded=True)
    base_label = state[session.EDITOR_BASE]
    base = choices.get(base_label)
    st.subheader(f"Changes against {literal(base_label)}")
    changes = editor.diff_frame(base.model_dump(mode="json") if base else {}, candidate)
    if changes.empty:
        st.caption("No changes.")
    else:
        st.dataframe(changes.rename(columns={"before": base_label, "after": "edited"}), hide_index=True, width="stretch")

st.divider()
actions = st.columns(3)
with actions[0]:
    st.download_button("Export JSON", json.dumps(candidate, indent=2), file_name="constraints.json",
                       mime="application/json", disabled=valid is None, icon=":material/download:")
with actions[1]:
    st.text_input("Custom preset name", key=session.C_SAVE_NAME, placeholder="e.g. my-tight-swing")
    st.button("Save as preset", on_click=save_preset, args=(candidate, session.C_SAVE_NAME), disabled=valid is None,
              icon=":material/save:")
with actions[2]:
    if st.button("Use in Trade Review", type="primary", disabled=valid is None, icon=":material/send:"):
        state[session.PUSHED_SCHEMA] = valid.model_dump(mode="json")
        state[session.PUSH_PENDING] = True
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
        state[session.DERIVED] = {"strategy": strategy, "schema": derived.model_dump(mode="json"),
                                  "current": valid.model_dump(mode="json"), "evidence": evidence}
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
                changed["evidence"] = [editor.evidence_line(f, fields.get(f, {})) for f in changed["field"]]
                st.dataframe(changed.rename(columns={"before": "current", "after": "derived"}), hide_index=True,
                             width="stretch", column_config={"evidence": st.column_config.TextColumn(width="large")})
            for field, facts in fields.items():
                if "too_thin" in facts and field not in set(changed["field"]):
                    st.caption(f"{field} unchanged — {literal(editor.evidence_line(field, facts))}")
            if fields.get("allowed_symbols", {}).get("symbols"):
                st.markdown("**Per-symbol confidence**")
                st.dataframe(editor.confidence_frame(fields["allowed_symbols"]), hide_index=True, width="stretch")
            apply, save = st.columns(2, vertical_alignment="bottom")
            apply.button("Apply to the editor", on_click=apply_derived, icon=":material/done_all:")
            state.setdefault(session.C_DERIVED_NAME, f"derived-{strategy}")
            save.text_input("Preset name", key=session.C_DERIVED_NAME)
            save.button("Save derived as preset", on_click=save_preset, args=(result["schema"], session.C_DERIVED_NAME),
                        icon=":material/save:")
