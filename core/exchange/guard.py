"""A user's own agent runs on a leash: a time limit per turn and a cap on the text it streams.

An agent loaded from a module path or an entry point is code we did not write. It may loop forever,
stream text forever, or raise SystemExit or KeyboardInterrupt, which would end the command line with
the APPROVE code or take the page down. `Guarded` runs each turn in a worker thread and relays its
fragments: a turn that overruns its time or its text, or raises anything at all, becomes an
AgentError, so the exchange ends ERROR with what was said so far kept. The house and Claude agents
are ours and run unguarded.
"""

from __future__ import annotations

import ctypes
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from core.exchange.errors import AgentError

GUARDED_METHODS = ("propose", "critique")


@dataclass(frozen=True, slots=True)
class AgentLimits:
    """How long one turn of a user's agent may take, and how much text it may stream in it."""

    turn_seconds: float = 60.0
    max_text: int = 20_000  # characters; a Player's reasoning is a few hundred


class _Abandoned(BaseException):
    """Raised inside a worker thread whose turn the exchange has given up on."""


def _abandon(worker: threading.Thread) -> None:
    """Stop a runaway turn: raise _Abandoned in its thread at its next bytecode (a thread cannot be killed;
    an agent blocked inside C code ends when that call returns, and is a daemon meanwhile)."""
    if worker.is_alive() and worker.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident), ctypes.py_object(_Abandoned))


def _run_turn(method, args: tuple, out: queue.Queue) -> None:
    try:
        answer = method(*args)
        if isinstance(answer, Iterator):
            while True:
                try:
                    out.put(("text", next(answer)))
                except StopIteration as done:
                    answer = done.value
                    break
        out.put(("done", answer))
    except _Abandoned:
        return
    except BaseException as raised:  # noqa: BLE001 - SystemExit and KeyboardInterrupt from an agent are its failures
        out.put(("raised", raised))


class Guarded:
    """A user's agent, each of its turns run in a worker thread under `limits`."""

    def __init__(self, agent: object, limits: AgentLimits = AgentLimits()):
        self.wrapped, self.limits = agent, limits

    def __getattr__(self, name: str):
        value = getattr(self.wrapped, name)
        if name in GUARDED_METHODS and callable(value):
            return lambda *args: self._turn(name, value, args)
        return value

    def _turn(self, method_name: str, method, args: tuple):
        role = "player" if method_name == "propose" else "coach"
        who = f"the {role} {getattr(self.wrapped, 'name', type(self.wrapped).__name__)}"
        out: queue.Queue = queue.Queue()
        worker = threading.Thread(target=_run_turn, args=(method, args, out), daemon=True, name=f"agent {who}")
        deadline = time.monotonic() + self.limits.turn_seconds
        said = 0
        worker.start()
        try:
            while True:
                try:
                    kind, value = out.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    raise AgentError(f"{who} took longer than {self.limits.turn_seconds:g} s for one turn: "
                                     "stopped (the limit is AgentLimits.turn_seconds)") from None
                if kind == "done":
                    return value
                if kind == "raised":
                    if isinstance(value, Exception):
                        raise value
                    raise AgentError(f"{who} raised {type(value).__name__}({value}): ended, not obeyed") from None
                said += len(value) if isinstance(value, str) else 0
                if said > self.limits.max_text:
                    raise AgentError(f"{who} streamed more than {self.limits.max_text:,} characters in one turn: "
                                     "stopped (the limit is AgentLimits.max_text)")
                yield value
        finally:
            _abandon(worker)
