"""The exchange on screen, drawn from the loop's events: live on Trade Review, replayed on History.

Two characters side by side, the Player and the Coach, each with a speech bubble that fills as
the text streams and a highlight on whoever is speaking; a card per finished round; the outcome
banner, tokens, cost and the artifact at the end. The same `ExchangeView.handle` consumes
`core.run_exchange` and `core.replay_exchange`, so a replay looks exactly like the live run.

Every string that came from an agent, a user or a file is escaped before it reaches HTML:
`_html` is the one place that asks Streamlit for unsafe HTML, and it only ever receives markup
built here around `escape(...)`d text.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator

import pandas as pd
import streamlit as st

import core
from core.loop import fragments
from core.schema import ENTRY_TYPES

ROLES = {
    "player": {"name": "Player", "face": "P", "line": "proposes the trade"},
    "coach": {"name": "Coach", "face": "C", "line": "checks it against the schema"},
}
DECISION_COLOURS = {"APPROVE": "green", "REJECT": "orange", "ABORT": "red"}

_CSS = """
<style>
.pc-stage{display:flex;gap:1rem;align-items:flex-start}
.pc-char{flex:1;border:2px solid #e5e7eb;border-radius:14px;padding:.75rem 1rem;background:#fafbfc;
  transition:border-color .2s, box-shadow .2s;opacity:.78}
.pc-char.pc-active{border-color:#2563eb;box-shadow:0 0 0 4px rgba(37,99,235,.15);opacity:1;background:#fff}
.pc-char.pc-coach.pc-active{border-color:#7c3aed;box-shadow:0 0 0 4px rgba(124,58,237,.15)}
.pc-who{display:flex;align-items:center;gap:.6rem;margin-bottom:.5rem}
.pc-face{width:2.6rem;height:2.6rem;border-radius:50%;display:flex;align-items:center;justify-content:center;
  font-weight:800;font-size:1.3rem;color:#fff;background:#60a5fa}
.pc-coach .pc-face{background:#a78bfa}
.pc-active .pc-face{background:#2563eb}.pc-coach.pc-active .pc-face{background:#7c3aed}
.pc-name{font-weight:700;font-size:1.05rem}
.pc-role{color:#6b7280;font-size:.8rem}
.pc-tag{margin-left:auto;font-size:.75rem;font-weight:700;padding:.1rem .5rem;border-radius:999px;background:#eef2ff;color:#3730a3}
.pc-tag.pc-APPROVE{background:#dcfce7;color:#166534}.pc-tag.pc-REJECT{background:#ffedd5;color:#9a3412}
.pc-tag.pc-ABORT{background:#fee2e2;color:#991b1b}
.pc-bubble{position:relative;background:#f1f5f9;border-radius:12px;padding:.65rem .8rem;font-size:.9rem;
  line-height:1.45;word-wrap:break-word;min-height:4.5rem}
/* column-reverse keeps the newest words in view while the text streams */
.pc-scroll{display:flex;flex-direction:column-reverse;max-height:18rem;overflow-y:auto}
.pc-active .pc-bubble{background:#eff6ff}
.pc-coach.pc-active .pc-bubble{background:#f5f3ff}
.pc-bubble:before{content:"";position:absolute;top:-8px;left:22px;border:8px solid transparent;border-top:0;
  border-bottom-color:#f1f5f9}
.pc-active .pc-bubble:before{border-bottom-color:#eff6ff}
.pc-coach.pc-active .pc-bubble:before{border-bottom-color:#f5f3ff}
.pc-status{font-size:.85rem;color:#374151;margin:.1rem 0 .5rem 0;font-weight:600}
.pc-quiet{color:#9ca3af;font-style:italic}
.pc-caret{display:inline-block;width:.5rem;height:1rem;background:#2563eb;margin-left:2px;vertical-align:text-bottom;
  animation:pc-blink 1s steps(2) infinite}
@keyframes pc-blink{50%{opacity:0}}
.pc-said{border-left:3px solid #cbd5e1;padding:.4rem .7rem;background:#f8fafc;border-radius:6px;font-size:.9rem;
  line-height:1.45;margin:.2rem 0 .6rem 0}
</style>
"""


def escape(text: object) -> str:
    """Text made safe and literal inside HTML: tags escaped, line breaks kept, no markdown or maths."""
    safe = html.escape(str(text), quote=True)
    # Markdown would end an HTML block at a blank line and read `$` as maths; keep it one literal line.
    return safe.replace("$", "&#36;").replace("*", "&#42;").replace("_", "&#95;").replace("`", "&#96;") \
        .replace("\r\n", "\n").replace("\n", "<br>")


def literal(text: object) -> str:
    """Text for st.markdown-based elements (banners, captions), shown as typed: no markup applies.

    Backslash-escaping markdown's punctuation stops links, images, emphasis, maths, raw HTML
    and HTML entities (`&lt;` stays as typed).
    """
    return re.sub(r"([\\`*_{}\[\]<>#|~$&])", r"\\\1", str(text))


def _html(markup: str) -> None:
    """The app's one use of unsafe HTML; callers build `markup` around escape()d text only."""
    st.markdown(markup, unsafe_allow_html=True)


def said(role: str, text: str) -> None:
    """A finished line of speech inside a round card."""
    _html(f'<div class="pc-said"><b>{ROLES[role]["name"]}:</b> {escape(text)}</div>')


def _character(role: str, text: str, active: bool, tag: str | None) -> str:
    who = ROLES[role]
    body = escape(text) if text else '<span class="pc-quiet">…</span>'
    caret = '<span class="pc-caret"></span>' if active else ""
    badge = f'<span class="pc-tag pc-{escape(tag)}">{escape(tag)}</span>' if tag else ""
    return (
        f'<div class="pc-char pc-{role}{" pc-active" if active else ""}" data-role="{role}" '
        f'data-active="{str(active).lower()}">'
        f'<div class="pc-who"><span class="pc-face">{who["face"]}</span>'
        f'<span><div class="pc-name">{who["name"]}</div><div class="pc-role">{who["line"]}</div></span>{badge}</div>'
        f'<div class="pc-bubble"><div class="pc-scroll"><div>{body}{caret}</div></div></div></div>'
    )


def actions_frame(proposal: dict) -> pd.DataFrame:
    """The proposal's actions as a table, with the reward-to-risk of each entry."""
    rows = []
    for number, action in enumerate(proposal["actions"], start=1):
        entry = action["action_type"] in ENTRY_TYPES
        rr = None
        if entry and action["entry_price"] != action["stop_loss"]:
            rr = round(core.risk_reward(action["action_type"] == "enter_long", action["entry_price"],
                                        action["stop_loss"], action["take_profit"]), 2)
        rows.append({
            "#": number, "action": action["action_type"], "symbol": action["symbol"],
            "size %": None if action.get("size_pct") is None else round(action["size_pct"] * 100, 3),
            "entry": action.get("entry_price"), "stop": action.get("stop_loss"),
            "target": action.get("take_profit"), "R/R": rr,
        })
    return pd.DataFrame(rows)


def checks_frame(checks: list[dict]) -> pd.DataFrame:
    """Every check: pass/fail mark, the constraint, the action it concerns and its arithmetic."""
    return pd.DataFrame([{
        "": "✓ pass" if c["passed"] else "✗ FAIL", "constraint": c["constraint"],
        "action": "all" if c["action"] is None else str(c["action"] + 1), "arithmetic": c["arithmetic"],
    } for c in checks], columns=["", "constraint", "action", "arithmetic"])


def round_card(record: dict, expanded: bool, key: str) -> None:
    """One finished round: verdict badge, violations, the actions, every check, what each side said."""
    evaluation = record["evaluation"]
    decision = evaluation["decision"]
    violations = evaluation["violations"]
    label = f"Round {record['round']} — {decision}" + (f" ({literal(', '.join(violations))})" if violations else "")
    with st.expander(label, expanded=expanded, key=key):
        top = st.columns([1, 3, 2])
        top[0].badge(decision, color=DECISION_COLOURS.get(decision, "gray"))
        if violations:
            top[1].markdown("Violations: " + ", ".join(f"`{v.replace('`', '')}`" for v in violations))
        else:
            top[1].markdown("No violations")
        top[2].caption(f"{record['tokens']:,} tokens · ${record['usage'].get('cost_usd', 0):.4f} · "
                       f"{record['latency_ms']:.0f} ms")
        said("player", record["proposal"]["reasoning"])
        st.dataframe(actions_frame(record["proposal"]), hide_index=True, width="stretch")
        failed = sum(not c["passed"] for c in evaluation["checks"])
        st.markdown(f"**Checks** — {len(evaluation['checks']) - failed} passed, {failed} failed")
        st.dataframe(checks_frame(evaluation["checks"]), hide_index=True, width="stretch",
                     column_config={"": st.column_config.TextColumn("check", width="small"),
                                    "arithmetic": st.column_config.TextColumn(width="large")})
        said("coach", evaluation["feedback"])
        if evaluation.get("disagrees"):
            opinion = evaluation.get("coach_opinion") or {}
            st.warning(f"The Coach's own judgement differs from the rules: {literal(opinion.get('decision'))} "
                       f"({literal(', '.join(opinion.get('violations') or []) or 'no violations')}).")


def outcome_banner(artifact: dict) -> None:
    """APPROVE / REJECT-MAX / ABORT with its reason / ERROR with its message / INTERRUPTED."""
    outcome, reason, rounds = artifact["outcome"], artifact["termination_reason"], artifact["rounds_taken"]
    plural = "s" if rounds != 1 else ""
    if outcome == "APPROVE":
        st.success(f"**APPROVE** — the Coach approved the trade in round {rounds}.", icon=":material/check_circle:")
    elif outcome == "REJECT-MAX":
        st.warning(f"**REJECT-MAX** — still rejected after {rounds} round{plural} (max\\_rounds reached).", icon=":material/block:")
    elif outcome == "ABORT":
        where = "before round 1 (circuit breaker)" if rounds == 0 and reason in core.BREAKER_NAMES else \
            f"after {rounds} round{plural}"
        st.error(f"**ABORT** — {literal(reason)}, {where}.", icon=":material/cancel:")
    elif outcome == "ERROR":
        st.error(f"**ERROR** — {literal(reason)} (after {rounds} finished round{plural}).", icon=":material/error:")
    else:
        st.info(f"**INTERRUPTED** — stopped; {rounds} finished round{plural} kept.", icon=":material/stop_circle:")


def totals(artifact: dict, key: str) -> None:
    """Tokens and cost, the artifact JSON and its download."""
    usage = artifact["usage"]
    cols = st.columns(4)
    cols[0].metric("Rounds", artifact["rounds_taken"])
    cols[1].metric("Tokens", f"{artifact['total_tokens']:,}",
                   help=f"input {usage['input']:,} · output {usage['output']:,} · cache read "
                        f"{usage['cache_read']:,} · cache write {usage['cache_write']:,}")
    cols[2].metric("Cost", f"${usage['cost_usd']:.4f}")
    cols[3].metric("Agents", artifact["agents"]["player"].split("-")[0].title(),
                   help=f"{artifact['agents']['player']} / {artifact['agents']['coach']}"
                        + (f" · {artifact['agents']['model']}" if artifact["agents"].get("model") else ""))
    text = json.dumps(artifact, indent=2)
    st.download_button("Download artifact JSON", text, file_name=f"exchange-{artifact['run_id']}.json",
                       mime="application/json", key=f"{key}.download", icon=":material/download:")
    with st.expander("Artifact JSON", key=f"{key}.json"):
        st.json(artifact, expanded=2)


class ExchangeView:
    """Draws an exchange event by event. `speed` is seconds per streamed word (0 = instant)."""

    def __init__(self, speed: float = 0.0, key: str = "exchange"):
        self.speed = speed
        self.key = key
        self.text = {"player": "", "coach": ""}
        self.active: str | None = None
        self.tag: str | None = None
        self.round = 0
        self.max_rounds = 0
        self.status = ""
        self.cards: list[tuple] = []  # (placeholder, record)
        _html(_CSS)  # static style, no user text
        self.header = st.empty()
        self.alert = st.empty()
        self.stage = st.empty()
        self.rounds = st.container()
        self.end = st.container()
        self._draw()

    def _draw(self) -> None:
        player = _character("player", self.text["player"], self.active == "player", None)
        coach = _character("coach", self.text["coach"], self.active == "coach", self.tag)
        status = f'<div class="pc-status">{escape(self.status)}</div>' if self.status else ""
        with self.stage.container():
            _html(f'{status}<div class="pc-stage">{player}{coach}</div>')

    def _say(self, role: str, text: str) -> None:
        if self.active != role:
            self.active = role
        if not self.speed:
            self.text[role] += text
            self._draw()
            return
        for piece in fragments(text, 3):  # a few words at a time, at the chosen pace
            self.text[role] += piece
            self._draw()
            time.sleep(self.speed * max(1, len(piece.split())))

    def handle(self, event: core.Event) -> None:
        """Draw one loop event."""
        if isinstance(event, core.ExchangeStarted):
            self.max_rounds = event.constraints.max_rounds
            w = event.world
            self.header.caption(
                f"Exchange `{event.run_id[:8]}` · {literal(w.symbol)} at {w.price:,.2f} · "
                f"{w.as_of:%Y-%m-%d %H:%M} ET · sma5 {w.sma5:,.2f} / sma10 {w.sma10:,.2f} · "
                f"{w.volatility_regime} volatility · max {event.constraints.max_rounds} rounds")
        elif isinstance(event, core.BreakerTripped):
            self.alert.error(f"**Circuit breaker tripped: {literal(event.name)}** — {literal(event.detail)}. "
                             "No rounds were played and no agent was called.", icon=":material/power_off:")
            self.active, self.tag = "coach", "ABORT"
            self.status = "Circuit breaker — no rounds"
            self.text["coach"] = f"Circuit breaker {event.name}: {event.detail}. No trading now."
            self._draw()
        elif isinstance(event, core.RoundStarted):
            self.round = event.round
            self._collapse_cards()
            self.text = {"player": "", "coach": ""}
            self.tag = None
            self.active = "player"
            self.status = f"Round {event.round} of {self.max_rounds} — the Player proposes"
            self._draw()
        elif isinstance(event, core.TextFragment):
            self._say(event.role, event.text)
        elif isinstance(event, core.ProposalMade):
            if not self.text["player"]:
                self.text["player"] = event.proposal.reasoning
            self.active = "coach"
            self.status = f"Round {self.round} of {self.max_rounds} — the Coach checks every action against every constraint"
            self._draw()
        elif isinstance(event, core.VerdictReached):
            self.tag = event.verdict.decision
            self.active = None
            self.status = f"Round {self.round} of {self.max_rounds} — {event.verdict.decision}"
            self._draw()
            with self.rounds:
                holder = st.empty()
            self.cards.append((holder, event.record))
            with holder.container():
                round_card(event.record, expanded=True, key=f"{self.key}.round{event.round}.open")
        elif isinstance(event, core.ExchangeFinished):
            self.active = None
            self.status = f"{event.artifact['outcome']} after {event.artifact['rounds_taken']} of {self.max_rounds} rounds"
            self._draw()
            with self.end:
                outcome_banner(event.artifact)
                totals(event.artifact, self.key)

    def _collapse_cards(self) -> None:
        for holder, record in self.cards:
            with holder.container():
                round_card(record, expanded=False, key=f"{self.key}.round{record['round']}.closed")
        self.cards = []


def play(events: Iterator[core.Event], view: ExchangeView) -> dict | None:
    """Feed events to the view; return the artifact. Always closes the event stream.

    When the user clicks Stop (or anything else) mid-exchange, Streamlit interrupts this run by
    raising inside a drawing call; closing the loop's generator here is what records the
    exchange as INTERRUPTED with its finished rounds.
    """
    artifact = None
    try:
        for event in events:
            view.handle(event)
            if isinstance(event, core.ExchangeFinished):
                artifact = event.artifact
    finally:
        close = getattr(events, "close", None)
        if close:
            close()
    return artifact


def show(artifact: dict, key: str = "exchange") -> None:
    """A stored exchange drawn at once (no animation, no agent call)."""
    play(core.replay_exchange(artifact), ExchangeView(0.0, key=key))
