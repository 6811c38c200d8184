"""`make live-check`: one real exchange with Claude as Player and Coach (needs ANTHROPIC_API_KEY).

Skipped, with exit status 0, when the key is not set; never part of `make test`. The spend guard
caps the run at 8 calls and $0.25. Prints the outcome, rounds, tokens, cache share and cost.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402
from core.claude.agents import ClaudeCoach, ClaudePlayer  # noqa: E402
from core.claude.models import validate_key  # noqa: E402
from core.claude.spend_guard import SpendGuard  # noqa: E402
from core.prices import DEFAULT_MODEL  # noqa: E402
from core.exchange.loop import TextFragment, VerdictReached  # noqa: E402


def main() -> int:
    key = os.environ.get("ANTHROPIC_API_KEY", "").strip()
    if not key:
        print("skipped: ANTHROPIC_API_KEY not set")
        return 0
    model = os.environ.get("LIVE_CHECK_MODEL", DEFAULT_MODEL)
    base_url = os.environ.get("ANTHROPIC_BASE_URL") or None
    check = validate_key(key, base_url=base_url, model=model)
    print(f"key check: {check.message}")
    if not check.ok:
        return 1
    guard = SpendGuard(calls_per_hour=8, dollars_per_session=0.25)
    player = ClaudePlayer(key, model=model, base_url=base_url, guard=guard)
    coach = ClaudeCoach(key, model=model, base_url=base_url, guard=guard)
    del key  # from here on the key lives only inside the SDK clients
    world = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185.0, sma5=183.2, sma10=180.1,
                            volume=41_000_000, atr=3.4)
    artifact = None
    speaker = None
    for event in core.run_exchange(world, core.load_preset("moderate"), core.Portfolio(), player, coach):
        if isinstance(event, TextFragment):
            if event.role != speaker:
                speaker = event.role
                print(f"\n[{speaker}] ", end="")
            print(event.text, end="", flush=True)
        elif isinstance(event, VerdictReached):
            speaker = None
            u = event.record.usage
            share = u.cache_read / max(1, u.input + u.cache_read + u.cache_write)
            print(f"\n-- round {event.round}: {event.verdict.decision} {event.verdict.violations} "
                  f"tokens {event.record.tokens} (cache read {share:.0%}, thinking {u.thinking}) ${u.cost_usd:.5f}")
        elif hasattr(event, "artifact"):
            artifact = event.artifact
    print(f"\noutcome {artifact.outcome} after {artifact.rounds_taken} round(s); "
          f"reason {artifact.termination_reason}; {artifact.total_tokens} tokens; "
          f"${artifact.usage.cost_usd:.5f}")
    return 0 if artifact.outcome in ("APPROVE", "REJECT-MAX", "ABORT") else 1


if __name__ == "__main__":
    sys.exit(main())
