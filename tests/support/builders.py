"""Small builders the tests share: entry actions, proposals, distinctive keys."""

from __future__ import annotations

import secrets
import string

import core


def entry(side="enter_long", symbol="AMZN", size=0.03, e=264.14, s=262.14, t=267.14) -> dict:
    """An entry action as a dict (what a Player or a file would send)."""
    return {"action_type": side, "symbol": symbol, "size_pct": size, "entry_price": e, "stop_loss": s, "take_profit": t}


def proposal(*actions: dict, reasoning: str = "test") -> core.Proposal:
    return core.Proposal.model_validate({"reasoning": reasoning, "actions": list(actions)})


def make_key() -> str:
    """A fresh, distinctive Anthropic-shaped key, so a stray copy of it anywhere is easy to find."""
    return "sk-ant-test-" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))
