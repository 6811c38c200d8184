"""A finished round on screen: the verdict badge, violations, the actions, every check and what each side said.

Drawn live by the exchange view as each round ends, and again, collapsed, when the next round starts.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

import core
from core.exchange.schema import ENTRY_TYPES
from core.prices import cost_text
from ui.text import escape, literal, markup

ROLES = {
    "player": {"name": "Player", "face": "P", "line": "proposes the trade"},
    "coach": {"name": "Coach", "face": "C", "line": "checks it against the constraints"},
}
DECISION_COLOURS = {"APPROVE": "green", "REJECT": "orange", "ABORT": "red"}


def said(role: str, text: str) -> None:
    """A finished line of speech inside a round card."""
    markup(f'<div class="pc-said"><b>{ROLES[role]["name"]}:</b> {escape(text)}</div>')


def actions_frame(proposal: core.Proposal) -> pd.DataFrame:
    """The proposal's actions as a table, with the reward-to-risk of each entry."""
    rows = []
    for number, action in enumerate(proposal.actions, start=1):
        entry = action.action_type in ENTRY_TYPES
        rr = None
        if entry and action.entry_price != action.stop_loss:
            rr = round(core.risk_reward(action.action_type == "enter_long", action.entry_price,
                                        action.stop_loss, action.take_profit), 2)
        rows.append({
            "#": number, "action": action.action_type, "symbol": action.symbol,
            "size %": None if action.size_pct is None else round(action.size_pct * 100, 3),
            "entry": action.entry_price, "stop": action.stop_loss,
            "target": action.take_profit, "R/R": rr,
        })
    return pd.DataFrame(rows)


def checks_frame(checks: list[core.Check]) -> pd.DataFrame:
    """Every check: pass/fail mark, the constraint, the action it concerns and its arithmetic."""
    return pd.DataFrame([{
        "check": "✓ pass" if c.passed else "✗ FAIL", "constraint": c.constraint,
        "action": "all" if c.action is None else str(c.action + 1), "arithmetic": c.arithmetic,
    } for c in checks], columns=["check", "constraint", "action", "arithmetic"])


def round_card(record: core.Round, expanded: bool, key: str) -> None:
    """One round: verdict badge, violations, the actions, every check, what each side said.

    A round the exchange stopped in (`complete` false) shows what was on screen, marked interrupted.
    """
    evaluation = record.evaluation
    decision = evaluation.decision
    violations = evaluation.violations
    unfinished = not record.complete
    label = f"Round {record.round} — " + ("INTERRUPTED before the Coach's verdict; the checks said " if unfinished else "") \
        + decision + (f" ({literal(', '.join(violations))})" if violations else "")
    with st.expander(label, expanded=expanded, key=key):
        top = st.columns([1, 3, 2])
        top[0].badge("INTERRUPTED" if unfinished else decision, color="gray" if unfinished else DECISION_COLOURS.get(decision, "gray"))
        if violations:
            top[1].markdown("Violations: " + ", ".join(f"`{v.replace('`', '')}`" for v in violations))
        else:
            top[1].markdown("No violations")
        paths = {p for p in (record.agent_path or {}).values() if p and p != "forced tool"}
        thought = f" ({record.usage.thinking:,} thinking)" if record.usage.thinking else ""  # within the output
        top[2].caption(f"{record.tokens:,} tokens{thought} · {cost_text(record.usage)} · "
                       f"agents {record.latency_ms:,.0f} ms" + "".join(f" · {literal(p)}" for p in sorted(paths)),
                       help="The agents' own time in this round; the animation's is not counted. A model that "
                            "thinks is asked with tool choice auto and strict schemas instead of a forced tool.")
        said("player", record.proposal.reasoning)
        reasoning_notes(record)
        st.dataframe(actions_frame(record.proposal), hide_index=True, width="stretch")
        failed = sum(not c.passed for c in evaluation.checks)
        # The marker lets a phone's CSS find the table that follows (a stacked line per check, below 700 px).
        markup(f'<div class="pc-checks"><b>Checks</b> — {len(evaluation.checks) - failed} passed, {failed} failed</div>')
        # A static table: the arithmetic wraps and is never cut (st.table reads markdown, hence literal()).
        st.table(checks_frame(evaluation.checks).map(literal), hide_index=True)
        said("coach", evaluation.feedback)
        if evaluation.disagrees:
            opinion = evaluation.coach_opinion or {}
            st.warning(f"The Coach's own judgement differs from the rules: {literal(opinion.get('decision'))} "
                       f"({literal(', '.join(opinion.get('violations') or []) or 'no violations')}).")


def reasoning_notes(record: core.Round) -> None:
    """What the reasoning says that the actions do not do, on one line; the optional Claude grade under it."""
    checked = record.reasoning_check
    if checked is not None and checked.mismatches:
        st.warning(f"Reasoning vs actions: {literal(checked.mismatch_line())}", icon=":material/rule:")
    if record.reasoning_grade is not None:
        grade = record.reasoning_grade
        st.caption(f"Reasoning graded {grade.score}/5 by Claude: {literal(grade.reason)}")
