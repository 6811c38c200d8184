"""A fake Anthropic Messages API on localhost, standard library only.

It speaks the real streaming protocol (server-sent events: message_start with usage and cache
token fields, a tool_use content block whose input arrives as input_json_delta chunks,
content_block_stop, message_delta with stop_reason and output usage, message_stop), answers
GET /v1/models for key checks, and records every request (path, headers, parsed body) so tests
can look at cache markers, tool schemas and the round history. The real `anthropic` SDK talks
to it through `base_url`: no key, no network.

Replies come from a queue of scripted steps (`server.enqueue(...)`); when the queue is empty the
server answers on its own ("auto"): a valid proposal that the `moderate` preset approves for the
tool `submit_proposal`, a short critique for `submit_critique` / `submit_judgement`, a grade of 4 for
`submit_grade`.

Models think as the current ones do. Each entry of `MODELS` carries the Models API's `capabilities`
(thinking types, effort levels) and `max_tokens`, and how the model thinks when a request sends no
thinking setting (`_thinks`: Haiku, Sonnet and Opus 5.5 and Fable think adaptively by default). A
request is checked against them as the API checks it: a thinking type or effort the model does not
take is a 400, and so is a forced tool choice while thinking is on. A model whose thinking is on
streams a `thinking` block (text and signature) before the tool call; its tokens are counted in
`output_tokens` (and in `output_tokens_details.thinking_tokens`) and against `max_tokens`: thinking
that reaches max_tokens ends the reply there (`stop_reason: "max_tokens"`, no tool call), and a tool
input that no longer fits is cut. An adaptive model thinks more on a longer conversation and at a
higher effort (`thinking_for`); `server.thinking_tokens` or `tool(..., thinking=N)` fixes the amount.
GET /v1/models/{id} answers one model with its capabilities. Errors carry `x-should-retry` as the API
sends it (true for 408, 409, 429 and >= 500).

Prompt caching is modelled the way the API documents it: every block that carries
`cache_control` (tools, then system, then messages) is a breakpoint; a breakpoint whose prefix
reaches the model's minimum (4096 tokens for Haiku 4.5 and Opus 4.5, 1024 otherwise) is written
to the cache the first time and read from it afterwards. Tokens are approximated as
characters / 4 of each block's JSON.

Scenarios (the names `scenario()` and `--scenario` accept):

    approve              round 1: a proposal the moderate preset approves, then a critique
    reject_then_approve  round 1: a proposal with a thin target (REJECT), round 2: a good one
    repair               an invalid proposal (an entry without take_profit), then a valid one
    broken_json          tool input that is not JSON at all (the SDK cannot parse it), then a valid one
    max_tokens           a proposal cut off at max_tokens, then a valid one
    max_tokens_twice     cut off at max_tokens on the first try and on the repair
    auth_401             401 authentication_error on every call (a rejected key)
    rate_limit_429       429 with retry-after: 2, then normal replies
    overloaded_529       529 overloaded_error twice, then normal replies
    drop                 a proposal stream cut mid-way (the connection closes), then normal replies
    slow                 normal replies streamed slowly (`--delay` seconds between chunks)
    thinking             every model refuses a forced tool choice (400, as a model that cannot stop
                         thinking does); the agent falls back to tool choice auto, answered after a
                         thinking block
    refusal              the Player's stream ends with stop_reason "refusal" and stop_details
    stall                a stream that stops sending bytes mid-way (for `--delay` x 100 seconds)
    retry_later          429 with retry-after: 600 (longer than any client waits on its own)

Beyond the messages, it answers GET /v1/models (a list with lifecycle and retirement dates, see
`MODELS`; `server.models` replaces it) and POST /v1/messages/count_tokens (the free call that
checks a model; `server.model_errors[model]` makes it fail for that model).

From a test:

    with FakeAnthropic() as server:
        server.scenario("reject_then_approve")
        agent = ClaudePlayer("sk-ant-test-...", base_url=server.base_url)

From a shell (for UI tests run by hand or by another process):

    python tests/support/fake_anthropic.py --port 8765 --scenario slow --delay 0.05
    ANTHROPIC_BASE_URL=http://127.0.0.1:8765 streamlit run app.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# --- scripted replies ----------------------------------------------------------------------

GOOD_PROPOSAL = {
    "reasoning": "AMZN trades above both averages, so the trend is up. I buy 3 % with the stop three "
                 "dollars below the entry and the target six dollars above it, a reward twice the risk.",
    "actions": [{"action_type": "enter_long", "symbol": "AMZN", "size_pct": 0.03, "entry_price": 185.0,
                 "stop_loss": 182.0, "take_profit": 191.0}],
}
"""Approved by the moderate preset for AMZN at 185: R/R 2.00 >= 1.50, 3 % <= 5 %."""

THIN_PROPOSAL = {
    "reasoning": "AMZN is above its averages; I buy 3 % with a stop at 182 and take profit quickly at 187.",
    "actions": [{"action_type": "enter_long", "symbol": "AMZN", "size_pct": 0.03, "entry_price": 185.0,
                 "stop_loss": 182.0, "take_profit": 187.0}],
}
"""Rejected by the moderate preset: min_risk_reward (187-185)/(185-182) = 0.67 < 1.50."""

INVALID_PROPOSAL = {
    "reasoning": "AMZN is trending up, I buy a small position.",
    "actions": [{"action_type": "enter_long", "symbol": "AMZN", "size_pct": 0.03, "entry_price": 185.0,
                 "stop_loss": 182.0}],
}
"""Fails Proposal validation: an entry needs take_profit."""

BROKEN_JSON = '{"reasoning": "AMZN is trending up, I buy.", "actions": [}'
"""Not JSON: the SDK raises while it accumulates the tool input."""

CRITIQUE = {"feedback": "The checks are clean: the size is within the limit and the target pays twice the risk."}

GRADE = {"score": 4, "reason": "The trend justifies the long and the stated stop, target and size match the action."}
"""The grader's automatic answer (tool submit_grade)."""


def tool(input: dict | str, *, name: str | None = None, chunk: int = 12, delay: float = 0.0,
         stop_reason: str = "tool_use", output_tokens: int | None = None, drop_after: int | None = None,
         stop_details: dict | None = None, stall_after: int | None = None, stall_s: float = 0.0,
         drop_before_stop: bool = False, thinking: int | None = None) -> dict:
    """A streamed tool call. `input` is a dict (sent as JSON) or raw JSON text (possibly broken).

    stop_reason "max_tokens" sends only the first half of the JSON, as a truncated answer does;
    "refusal" sends the first third, then stop_details with the refusal's category and explanation.
    drop_after N closes the connection after N input_json_delta chunks, without ending the body.
    stall_after N sends nothing for `stall_s` seconds after N chunks (a stalled stream), then goes on.
    drop_before_stop closes the connection after message_delta (usage reported), before message_stop.
    name None answers with the tool the request forced (or, with tool choice auto, the one it names).
    thinking N: a model whose thinking is on thinks N tokens first (None: as much as the model would).
    """
    return {"kind": "tool", "input": input, "name": name, "chunk": chunk, "delay": delay,
            "stop_reason": stop_reason, "output_tokens": output_tokens, "drop_after": drop_after,
            "stop_details": stop_details, "stall_after": stall_after, "stall_s": stall_s,
            "drop_before_stop": drop_before_stop, "thinking": thinking}


def refusal(input: dict | None = None, category: str | None = "cyber",
            explanation: str | None = "This request was declined because it could enable cyber harm.") -> dict:
    """A stream the safety classifiers stop: part of the answer, then stop_reason refusal."""
    return tool(input or GOOD_PROPOSAL, stop_reason="refusal",
                stop_details={"type": "refusal", "category": category, "explanation": explanation})


def stall(input: dict | None = None, after: int = 3, seconds: float = 5.0) -> dict:
    """A stream that stops sending bytes after `after` chunks for `seconds` (the client gives up first)."""
    return tool(input or GOOD_PROPOSAL, stall_after=after, stall_s=seconds)


def error(status: int, kind: str, message: str, retry_after: float | None = None,
          should_retry: bool | None = None) -> dict:
    """An HTTP error reply in the API's JSON error shape; `x-should-retry` as the API sends it (true for
    408, 409, 429 and >= 500) unless should_retry says otherwise."""
    return {"kind": "error", "status": status, "type": kind, "message": message, "retry_after": retry_after,
            "should_retry": should_retry}


def unauthorized() -> dict:
    return error(401, "authentication_error", "invalid x-api-key")


def rate_limited(retry_after: float = 2) -> dict:
    return error(429, "rate_limit_error", "Number of requests has exceeded your rate limit.", retry_after)


def overloaded() -> dict:
    return error(529, "overloaded_error", "Overloaded")


THOUGHT = "PRIVATE THOUGHT: the trend is up and the size is within the limit"
"""The text of every thinking block (sent whatever `display` asks, as a gateway might): never to be shown or stored."""

FORCED_TOOL_REFUSED = ("Thinking may not be enabled when tool_choice forces tool use.")


def forced_tool_refused() -> dict:
    """The 400 a model that always thinks answers to a forced tool choice."""
    return error(400, "invalid_request_error", FORCED_TOOL_REFUSED)


EFFORTS = ("low", "medium", "high", "xhigh", "max")
EFFORT_SCALE = {"low": 0.5, "medium": 1.0, "high": 2.0, "xhigh": 4.0, "max": 8.0}
"""How much more an adaptive model thinks at each effort than at medium."""


def capabilities(*, disabled: bool = True, adaptive: bool = False, enabled: bool = False,
                 between_tools: bool = False, effort: bool = True) -> dict:
    """The Models API's `capabilities` of a model, every key present as the API sends it."""
    def yes(value: bool) -> dict:
        return {"supported": bool(value)}

    thinks = adaptive or enabled or between_tools
    return {"batch": yes(True), "citations": yes(True), "code_execution": yes(False),
            "context_management": {"supported": False, "clear_thinking_20251015": None,
                                   "clear_tool_uses_20250919": None, "compact_20260112": None},
            "effort": {"supported": effort, **{level: yes(effort) for level in EFFORTS}},
            "image_input": yes(True), "pdf_input": yes(True),
            "server_tools": {"supported": False, "code_execution": yes(False), "web_search": yes(False)},
            "structured_outputs": yes(True),
            "thinking": {"supported": thinks, "types": {"adaptive": yes(adaptive), "between_tools": yes(between_tools),
                                                        "disabled": yes(disabled), "enabled": yes(enabled)}}}


def _model(id: str, name: str, released: str, line: str | None, caps: dict | None, thinks: str | None = None,
           default_effort: str = "high", **lifecycle) -> dict:
    """A Models API entry; the keys starting with _ are the fake's own (how the model behaves), never sent."""
    return {"id": id, "display_name": name, "created_at": f"{released}T00:00:00Z", "lifecycle": "active", "line": line,
            "capabilities": caps, "max_tokens": 128_000, "max_input_tokens": 1_000_000, **lifecycle,
            "_thinks": thinks, "_effort": default_effort}


ALWAYS_THINKS = capabilities(disabled=False, adaptive=True)
MODELS = [
    _model("claude-haiku-5-5", "Claude Haiku 5.5", "2026-10-07", "haiku", capabilities(adaptive=True),
           thinks="adaptive", default_effort="medium"),
    _model("claude-sonnet-5-5", "Claude Sonnet 5.5", "2026-09-24", "sonnet",
           capabilities(disabled=False, adaptive=True, between_tools=True), thinks="adaptive"),
    _model("claude-opus-5-5", "Claude Opus 5.5", "2026-09-22", "opus", ALWAYS_THINKS, thinks="adaptive",
           default_effort="medium"),
    _model("claude-fable-5-2", "Claude Fable 5.2", "2026-11-09", "fable", ALWAYS_THINKS, thinks="adaptive"),
    _model("claude-fable-5-1", "Claude Fable 5.1", "2026-09-01", "fable", ALWAYS_THINKS, thinks="adaptive"),
    _model("claude-sonnet-4-6", "Claude Sonnet 4.6", "2026-02-17", "sonnet", capabilities(adaptive=True, enabled=True)),
    _model("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-01", "haiku",
           capabilities(enabled=True, effort=False)),
    _model("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29", "sonnet",
           capabilities(enabled=True, effort=False), lifecycle="deprecated", deprecated_at="2026-08-30T00:00:00Z",
           retires_at="2026-11-30T00:00:00Z"),
    _model("claude-opus-4-1-20250805", "Claude Opus 4.1", "2025-08-05", "opus", capabilities(enabled=True, effort=False),
           lifecycle="retired", deprecated_at="2026-05-01T00:00:00Z", retires_at="2026-08-05T00:00:00Z"),
]
"""What GET /v1/models answers by default (not in release order on purpose: the client sorts newest first).
`_thinks` is how a model thinks when a request sends no thinking setting (None: it does not); an
adaptive model thinks more on a longer prompt and at a higher effort (`thinking_for`)."""


def public(model: dict) -> dict:
    """A model entry as the API sends it (the fake's own keys left out)."""
    return {"type": "model", "deprecated_at": None, "retires_at": None,
            **{k: v for k, v in model.items() if not k.startswith("_")}}


def thinking_for(body: dict, effort: str) -> int:
    """Tokens an adaptive model thinks on this request: more for a longer (harder) conversation, more at
    a higher effort (about 640 on a first round at medium, well over 1,000 on a revision)."""
    return int(EFFORT_SCALE[effort] * (200 + approx_tokens(body.get("messages")) // 2))


def scenario_steps(name: str, delay: float = 0.05) -> tuple[list[dict], dict]:
    """(steps to enqueue, server settings) for a named scenario."""
    critique = tool(CRITIQUE)
    table: dict[str, tuple[list[dict], dict]] = {
        "approve": ([tool(GOOD_PROPOSAL), critique], {}),
        "reject_then_approve": ([tool(THIN_PROPOSAL), critique, tool(GOOD_PROPOSAL), critique], {}),
        "repair": ([tool(INVALID_PROPOSAL), tool(GOOD_PROPOSAL), critique], {}),
        "broken_json": ([tool(BROKEN_JSON), tool(GOOD_PROPOSAL), critique], {}),
        "max_tokens": ([tool(GOOD_PROPOSAL, stop_reason="max_tokens"), tool(GOOD_PROPOSAL), critique], {}),
        "max_tokens_twice": ([tool(GOOD_PROPOSAL, stop_reason="max_tokens")] * 2, {}),
        "auth_401": ([], {"always": unauthorized()}),
        "rate_limit_429": ([rate_limited(2), tool(GOOD_PROPOSAL), critique], {}),
        "overloaded_529": ([overloaded(), overloaded(), tool(GOOD_PROPOSAL), critique], {}),
        "drop": ([tool(GOOD_PROPOSAL, chunk=8, drop_after=4), tool(GOOD_PROPOSAL), critique], {}),
        "slow": ([], {"delay": delay}),
        "thinking": ([], {"refuse_forced": True}),
        "refusal": ([refusal()], {}),
        "stall": ([stall(seconds=delay * 100)], {}),
        "retry_later": ([rate_limited(600)], {}),
    }
    if name not in table:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(table)}")
    return table[name]


SCENARIOS = ("approve", "reject_then_approve", "repair", "broken_json", "max_tokens", "max_tokens_twice", "auth_401",
             "rate_limit_429", "overloaded_529", "drop", "slow", "thinking", "refusal", "stall", "retry_later")


# --- token and cache accounting ------------------------------------------------------------

def approx_tokens(value: object) -> int:
    """The fake's token count: characters of the JSON / 4, at least 1."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return max(1, len(text) // 4)


def minimum_cacheable(model: str) -> int:
    """The documented minimum cacheable prefix, in tokens, for a model."""
    return 4096 if ("haiku-4-5" in model or "opus-4-5" in model) else 1024


def _blocks(body: dict) -> list[dict]:
    """The prompt in cache order (tools, system, messages) as a flat list of blocks."""
    blocks = list(body.get("tools") or [])
    system = body.get("system") or []
    blocks += [{"type": "text", "text": system}] if isinstance(system, str) else list(system)
    for message in body.get("messages") or []:
        content = message["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        blocks += [{"role": message["role"], **block} for block in content]
    return blocks


class PromptCache:
    """Prefixes written at cache breakpoints, by hash (shared by every request to one server)."""

    def __init__(self) -> None:
        self.prefixes: set[str] = set()
        self.lock = threading.Lock()

    def account(self, body: dict, minimum: int) -> tuple[int, int, int]:
        """(uncached input, cache write, cache read) tokens for one request."""
        digest = hashlib.sha256()
        total = 0
        read = 0
        breakpoints: list[tuple[str, int]] = []
        with self.lock:
            for block in _blocks(body):
                marked = "cache_control" in block
                plain = {k: v for k, v in block.items() if k != "cache_control"}
                digest.update(json.dumps(plain, sort_keys=True).encode())
                total += approx_tokens(plain)
                key = digest.hexdigest()
                if key in self.prefixes:
                    read = total  # the longest cached prefix at a block boundary
                if marked:
                    breakpoints.append((key, total))
            write_end = 0
            for key, tokens in breakpoints:
                if tokens >= minimum:
                    self.prefixes.add(key)
                    write_end = max(write_end, tokens)
        write = max(0, write_end - read)
        return total - read - write, write, read


# --- the server ----------------------------------------------------------------------------

class FakeAnthropic:
    """The fake server: start() / stop() or a `with` block; base_url, requests, enqueue()."""

    def __init__(self, port: int = 0, delay: float = 0.0, min_cache_tokens: int | None = None) -> None:
        self.queue: deque[dict] = deque()
        self.requests: list[dict] = []
        self.delay = delay
        self.always: dict | None = None
        self.min_cache_tokens = min_cache_tokens
        self.models: list[dict] | None = list(MODELS)  # None: GET /v1/models answers 404
        self.model_errors: dict[str, dict] = {}  # model -> error step for count_tokens and messages
        self.refuse_forced: set[str] | bool = set()  # models (or True: all) that 400 a forced tool choice
        self.thinking_tokens: int | None = None  # every thinking model thinks this much (None: as it would)
        self.released = threading.Event()  # set on stop(): a stalled stream gives up its wait
        self.cache = PromptCache()
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"fake": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeAnthropic:
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), name="fake-anthropic",
                                       daemon=True)  # a short poll: stop() returns at once
        self.thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def enqueue(self, *steps: dict) -> None:
        """Script the next replies, in order."""
        with self.lock:
            self.queue.extend(steps)

    def scenario(self, name: str, delay: float = 0.05) -> None:
        """Load a named scenario (see the module docstring)."""
        steps, settings = scenario_steps(name, delay)
        self.enqueue(*steps)
        self.always = settings.get("always", self.always)
        self.delay = settings.get("delay", self.delay)
        if settings.get("refuse_forced"):
            self.refuse_forced = True

    def refuses_forced(self, model: str) -> bool:
        """Whether this model answers a forced tool choice with the thinking 400."""
        return self.refuse_forced is True or model in self.refuse_forced

    def next_step(self) -> dict | None:
        with self.lock:
            if self.always is not None:
                return self.always
            return self.queue.popleft() if self.queue else None

    def model(self, model: str) -> dict | None:
        """The Models API entry of a model (None: not listed, or no Models API)."""
        return next((m for m in self.models or [] if m["id"] == model), None)

    @property
    def messages_requests(self) -> list[dict]:
        """The recorded POST /v1/messages requests (the token counts left out)."""
        return [r for r in self.requests if r["path"].split("?")[0] == "/v1/messages"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked bodies, so a dropped stream is visibly incomplete
    fake: FakeAnthropic

    def log_message(self, format: str, *args) -> None:  # keep test output clean
        pass

    def setup(self) -> None:
        super().setup()
        # Each event goes out as soon as it is written, as the real API streams; without this,
        # Nagle's algorithm and delayed ACKs hold small SSE chunks back for tens of ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- plumbing --

    def _record(self, body: dict | None) -> dict:
        entry = {"method": self.command, "path": self.path,
                 "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body, "usage": None}
        with self.fake.lock:
            self.fake.requests.append(entry)
        return entry

    def _key(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return self.headers.get("x-api-key") or (auth[7:] if auth.lower().startswith("bearer ") else None)

    def _json(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", "req_" + uuid.uuid4().hex[:12])
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, step: dict) -> None:
        headers = {"retry-after": str(step["retry_after"])} if step.get("retry_after") is not None else {}
        # As the API does: x-should-retry says whether trying again may help (a step may say otherwise).
        should = step.get("should_retry")
        if should is None:
            should = step["status"] in (408, 409, 429) or step["status"] >= 500
        headers["x-should-retry"] = "true" if should else "false"
        self._json(step["status"], {"type": "error", "error": {"type": step["type"], "message": step["message"]}},
                   headers)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _event(self, name: str, payload: dict) -> None:
        self._chunk(f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode())

    # -- routes --

    def do_GET(self) -> None:
        self._record(None)
        if not self._key():
            return self._error(unauthorized())
        if self.path.startswith("/v1/models"):
            step = self.fake.always
            if step is not None and step["kind"] == "error":
                return self._error(step)
            if self.fake.models is None:  # a gateway without the Models API
                return self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})
            # As the API does: retired models only when asked for (lifecycle=retired).
            one = self.path.split("?")[0][len("/v1/models/"):]
            if one:  # GET /v1/models/{id}: one model, its capabilities included
                found = self.fake.model(one)
                if found is None:
                    return self._json(404, {"type": "error", "error": {"type": "not_found_error",
                                                                       "message": f"model: {one}"}})
                return self._json(200, public(found))
            listed = [public(m) for m in self.fake.models if m.get("lifecycle") != "retired" or "retired" in self.path]
            ids = [m["id"] for m in listed]
            return self._json(200, {"data": listed, "has_more": False, "first_id": ids[0] if ids else None,
                                    "last_id": ids[-1] if ids else None})
        self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.entry = self._record(body)
        if not self._key():
            return self._error(unauthorized())
        if not self.path.startswith("/v1/messages"):
            return self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})
        model = body.get("model", "")
        if self.path.startswith("/v1/messages/count_tokens"):
            step = self.fake.model_errors.get(model) or (self.fake.always if (self.fake.always or {}).get("kind")
                                                          == "error" else None)
            if step is not None:
                return self._error(step)
            return self._json(200, {"input_tokens": approx_tokens(body.get("messages"))})
        if model in self.fake.model_errors:
            return self._error(self.fake.model_errors[model])
        thinking, refused = self._thinking(body, model)
        if refused is not None:
            return self._error(refused)  # before the queue: the scripted reply is still owed
        forced = (body.get("tool_choice") or {}).get("type") in ("tool", "any")
        if forced and (self.fake.refuses_forced(model) or thinking is not None):
            return self._error(forced_tool_refused())
        self.effort = thinking  # how this request thinks (None: it does not), for _send_stream
        step = self.fake.next_step()
        if step is None:
            step = tool(self._auto_input(body))
        if step["kind"] == "error":
            return self._error(step)
        self._stream(body, step)

    def _thinking(self, body: dict, model: str) -> tuple[str | None, dict | None]:
        """(effort this request thinks at, or None when it does not think; the 400 its settings earn, if any),
        as the API checks a request against the model's capabilities."""
        entry = self.fake.model(model) or {}
        caps = entry.get("_capabilities") or entry.get("capabilities")  # what it takes, reported or not
        sent = body.get("thinking")
        kind = sent.get("type") if isinstance(sent, dict) else ("adaptive" if entry.get("_thinks") else "disabled")
        effort = (body.get("output_config") or {}).get("effort")
        if caps is not None:
            if sent is not None and not caps["thinking"]["types"].get(kind, {}).get("supported"):
                return None, error(400, "invalid_request_error", f"thinking.type: {kind!r} is not supported by {model}")
            if effort is not None and not caps["effort"].get(effort, {}).get("supported"):
                return None, error(400, "invalid_request_error", f"output_config.effort: {effort!r} is not supported "
                                                                 f"by {model}")
        if kind == "enabled":
            budget = sent.get("budget_tokens") or 0
            if not 1024 <= budget < body.get("max_tokens", 0):
                return None, error(400, "invalid_request_error",
                                   "thinking.budget_tokens: must be at least 1024 and less than max_tokens")
        if kind in ("adaptive", "enabled"):
            return effort or entry.get("_effort") or "high", None
        return None, None

    def _forced_tool(self, body: dict) -> str:
        """The tool the request forces or, with tool choice auto, the one its last user turn asks for."""
        choice = body.get("tool_choice") or {}
        if choice.get("name"):
            return choice["name"]
        names = [t["name"] for t in body.get("tools") or []] or ["answer"]
        last = (body.get("messages") or [{}])[-1].get("content") or []
        said = " ".join(b.get("text", "") for b in last if isinstance(b, dict)) if isinstance(last, list) else last
        return next((n for n in names if f"calling the tool {n}" in said), names[0])

    def _auto_input(self, body: dict) -> dict:
        name = self._forced_tool(body)
        if name == "submit_proposal":
            return GOOD_PROPOSAL
        if name == "submit_judgement":
            return {**CRITIQUE, "decision": "APPROVE", "violations": []}
        if name == "submit_grade":
            return GRADE
        return CRITIQUE

    def _stream(self, body: dict, step: dict) -> None:
        try:
            self._send_stream(body, step)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a stall it detected): nothing to do

    def _send_stream(self, body: dict, step: dict) -> None:
        model = body.get("model", "claude-haiku-4-5-20251001")
        minimum = self.fake.min_cache_tokens or minimum_cacheable(model)
        uncached, write, read = self.fake.cache.account(body, minimum)
        raw = step["input"] if isinstance(step["input"], str) else json.dumps(step["input"])
        if step["stop_reason"] == "max_tokens":
            raw = raw[: len(raw) // 2]
        elif step["stop_reason"] == "refusal":
            raw = raw[: len(raw) // 3]
        effort = self.effort
        thinking, raw, answer_tokens, stop_reason = self._budget(body, step, raw, effort)
        output_tokens = thinking + answer_tokens
        started = {"input_tokens": uncached, "cache_creation_input_tokens": write, "cache_read_input_tokens": read}
        # What this reply reports in the end, so tests can sum it: a dropped stream never gets past
        # message_start, whose usage (input and cache, output 1) is all the client learns.
        self.entry["usage"] = {"input": uncached, "cache_write": write, "cache_read": read,
                               "output": 1 if step["drop_after"] is not None else output_tokens, "thinking": thinking}
        delay = step["delay"] or self.fake.delay
        name = step["name"] or self._forced_tool(body)
        # A model whose thinking is on thinks first: a thinking block with its signature, then the call.
        thinks = effort is not None and thinking > 0

        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", "req_" + uuid.uuid4().hex[:12])
        self.end_headers()
        message_id = "msg_" + uuid.uuid4().hex[:20]
        self._event("message_start", {"type": "message_start", "message": {
            "id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {**started, "output_tokens": 1}}})
        index = 0
        if thinks:
            self._thinking_block(index, thinking)
            index += 1
        if not raw and stop_reason == "max_tokens":
            return self._finish(index, stop_reason, started, output_tokens, thinking, step, open_block=False)
        self._event("content_block_start", {"type": "content_block_start", "index": index, "content_block": {
            "type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:20], "name": name, "input": {}}})
        self._event("ping", {"type": "ping"})
        size = max(1, step["chunk"])
        text_from = raw.find('": "') + 4 if '": "' in raw else len(raw)  # where the first text value starts
        for n, start in enumerate(range(0, len(raw), size)):
            if step["drop_after"] is not None and n >= step["drop_after"]:
                return self._cut()
            if step["stall_after"] is not None and n == step["stall_after"]:
                self.wfile.flush()
                self.fake.released.wait(step["stall_s"])  # no bytes: the client's read timeout runs out
            if delay:
                time.sleep(delay)
            self._event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {
                "type": "input_json_delta", "partial_json": raw[start:start + size]}})
            if "text_at" not in self.entry and start + size > text_from:
                self.entry["text_at"] = time.perf_counter()  # the first delta with words in it has left
        self._finish(index, stop_reason, started, output_tokens, thinking, step)

    def _budget(self, body: dict, step: dict, raw: str, effort: str | None) -> tuple[int, str, int, str]:
        """(thinking tokens, the tool input that fits, its tokens, stop reason) within the request's max_tokens."""
        thinking = 0
        if effort is not None:
            fixed = next((n for n in (step.get("thinking"), self.fake.thinking_tokens) if n is not None), None)
            thinking = fixed if fixed is not None else thinking_for(body, effort)
            budget = (body.get("thinking") or {}).get("budget_tokens")
            thinking = min(thinking, budget) if budget else thinking
        limit = body.get("max_tokens") or 4096
        answer_tokens = step["output_tokens"] or approx_tokens(raw) + 10
        if thinking >= limit:  # thinking took the whole budget: no tool call at all
            return limit, "", 0, "max_tokens"
        if thinking + answer_tokens > limit:  # the tool input is cut where max_tokens runs out
            answer_tokens = limit - thinking
            return thinking, raw[: max(0, answer_tokens - 10) * 4], answer_tokens, "max_tokens"
        return thinking, raw, answer_tokens, step["stop_reason"]

    def _finish(self, index: int, stop_reason: str, started: dict, output_tokens: int, thinking: int, step: dict,
                open_block: bool = True) -> None:
        if open_block:
            self._event("content_block_stop", {"type": "content_block_stop", "index": index})
        self._event("message_delta", {"type": "message_delta",
                                      "delta": {"stop_reason": stop_reason, "stop_sequence": None,
                                                "stop_details": step["stop_details"]},
                                      # cumulative totals, as the API sends them: a client that
                                      # added them to message_start's would count the input twice
                                      "usage": {**started, "output_tokens": output_tokens,
                                                "output_tokens_details": {"thinking_tokens": thinking}}})
        if step["drop_before_stop"]:
            return self._cut()
        self._event("message_stop", {"type": "message_stop"})
        self._chunk(b"")  # end of the chunked body

    def _thinking_block(self, index: int, tokens: int) -> None:
        self._event("content_block_start", {"type": "content_block_start", "index": index, "content_block": {
            "type": "thinking", "thinking": "", "signature": ""}})
        self._event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {
            "type": "thinking_delta", "thinking": f"{THOUGHT} ({tokens} tokens of it)."}})
        self._event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {
            "type": "signature_delta", "signature": "c2lnbmF0dXJl"}})
        self._event("content_block_stop", {"type": "content_block_stop", "index": index})

    def _cut(self) -> None:
        """Close the connection without the final zero-length chunk: an incomplete body."""
        self.close_connection = True
        self.wfile.flush()
        self.connection.shutdown(2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the fake Anthropic server until Ctrl-C.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--scenario", choices=SCENARIOS, default="approve",
                        help="scripted replies first; afterwards every call is answered automatically")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds between deltas (slow scenario)")
    parser.add_argument("--thinking", type=int, default=None,
                        help="tokens every thinking model thinks (default: as much as the prompt asks)")
    args = parser.parse_args(argv)
    server = FakeAnthropic(port=args.port)
    server.thinking_tokens = args.thinking
    server.scenario(args.scenario, delay=args.delay)
    server.start()
    print(f"fake Anthropic server on {server.base_url} (scenario {args.scenario}); Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
