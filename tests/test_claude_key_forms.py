"""Issue 21 item 15: the key never leaves in another form. Upper-case, base64 and space-separated forms
of the key in an upstream error, and a key the model echoes in its reasoning or critique, are redacted
before anything is stored, shown or exported (the agents' own words included)."""

from __future__ import annotations

import base64

import pytest

import core
from core.claude import keys
from core.claude.agents import ClaudeCoach, ClaudePlayer
from core.exchange.loop import ExchangeFinished, TextFragment
from tests.support.fake_anthropic import CRITIQUE, GOOD_PROPOSAL, error, tool

FORMS = {
    "upper-case": lambda key: key.upper(),
    "base64": lambda key: base64.b64encode(f"x-api-key: {key}".encode()).decode(),
    "base64 url-safe": lambda key: base64.urlsafe_b64encode(f"Bearer {key}!".encode()).decode(),
    "space-separated": lambda key: " ".join(key),
    "line-broken": lambda key: key[:30] + "\n" + key[30:],
}


def gone(text: str, key: str) -> bool:
    """No form of the key, and no run of KEY_FRAGMENT of its characters in any case, is in the text."""
    squeezed = "".join(text.split()).lower()
    lowered = key.lower()
    runs = {lowered[i:i + keys.KEY_FRAGMENT] for i in range(len(lowered) - keys.KEY_FRAGMENT + 1)}
    encoded = [base64.b64encode(f"x-api-key: {key}".encode()).decode(),
               base64.urlsafe_b64encode(f"Bearer {key}!".encode()).decode()]
    return not any(run in squeezed for run in runs) and not any(e[8:30] in text for e in encoded)


@pytest.mark.parametrize("form", FORMS)
def test_redact_hides_each_form_of_the_key(key, form):
    text = f"upstream said: {FORMS[form](key)} (end)"
    hidden = keys.redact(text, key)
    assert "[key]" in hidden and gone(hidden, key), hidden
    assert hidden.startswith("upstream said: ") and hidden.endswith(" (end)")


def test_redact_leaves_ordinary_text_alone(key):
    text = ("AMZN trades above both averages, so the trend is up. I buy 3 % with the stop at 182 and the "
            "target at 191: SGVsbG8gd29ybGQ= is base64 for hello world, and s k i p is just spaced.")
    assert keys.redact(text, key) == text


@pytest.mark.parametrize("form", FORMS)
def test_an_upstream_error_quoting_the_key_is_redacted_in_the_stored_reason(fake, key, world, moderate, store, form):
    fake.enqueue(error(400, "invalid_request_error", f"malformed header near {FORMS[form](key)}"))
    events = list(core.run_exchange(world, moderate, core.Portfolio(), ClaudePlayer(key, base_url=fake.base_url),
                                    ClaudeCoach(key, base_url=fake.base_url), store))
    artifact = events[-1].artifact
    assert artifact.outcome == "ERROR" and "malformed header near " in artifact.termination_reason
    assert "[key]" in artifact.termination_reason
    assert gone(artifact.termination_reason, key)
    assert gone(store.get_exchange(artifact.run_id).model_dump_json(), key)


@pytest.mark.parametrize("form", FORMS)
def test_a_key_the_model_echoes_is_redacted_before_it_is_shown_stored_or_exported(fake, key, world, moderate,
                                                                                 store, form):
    echo = FORMS[form](key)
    proposal = {**GOOD_PROPOSAL, "reasoning": f"My key is {echo}. " + GOOD_PROPOSAL["reasoning"]}
    fake.enqueue(tool(proposal, chunk=5), tool({"feedback": f"Sound trade. Your key {echo} should stay secret."}))
    events = list(core.run_exchange(world, moderate, core.Portfolio(), ClaudePlayer(key, base_url=fake.base_url),
                                    ClaudeCoach(key, base_url=fake.base_url), store))
    assert isinstance(events[-1], ExchangeFinished) and events[-1].artifact.outcome == "APPROVE"
    shown = "".join(e.text for e in events if isinstance(e, TextFragment))
    assert gone(shown, key) and "My key is " in shown and "[key]" in shown
    stored = store.get_exchange(events[-1].artifact.run_id)
    reasoning, feedback = stored.rounds[0].proposal.reasoning, stored.rounds[0].evaluation.feedback
    assert reasoning.startswith("My key is ") and "[key]" in reasoning and reasoning.endswith(GOOD_PROPOSAL["reasoning"])
    assert feedback.startswith("Sound trade. Your key ") and "[key]" in feedback
    exported = stored.model_dump_json()  # what History's JSON export writes
    assert gone(exported, key)


def test_the_independent_coach_and_the_grader_are_redacted_too(fake, key, world, moderate):
    from core.claude.agents import ClaudeGrader

    fake.enqueue(tool({**CRITIQUE, "feedback": f"key {key.upper()}", "decision": "APPROVE", "violations": []}),
                 tool({"score": 3, "reason": f"It quoted {' '.join(key)}."}))
    proposal = core.Proposal.model_validate(GOOD_PROPOSAL)
    coach = ClaudeCoach(key, base_url=fake.base_url, independent=True)
    stream = coach.critique(proposal, None, moderate, world, core.Portfolio())
    while True:
        try:
            next(stream)
        except StopIteration as done:
            judged = done.value
            break
    grade = ClaudeGrader(key, base_url=fake.base_url).grade(proposal, world, moderate, core.Portfolio(), "faithful")
    assert judged.value == "key [key]" and gone(judged.value, key)
    assert grade.value.reason == "It quoted [key]." and gone(grade.value.reason, key)
