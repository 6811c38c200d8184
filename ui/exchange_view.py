"""The exchange on screen, drawn from the loop's events: live on Trade Review, replayed on History.

Two characters side by side, the Player and the Coach, each with a speech bubble that fills as
the text streams and a highlight on whoever is speaking; a card per finished round; the outcome
banner, tokens, cost and the artifact at the end. The same `ExchangeView.handle` consumes
`core.run_exchange` and `core.replay_exchange`, so a replay looks exactly like the live run.

Every string that came from an agent, a user or a file is escaped before it reaches HTML:
`ui.text.markup` is the one place that asks Streamlit for unsafe HTML, and it only ever receives
markup built here (or in `ui.round_card`) around `escape(...)`d text.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import streamlit as st

import core
from core.exchange.loop import fragments
from core.prices import cost_text
from ui import characters
from ui.exchange_style import CSS as _CSS, FOLLOW
from ui.round_card import ROLES, round_card
from ui.text import escape, literal, markup

LEGEND = ("Outcomes: **APPROVE** the Coach approved · **REJECT-MAX** still rejected after the last round (max\\_rounds) · "
          "**ABORT** a hard limit or a circuit breaker stopped it · **ERROR** an agent failed · "
          "**INTERRUPTED** stopped before the end")
BEAT_WORDS = 20  # a character thinks, or takes in a verdict, for as long as it takes to say this many words


def _character(role: str, text: str, mood: str, active: bool, tag: str | None = None, headline: str = "") -> str:
    """One character: portrait in its mood, name, role, and the speech bubble (text escaped here)."""
    who = ROLES[role]
    body = escape(text) if text else '<span class="pc-quiet">…</span>'
    caret = '<span class="pc-caret"></span>' if active and mood == "speaking" else ""
    badge = f'<span class="pc-tag pc-{escape(tag)}">{escape(tag)}</span>' if tag else ""
    verdict = f'<div class="pc-verdict pc-{escape(tag)}">{escape(headline)}</div>' if headline else ""
    return (
        f'<div class="pc-char pc-{role} pc-mood-{mood}{" pc-active" if active else ""}" data-role="{role}" '
        f'data-mood="{mood}" data-active="{str(active).lower()}">'
        f'<div class="pc-who">{characters.svg(role, mood)}'
        f'<span><div class="pc-name">{who["name"]}</div><div class="pc-role">{who["line"]}</div>'
        f'<span class="pc-mood">{characters.MOOD_WORDS[mood]}</span></span>{badge}</div>'
        f'<div class="pc-bubble">{verdict}<div>{body}{caret}</div></div></div>'
    )


def headline(verdict: core.Verdict) -> str:
    """The verdict in one line: 'REJECT: 2 violations (min_risk_reward, max_single_trade_pct)'.

    (Not 'REJECT — ...': a dash after the outcome is the banner's form.)
    """
    violations = verdict.violations
    if not violations:
        return f"{verdict.decision}: all {len(verdict.checks)} checks pass"
    plural = "s" if len(violations) > 1 else ""
    return f"{verdict.decision}: {len(violations)} violation{plural} ({', '.join(violations)})"


def outcome_banner(artifact: core.Artifact) -> None:
    """APPROVE / REJECT-MAX / ABORT with its reason / ERROR with its message / INTERRUPTED with why, when known."""
    outcome, reason, rounds = artifact.outcome, artifact.termination_reason, artifact.rounds_taken
    plural = "s" if rounds != 1 else ""
    if outcome == "APPROVE":
        st.success(f"**APPROVE** — the Coach approved the trade in round {rounds}.", icon=":material/check_circle:")
    elif outcome == "REJECT-MAX":
        st.warning(f"**REJECT-MAX** — still rejected after {rounds} round{plural} (max\\_rounds reached).", icon=":material/block:")
    elif outcome == "ABORT":
        # Before round 1: a circuit breaker, or a symbol the constraints do not allow; no agent was called.
        where = f"after {rounds} round{plural}" if rounds else \
            "before round 1 (circuit breaker)" if reason in core.BREAKER_NAMES else "before round 1, no agent called"
        st.error(f"**ABORT** — {literal(reason)}, {where}.", icon=":material/cancel:")
    elif outcome == "ERROR":
        st.error(f"**ERROR** — {literal(reason)} (after {rounds} finished round{plural}{_as_it_stood(artifact)}).",
                 icon=":material/error:")
    else:
        # "interrupted": closed by whoever played it, without a word (a CLI's Ctrl-C, an older record); none: the
        # process stopped mid-exchange
        why = literal(reason) if reason not in (None, "interrupted") else \
            "stopped before the end (the page was left, reloaded or closed)"
        st.info(f"**INTERRUPTED** — {why}; {rounds} finished round{plural} kept{_as_it_stood(artifact)}.",
                icon=":material/stop_circle:")


def _as_it_stood(artifact: core.Artifact) -> str:
    unfinished = [r.round for r in artifact.rounds if not r.complete]
    return f", and round {unfinished[0]} as it stood" if unfinished else ""


def artifact_name(artifact: core.Artifact) -> str:
    """exchange_<symbol>_<market date>_<outcome>_<run id>.json: the exchange, recognisable in a folder."""
    parts = (artifact.symbol, artifact.world_state.as_of.date().isoformat(), artifact.outcome, artifact.run_id[:8])
    return "exchange_" + "_".join(re.sub(r"[^A-Za-z0-9.=-]+", "-", part).strip("-") for part in parts) + ".json"


def totals(artifact: core.Artifact, key: str) -> None:
    """Tokens and cost, the artifact JSON and its download."""
    usage = artifact.usage
    cols = st.columns(4)
    cols[0].metric("Rounds", artifact.rounds_taken)
    cols[1].metric("Tokens", f"{artifact.total_tokens:,}",
                   help=f"input {usage.input:,} · output {usage.output:,}"
                        + (f" (of which thinking {usage.thinking:,})" if usage.thinking else "")
                        + f" · cache read {usage.cache_read:,} · cache write {usage.cache_write:,}")
    cols[2].metric("Cost", cost_text(usage))
    cols[3].metric("Agents", artifact.agents.player.split("-")[0].title(),
                   help=f"{artifact.agents.player} / {artifact.agents.coach}"
                        + (f" · {artifact.agents.model}" if artifact.agents.model else ""))
    data = artifact.model_dump(mode="json")
    st.download_button("Download artifact JSON", json.dumps(data, indent=2), file_name=artifact_name(artifact),
                       mime="application/json", key=f"{key}.download", icon=":material/download:")
    with st.expander("Artifact JSON", key=f"{key}.json"):
        st.json(data, expanded=2)


class ExchangeView:
    """Draws an exchange event by event. `speed` is seconds per streamed word (0 = instant).

    `schema` names the preset or schema the exchange ran under, when the page knows it.
    """

    def __init__(self, speed: float = 0.0, key: str = "exchange", schema: str | None = None):
        self.speed = speed
        self.key = key
        self.schema = schema
        self.text = {"player": "", "coach": ""}
        self.mood = {"player": "idle", "coach": "idle"}
        self.active: str | None = None
        self.tag: str | None = None
        self.headline = ""
        self.round = 0
        self.max_rounds = 0
        self.status = ""
        self.cards: list[tuple] = []  # (placeholder, record)
        markup(_CSS)  # static style, no user text
        # Placeholders only: each replaces whatever the previous exchange drew at its place, so
        # nothing of an earlier exchange lingers (faded) while a new one plays.
        self.header = st.empty()
        self.alert = st.empty()
        self.stage = st.empty()
        self.follow = st.empty()
        self._followed: str | None = None
        self.top = st.empty()
        self.rounds = st.empty()
        self.end = st.empty()
        self._rounds_box = None
        self._draw()

    def waiting(self, player_line: str, coach_line: str) -> None:
        """Both characters idle before any exchange, each saying what it will do."""
        self.text = {"player": player_line, "coach": coach_line}
        self.status = "Waiting for Run exchange"
        self._draw()

    def _draw(self) -> None:
        player = _character("player", self.text["player"], self.mood["player"], self.active == "player")
        coach = _character("coach", self.text["coach"], self.mood["coach"], self.active == "coach", self.tag,
                           self.headline)
        status = f'<div class="pc-status">{escape(self.status)}</div>' if self.status else ""
        with self.stage.container():
            markup(f'{status}<div class="pc-stage">{player}{coach}</div>')
        if self.active and self.active != self._followed:
            self._followed = self.active
            # A phone stacks the characters: scroll (as little as needed) to the one who speaks now.
            self.follow.html(FOLLOW.replace("ROLE", self.active), unsafe_allow_javascript=True)

    def _feel(self, player: str | None = None, coach: str | None = None) -> None:
        if player:
            self.mood["player"] = player
        if coach:
            self.mood["coach"] = coach

    def _think(self, role: str) -> None:
        """The speaker thinks before its first word (a beat, at the chosen pace)."""
        self.active = role
        self._feel(**{role: "thinking"})
        self._draw()
        self._beat()

    def _beat(self) -> None:
        """Hold the stage a moment so the face can be read (a browser draws no faster than this)."""
        if self.speed:
            time.sleep(self.speed * BEAT_WORDS)

    def _say(self, role: str, text: str) -> None:
        self.active = role
        self._feel(**{role: "speaking"})
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
            self._started(event)
        elif isinstance(event, core.BreakerTripped):
            self.alert.error(f"**Circuit breaker tripped: {literal(event.name)}** — {literal(event.detail)}. "
                             "No rounds were played and no agent was called.", icon=":material/power_off:")
            self.active, self.tag = "coach", "ABORT"
            self._feel("alarmed", "alarmed")
            self.status = "Circuit breaker — no rounds"
            self.text["coach"] = f"Circuit breaker {event.name}: {event.detail}. No trading now."
            self._draw()
        elif isinstance(event, core.RoundStarted):
            self.round = event.round
            self._collapse_cards()
            self.text = {"player": "", "coach": ""}
            self.tag, self.headline = None, ""
            self._feel(coach="idle")
            self.status = f"Round {event.round} of {self.max_rounds} — the Player proposes"
            self._think("player")
        elif isinstance(event, core.TextFragment):
            self._say(event.role, event.text)
        elif isinstance(event, core.ProposalMade):
            if not self.text["player"]:
                self.text["player"] = event.proposal.reasoning
            self._feel(player="idle")
            verdict = getattr(event, "verdict", None)  # the rules' verdict, known before the Coach speaks
            if verdict is not None:
                self.tag, self.headline = verdict.decision, headline(verdict)
            self.status = f"Round {self.round} of {self.max_rounds} — the Coach checks every action against every constraint"
            self._think("coach")
        elif isinstance(event, core.VerdictReached):
            self._verdict(event)
        elif isinstance(event, core.ExchangeFinished):
            self._finished(event.artifact)

    def _started(self, event: core.ExchangeStarted) -> None:
        self.max_rounds = event.constraints.max_rounds
        w = event.world
        schema = f" · under **{literal(self.schema)}**" if self.schema else ""
        self.header.caption(
            f"Exchange `{event.run_id[:8]}` · {literal(w.symbol)} at {w.price:,.2f} · "
            f"{w.as_of:%Y-%m-%d %H:%M} ET · sma5 {w.sma5:,.2f} / sma10 {w.sma10:,.2f} · "
            f"{w.volatility_regime} volatility{schema} · max {event.constraints.max_rounds} rounds")
        self.status = "The exchange begins"
        self._draw()

    def _verdict(self, event: core.VerdictReached) -> None:
        decision = event.verdict.decision
        self.tag, self.headline = decision, headline(event.verdict)
        self.active = None
        if not event.record.complete:  # the round the exchange stopped in, replayed as it stood
            decision = None
            self._feel("idle", "idle")
            self.status = f"Round {self.round} of {self.max_rounds} — interrupted"
        else:
            self._feel(*{"APPROVE": ("pleased", "pleased"), "REJECT": ("chastened", "stern"),
                         "ABORT": ("alarmed", "alarmed")}[decision])
            self.status = f"Round {self.round} of {self.max_rounds} — {decision}"
        self._draw()
        if self._rounds_box is None:
            self._rounds_box = self.rounds.container()
        with self._rounds_box:
            holder = st.empty()
        self.cards.append((holder, event.record))
        with holder.container():
            round_card(event.record, expanded=True, key=f"{self.key}.round{event.round}.open")
        if decision == "REJECT":
            self._beat()  # the Player takes the rejection in before it revises

    def _finished(self, artifact: core.Artifact) -> None:
        outcome = artifact.outcome
        self.active = None
        if outcome == "ERROR":
            self._feel("puzzled", "puzzled")
        elif outcome == "INTERRUPTED":
            self._feel("idle", "idle")
        elif outcome == "ABORT":
            self._feel("alarmed", "alarmed")
        self.status = f"{outcome} after {artifact.rounds_taken} of {self.max_rounds} rounds"
        self._draw()
        with self.top.container():
            outcome_banner(artifact)
            st.caption(LEGEND)
        with self.end.container():
            outcome_banner(artifact)
            totals(artifact, self.key)

    def _collapse_cards(self) -> None:
        for holder, record in self.cards:
            with holder.container():
                round_card(record, expanded=False, key=f"{self.key}.round{record.round}.closed")
        self.cards = []


def play(events: Iterator[core.Event], view: ExchangeView) -> core.Artifact | None:
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


def show(artifact: core.Artifact, key: str = "exchange", schema: str | None = None) -> None:
    """A stored exchange drawn at once (no animation, no agent call)."""
    play(core.replay_exchange(artifact), ExchangeView(0.0, key=key, schema=schema))
