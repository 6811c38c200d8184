"""Claude agents against the fake Anthropic server: prompt sizes, cache share, agent overhead.

* the prompts of a 3-round exchange (REJECT-MAX): characters per request and tokens as the fake
  counts them (characters / 4), and the share of input served from cache in rounds 2-3 (goal >= 60 %);
* the time the agents add on top of the fake's stream: one round (the Player's and the Coach's
  calls) through the agents, against the very same requests streamed with the bare SDK
  (goal <= 5 ms per round);
* models that think: one exchange on the default model (thinking turned off: no thinking tokens) and
  on Opus 5.5 (cannot stop thinking: asked at the lowest effort), calls per round (2: no refused
  forced tool choice, no repair), thinking tokens per call and cost per round, against the fake's
  adaptive thinking (a model of the behaviour, not of a real model's amounts);
* in a real browser (`streamlit run` with the fake as ANTHROPIC_BASE_URL, Playwright and Debian's
  chromium), the time from the fake's first reasoning delta leaving the server to the first word
  in the Player's bubble, at the app's default animation speed (goal <= 0.2 s; best and median of
  a few exchanges).
"""

from __future__ import annotations

import json
import secrets
import statistics
import string
import tempfile
import time
from pathlib import Path

import anthropic

import core
from core import prices
from core.claude import agents as claude
from tests.support.fake_anthropic import CRITIQUE, GOOD_PROPOSAL, THIN_PROPOSAL, FakeAnthropic, tool

KEY = "sk-ant-bench-" + "".join(secrets.choice(string.ascii_letters) for _ in range(48))
FIRST_WORD_TRIES = 5
WORLD = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)
ROUNDS_TIMED = 60


def _three_rounds() -> dict:
    with FakeAnthropic() as fake:
        fake.enqueue(*[tool(THIN_PROPOSAL), tool(CRITIQUE)] * 3)
        player = claude.ClaudePlayer(KEY, base_url=fake.base_url)
        coach = claude.ClaudeCoach(KEY, base_url=fake.base_url)
        artifact = core.run_exchange_sync(WORLD, core.load_preset("moderate"), core.Portfolio(), player, coach)
        requests = fake.messages_requests
    chars, tokens = [], []
    for r in requests:
        body = r["body"]
        chars.append(sum(len(json.dumps(body[k])) for k in ("tools", "system", "messages")))
        u = r["usage"]
        tokens.append(u["input"] + u["cache_read"] + u["cache_write"])
    later = [r["usage"] for r in requests[2:]]  # rounds 2 and 3: the Player's and the Coach's calls
    read = sum(u["cache_read"] for u in later)
    total = sum(u["input"] + u["cache_read"] + u["cache_write"] for u in later)
    return {
        "outcome_3_rounds": artifact.outcome,
        "prompt_chars_per_request": chars,
        "prompt_tokens_per_request": tokens,
        "prompt_chars_3_rounds": sum(chars),
        "prompt_tokens_3_rounds": sum(tokens),
        "cached_prefix_tokens": requests[0]["usage"]["cache_write"],
        "cache_share_rounds_2_3": round(read / total, 3),
        "cache_share_goal": 0.60,
        "cost_usd_3_rounds": artifact.usage.cost_usd,
        "cost_usd_3_rounds_without_cache": prices.cost_usd(prices.DEFAULT_MODEL, input=sum(tokens),
                                                           output=artifact.usage.output),
    }


def _raw_round(client: anthropic.Anthropic, bodies: list[dict]) -> None:
    """The same two requests streamed with the bare SDK: events read, the final message taken."""
    for body in bodies:
        params = {k: v for k, v in body.items() if k != "stream"}
        with client.messages.stream(**params) as stream:
            for _ in stream:
                pass
            stream.get_final_message()


def _overhead() -> dict:
    constraints = core.load_preset("moderate")
    portfolio = core.Portfolio()
    agent_ms, raw_ms = [], []
    with FakeAnthropic() as fake:  # replies automatically: a good proposal, a short critique
        player = claude.ClaudePlayer(KEY, base_url=fake.base_url)
        coach = claude.ClaudeCoach(KEY, base_url=fake.base_url)
        client = anthropic.Anthropic(api_key=KEY, base_url=fake.base_url, max_retries=0)
        for n in range(ROUNDS_TIMED + 5):
            # one round as the loop drives it: the Player's stream, the rules, the Coach's stream
            start = time.perf_counter()
            played = _result(player.propose(WORLD, constraints, portfolio, []))
            verdict = core.check_proposal(played.value, constraints, portfolio, WORLD)
            _result(coach.critique(played.value, verdict, constraints, WORLD, portfolio))
            agent = time.perf_counter() - start
            bodies = [r["body"] for r in fake.messages_requests[-2:]]
            start = time.perf_counter()
            _raw_round(client, bodies)
            raw = time.perf_counter() - start
            if n >= 5:  # warm-up rounds are not counted
                agent_ms.append(agent * 1000)
                raw_ms.append(raw * 1000)
    return {
        "rounds_timed": ROUNDS_TIMED,
        "raw_stream_ms_per_round": round(statistics.median(raw_ms), 3),
        "agents_ms_per_round": round(statistics.median(agent_ms), 3),
        "agent_overhead_ms_per_round": round(statistics.median(a - r for a, r in zip(agent_ms, raw_ms)), 3),
        "agent_overhead_goal_ms": 5.0,
    }


def _result(stream):
    """Drive an agent generator to its end and return its Turn."""
    while True:
        try:
            next(stream)
        except StopIteration as done:
            return done.value


def _first_word_on_screen() -> dict:
    """Seconds from the first reasoning delta sent by the fake to the first word in the browser's bubble."""
    from playwright.sync_api import sync_playwright

    from tests.support.ui_fixtures import free_port, launch_chromium, start_app, stop_app, wait_for_app

    latencies = []
    # A stream that takes its time, as a model writing does: 20 ms between deltas of 12 characters.
    with FakeAnthropic(delay=0.02) as fake, tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        server = start_app(Path(tmp) / "first-word.db", port := free_port(), {"ANTHROPIC_BASE_URL": fake.base_url})
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(f"http://127.0.0.1:{port}/settings")
            page.get_by_label("API key", exact=True).fill(KEY)
            page.get_by_label("API key", exact=True).press("Enter")
            wait_for_app(page)
            page.get_by_role("button", name="Validate").click()
            page.get_by_text("Key is valid").wait_for()
            page.get_by_test_id("stSidebarNav").get_by_text("Trade Review", exact=True).click()
            page.get_by_role("button", name="Run exchange").wait_for()
            wait_for_app(page)  # the default animation speed: the slider is left alone
            for n in range(FIRST_WORD_TRIES + 1):  # the first one warms the SDK import up, and is not counted
                word = f"Zebra{n}"  # a word no bubble has said before this exchange
                fake.enqueue(tool({**GOOD_PROPOSAL, "reasoning": f"{word} {GOOD_PROPOSAL['reasoning']}"}),
                             tool(CRITIQUE))
                sent = len(fake.messages_requests)
                page.get_by_role("button", name="Run exchange").click()
                page.wait_for_function(
                    # every Player bubble: the last exchange's stays on the page (faded) until this run ends
                    "word => [...document.querySelectorAll('.pc-player .pc-bubble')]"
                    ".some(b => b.textContent.includes(word))",
                    arg=word, polling="raf")
                seen = time.perf_counter()
                if n:
                    latencies.append(seen - fake.messages_requests[sent]["text_at"])
                page.get_by_role("button", name="Run exchange").and_(page.locator(":enabled")).wait_for()
                wait_for_app(page)
        finally:
            browser.close()
            stop_app(server)
    return {"first_word_on_screen_s_best": round(min(latencies), 3),
            "first_word_on_screen_s_median": round(statistics.median(latencies), 3),
            "first_word_on_screen_all_s": [round(x, 3) for x in latencies], "first_word_on_screen_goal_s": 0.2}


def _thinking() -> dict:
    """One round on a model that cannot stop thinking (Opus 5.5) and on the default model, against the fake's
    adaptive thinking: calls (no refused forced tool choice, no repair), thinking tokens and cost."""
    figures = {}
    for label, model in (("default_model", prices.DEFAULT_MODEL), ("always_thinking", "claude-opus-5-5")):
        with FakeAnthropic() as fake:
            player = claude.ClaudePlayer(KEY, model=model, base_url=fake.base_url)
            coach = claude.ClaudeCoach(KEY, model=model, base_url=fake.base_url)
            artifact = core.run_exchange_sync(WORLD, core.load_preset("moderate"), core.Portfolio(), player, coach)
            figures.update({f"{label}_calls_per_round": len(fake.messages_requests) / artifact.rounds_taken,
                            f"{label}_thinking_tokens_per_call": artifact.usage.thinking // len(fake.messages_requests),
                            f"{label}_cost_usd_per_round": round(artifact.usage.cost_usd / artifact.rounds_taken, 6)})
    return figures


def run() -> dict:
    """The measured figures of the Claude agents (see the module docstring)."""
    return {**_three_rounds(), **_overhead(), **_thinking(), **_first_word_on_screen()}


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name}: {value}")
