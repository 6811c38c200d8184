"""Small builders the tests share: entry actions, proposals, distinctive keys."""

from __future__ import annotations

import secrets
import string

from pydantic import BaseModel

import core
from core.exchange.schema import Strict


def entry(side="enter_long", symbol="AMZN", size=0.03, e=264.14, s=262.14, t=267.14) -> dict:
    """An entry action as a dict (what a Player or a file would send)."""
    return {"action_type": side, "symbol": symbol, "size_pct": size, "entry_price": e, "stop_loss": s, "take_profit": t}


def proposal(*actions: dict, reasoning: str = "test") -> core.Proposal:
    return core.Proposal.model_validate({"reasoning": reasoning, "actions": list(actions)})


def make_key() -> str:
    """A fresh, distinctive Anthropic-shaped key, so a stray copy of it anywhere is easy to find."""
    return "sk-ant-test-" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))


def same_as_validated(model) -> bool:
    """Whether a model core built without validation is what validating its values gives: the same values of the same
    types (a count is the float validation makes of it) and the same fields set, in it and in every result model it
    holds (the inputs it holds, Strict models, are copies)."""
    again = type(model).model_validate(model.model_dump(exclude_unset=True))
    return repr(again.model_dump()) == repr(model.model_dump()) and _fields_set(again) == _fields_set(model)


def _fields_set(value):
    if isinstance(value, list):
        return [_fields_set(v) for v in value]
    if not isinstance(value, BaseModel) or isinstance(value, Strict):
        return None
    return sorted(value.model_fields_set), {name: _fields_set(v) for name, v in value.__dict__.items()}
