"""The models a key may use, and how to ask each one: the Models API's list and capabilities, the key
check, and the thinking settings.

Current Claude models think: some by default (Haiku 5.5, Sonnet 5.5, Opus 5.5), some always (Fable
and Mythos). Thinking tokens are output tokens: billed as output and counted against `max_tokens`,
and a model that thinks refuses a forced tool choice (400). So each model is asked as its
capabilities allow (the Models API's `capabilities.thinking`, else THINKING below):

* thinking can be turned off (`thinking.types.disabled`): `{"type": "disabled"}` and a forced tool
  choice, as the agents have always asked;
* else thinking off between tools (`between_tools`): that, with tool choice auto;
* else the least thinking the model takes: adaptive at the lowest effort it accepts, or a budget of
  1024 tokens (the API's minimum), with tool choice auto and strict tool schemas;
* and `max_tokens` = the room the answer needs + THINKING_ROOM whenever the model may think, so that
  thinking never eats the tool input.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from core.claude.keys import gateway, key_problem, redact
from core.exchange.errors import AgentError
from core.prices import DEFAULT_MODEL, PRICES, RETIRED, RETIRING, THINKING, Behaviour, ModelInfo, canonical, family

# --- thinking ------------------------------------------------------------------------------

THINKING_BUDGET = 1024
"""The smallest `budget_tokens` the API takes (a model that only thinks with a fixed budget)."""
THINKING_ROOM = 4096
"""Tokens of `max_tokens` kept for thinking on top of the answer's room, when a model may think. A margin,
not a measurement (no key here): max_tokens costs nothing unused, and a model that thinks past it is cut
off and gets the one repair, with twice the answer's room."""
EFFORTS = ("low", "medium", "high", "xhigh", "max")


@dataclass(frozen=True)
class ThinkingPlan:
    """How the agents ask one model: its `thinking` and effort settings, whether a forced tool choice
    works, whether it may still think (so `max_tokens` needs room), and what the Models API said of it."""

    thinking: dict | None = None  # the request's `thinking`; None sends none
    effort: str | None = None  # output_config.effort; None sends none
    forced_tool: bool = True
    thinks: bool = False
    max_tokens: int | None = None  # the model's own ceiling, when known
    line: str | None = None  # haiku | sonnet | opus | fable | mythos, from the Models API
    source: str = "table"  # "Models API" or "table"

    def request(self) -> dict:
        """The request parameters this plan adds."""
        params: dict[str, Any] = {}
        if self.thinking is not None:
            params["thinking"] = self.thinking
        if self.effort is not None:
            params["output_config"] = {"effort": self.effort}
        return params

    def max_tokens_for(self, answer: int, auto: bool = False) -> int:
        """max_tokens for an answer that needs `answer` tokens: room for thinking when the model may
        think (or was moved to tool choice auto, where it thinks), within the model's ceiling."""
        room = answer + (THINKING_ROOM if self.thinks or auto else 0)
        return min(room, self.max_tokens) if self.max_tokens else room


def _plan(behaviour: Behaviour | None, effort: str | None = "low", **known: Any) -> ThinkingPlan:
    if behaviour == "can disable":
        return ThinkingPlan({"type": "disabled"}, None, True, False, **known)
    if behaviour == "between tools":
        return ThinkingPlan({"type": "between_tools"}, None, False, False, **known)
    if behaviour == "always":
        return ThinkingPlan({"type": "adaptive", "display": "omitted"}, effort, False, True, **known)
    return ThinkingPlan(None, None, True, False, **known)  # off by default, or unknown


def _supported(node: Any, *path: str) -> bool:
    for name in path:
        node = node.get(name) if isinstance(node, dict) else getattr(node, name, None)
    return bool(node.get("supported") if isinstance(node, dict) else getattr(node, "supported", False))


def plan_from(capabilities: Any, max_tokens: int | None = None, line: str | None = None) -> ThinkingPlan:
    """The plan for a model from the Models API's `capabilities` (an SDK object or its JSON)."""
    known = {"max_tokens": max_tokens, "line": line, "source": "Models API"}
    if not _supported(capabilities, "thinking") or _supported(capabilities, "thinking", "types", "disabled"):
        return _plan("can disable" if _supported(capabilities, "thinking") else None, **known)
    if _supported(capabilities, "thinking", "types", "between_tools"):
        return _plan("between tools", **known)
    effort = next((level for level in EFFORTS if _supported(capabilities, "effort", level)), None) \
        if _supported(capabilities, "effort") else None
    if _supported(capabilities, "thinking", "types", "adaptive"):
        return _plan("always", effort, **known)
    budget = ThinkingPlan({"type": "enabled", "budget_tokens": THINKING_BUDGET, "display": "omitted"}, effort,
                          False, True, **known)
    return budget if _supported(capabilities, "thinking", "types", "enabled") else _plan(None, **known)


def table_plan(model: str) -> ThinkingPlan:
    """The plan for a model from the documented table (no Models API answer)."""
    return _plan(THINKING.get(canonical(model)), line=family(model))


_plans: dict[tuple[str, str], ThinkingPlan] = {}  # (base URL, model): what the Models API said, this process
_plans_lock = threading.Lock()


def thinking_plan(client: Any, model: str) -> ThinkingPlan:
    """How to ask `model` at the client's address: from the Models API (once a process), else the table.

    A failure that may pass (a timeout, a 5xx) uses the table for now and asks again next time.
    """
    where = (str(client.base_url), model)
    with _plans_lock:
        if where in _plans:
            return _plans[where]
    import anthropic  # loaded with the agents already; imported here so `core.prices` users never pay for it

    try:
        info = client.models.retrieve(model, timeout=5.0)  # free, and not worth a long wait: the table stands in
    except anthropic.APIStatusError as exc:
        plan = table_plan(model)
        if exc.status_code >= 500 or exc.status_code in (408, 409, 429):
            return plan
    except (anthropic.APIError, OSError):
        return table_plan(model)
    else:
        capabilities = getattr(info, "capabilities", None)
        line = getattr(info, "line", None)
        plan = (plan_from(capabilities, getattr(info, "max_tokens", None), line) if capabilities is not None
                else _plan(THINKING.get(canonical(model)), line=line or family(model),
                           max_tokens=getattr(info, "max_tokens", None)))
    with _plans_lock:
        _plans[where] = plan
    return plan


def without_settings(plan: ThinkingPlan, model: str, base_url: str) -> ThinkingPlan:
    """The plan for a model that refused its thinking setting (a 400, unbilled): no setting, tool choice
    auto (it may think by default), kept for this address and model from now on."""
    learnt = ThinkingPlan(None, None, forced_tool=False, thinks=True, max_tokens=plan.max_tokens, line=plan.line,
                          source="learnt")
    with _plans_lock:
        _plans[(base_url, model)] = learnt
    return learnt


def forget_plans() -> None:
    """Forget what the Models API said (tests; a key change on Settings)."""
    with _plans_lock:
        _plans.clear()


REFUSES_FORCED_TOOL = frozenset(model for model, behaviour in THINKING.items() if behaviour in ("always", "between tools"))
"""Models whose pages say a forced tool choice returns an error (they cannot stop thinking): asked with
tool choice auto, strict tool schemas and an instruction instead."""
_learnt: set[tuple[str, str]] = set()  # (base URL, model) that answered a forced tool choice with the 400
_learnt_lock = threading.Lock()


def refuses_forced_tool(model: str, base_url: str) -> bool:
    """Whether `model` at `base_url` is known to refuse a forced tool choice (documented, or learnt this process)."""
    return model in REFUSES_FORCED_TOOL or (base_url, model) in _learnt


def learn_refuses_forced_tool(model: str, base_url: str) -> None:
    """Remember that `model` at `base_url` answered a forced tool choice with the thinking 400."""
    with _learnt_lock:
        _learnt.add((base_url, model))


# --- the key check and the model list ------------------------------------------------------

@dataclass(frozen=True)
class KeyCheck:
    """The result of validate_key.

    status: valid | invalid (only a 401 or a malformed key: discard it) | unchecked (the API could
    not be asked now: keep the key) | model refused (the key works, the chosen model not).
    models: the models the key may use, newest first, when the Models API answered.
    """

    status: Literal["valid", "invalid", "unchecked", "model refused"]
    message: str
    models: list[ModelInfo] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "valid"

    @property
    def keep(self) -> bool:
        """Whether the session should hold on to the key: anything but a refused or malformed key."""
        return self.status != "invalid"


def _client(key: str, base_url: str | None, timeout: float):
    import anthropic

    return anthropic.Anthropic(api_key=key, base_url=base_url, max_retries=0, timeout=timeout)


def _models(client: Any, today: date) -> list[ModelInfo]:
    """The Models API's list for this key, newest first, retired models (and overdue ones) left out."""
    listed = []
    for entry in client.models.list(limit=1000):  # the SDK follows the pages
        lifecycle = getattr(entry, "lifecycle", None)
        retires_at = getattr(entry, "retires_at", None)
        retires = retires_at.date().isoformat() if retires_at else RETIRING.get(entry.id)
        if lifecycle == "retired" or entry.id in RETIRED or (retires and retires <= today.isoformat()):
            continue
        deprecated = lifecycle == "deprecated" or entry.id in RETIRING
        capabilities = getattr(entry, "capabilities", None)
        if capabilities is not None:  # the agents of this key need not ask for it again
            with _plans_lock:
                _plans[(str(client.base_url), entry.id)] = plan_from(capabilities, getattr(entry, "max_tokens", None),
                                                                     getattr(entry, "line", None))
        # A gateway may leave out the release date or the name: the list keeps its order, the id names it.
        released = str(getattr(entry, "created_at", None) or "")
        listed.append((released, ModelInfo(id=entry.id, display_name=getattr(entry, "display_name", None) or entry.id,
                                           priced=canonical(entry.id) in PRICES,
                                           retires=retires if deprecated else None,
                                           line=getattr(entry, "line", None))))
    listed.sort(key=lambda pair: pair[0], reverse=True)
    return [info for _, info in listed]


def list_models(api_key: str, base_url: str | None = None, *, timeout: float = 15.0,
                today: date | None = None) -> list[ModelInfo]:
    """The models this key may use, from the Models API, newest first (AgentError, redacted, when it cannot)."""
    import anthropic
    import httpx2

    key = (api_key or "").strip()
    client = _client(key, gateway(base_url), timeout)
    try:
        return _models(client, today or date.today())
    except (anthropic.APIError, httpx2.TransportError) as exc:
        raise AgentError(_listing_failed(exc, key, timeout)) from None
    finally:
        client.close()


def _listing_failed(exc: Exception, key: str, timeout: float) -> str:
    """Why the Models API gave no list, in one sentence (redacted)."""
    from core.claude.transport import advice, error_kind, retry_after

    if getattr(exc, "status_code", None) == 404:
        return "this server has no Models API (404)"
    return redact(advice(error_kind(exc), exc, retry_after(exc), "the Models API", timeout), key).rstrip(".")


def _unchecked(exc: Exception, key: str, timeout: float) -> KeyCheck:
    why = _listing_failed(exc, key, timeout)
    return KeyCheck("unchecked", f"Could not check the key now ({why}). It is kept for this "
                                 "session and used as it is; validate again later to be sure.")


def validate_key(key: str, base_url: str | None = None, model: str | None = None,
                 timeout: float = 15.0, today: date | None = None) -> KeyCheck:
    """Check a key (the Models API) and the chosen model (a free token count) for the Settings page.

    Only a 401 (or a malformed key) says the key is wrong; a 429, a 5xx or no connection means it
    could not be checked now, and the key stays for the session. A 403 on the model says the key
    may not use that model.
    """
    import anthropic
    import httpx2

    from core.claude.transport import advice, error_kind, retry_after

    key = (key or "").strip()
    base_url = gateway(base_url)
    problem = key_problem(key, base_url)
    if problem:
        return KeyCheck("invalid", problem)
    model = model or DEFAULT_MODEL
    client = _client(key, base_url, timeout)
    try:
        try:
            models = _models(client, today or date.today())
        except (anthropic.APIError, httpx2.TransportError) as exc:
            if error_kind(exc) == "auth":
                return KeyCheck("invalid", "The key was rejected (401): check that it is copied whole and still active.")
            return _unchecked(exc, key, timeout)
        try:
            client.messages.count_tokens(model=model, messages=[{"role": "user", "content": "ok"}])
        except (anthropic.APIError, httpx2.TransportError) as exc:
            status = getattr(exc, "status_code", None)
            if status in (403, 404):
                verb = "may not use" if status == 403 else "cannot find"
                return KeyCheck("model refused", f"The key works, but this key {verb} {model} ({status}): "
                                                 "choose another model below.", models)
            why = redact(advice(error_kind(exc), exc, retry_after(exc), model, timeout), key)
            return KeyCheck("valid", f"the Anthropic API accepted it; {model} could not be checked now ({why})",
                            models)
    finally:
        client.close()
    return KeyCheck("valid", f"the Anthropic API accepted it; {model} will play both roles.", models)
