"""The exchanges outside agents play over MCP: each runs inside `run_exchange`, paused between rounds.

An outside agent cannot be called like the house Player: it calls us. So its Player object is fed:
`ExternalPlayer.propose` yields an empty fragment and waits there (the loop's generator simply is
not advanced) until `submit_proposal` hands it the round's proposal. Everything else, from the
breakers to the outcome and the per-round writes, is `run_exchange`'s, so no rule is written twice.

The desk also bounds what one client may ask of it: open exchanges, consultations per hour, a
minimum interval between them, and how long an exchange may wait for its next proposal.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from core.exchange.agent import Coach, Turn
from core.exchange.errors import InvalidInput
from core.exchange.guard import AgentLimits
from core.exchange.loop import BreakerTripped, Event, ExchangeFinished, VerdictReached, stop
from core.journal.record import run_exchange  # the loop, recorded in `store` when there is one
from core.exchange.schema import Constraints, Portfolio, Proposal, WorldState
from core.exchange.artifact import Artifact, Round

HOUR_S = 3600.0
MAX_REASONING = AgentLimits().max_text
"""The longest reasoning stored from outside: what a user's own agent may stream in a turn."""


@dataclass(frozen=True)
class Limits:
    """What one client (its name and version from the MCP handshake) may ask of the server.

    The defaults are the README's; `python -m core mcp --help` shows the options that change them.
    """

    open_exchanges: int = 3
    open_exchanges_total: int = 100  # all clients together: client names are the clients' own to choose
    consultations_per_hour: int = 120  # check_proposal, start_exchange, submit_proposal, challenge
    min_interval_s: float = 0.2
    open_timeout_s: float = 1800.0  # an exchange waiting longer for its next proposal ends INTERRUPTED


class ExternalPlayer:
    """The Player of an exchange played from outside this process: its proposals are handed in."""

    def __init__(self, client: str):
        self.name = f"external: {client}"
        self.waiting = False
        self._next: Proposal | None = None

    def hand_in(self, proposal: Proposal) -> None:
        """The next round's proposal, for the loop to take when it is advanced."""
        self._next, self.waiting = proposal, False

    def propose(self, world: WorldState, constraints: Constraints, portfolio: Portfolio, history: list[Round]):
        self.waiting = True
        yield ""  # the loop stops here until the next proposal is handed in
        proposal, self._next = self._next, None
        yield proposal.reasoning
        return Turn(proposal)


class OpenExchange:
    """One exchange under way: its loop, paused while it waits for the outside Player."""

    def __init__(self, client: str, events: Iterator[Event], player: ExternalPlayer, max_rounds: int, opened: float):
        self.client, self.player, self.max_rounds, self.last_seen = client, player, max_rounds, opened
        self.lock = threading.Lock()  # one round at a time: a generator cannot be advanced twice at once
        self._events = events
        self.artifact: Artifact | None = None
        self.breaker: BreakerTripped | None = None

    def advance(self) -> list[Event]:
        """Run the loop until it waits for the next proposal or ends; the events it passed."""
        seen = []
        for event in self._events:
            seen.append(event)
            if isinstance(event, BreakerTripped):
                self.breaker = event
            if isinstance(event, ExchangeFinished):
                self.artifact = event.artifact
                break
            if self.player.waiting:
                break
        return seen

    def interrupt(self, reason: str) -> None:
        """End it INTERRUPTED saying why, keeping every finished round, as a closed tab does."""
        stop(self._events, reason)


@dataclass(frozen=True)
class Opened:
    """An exchange just opened: its id and, when a breaker ended it at once, the breaker and the artifact."""

    run_id: str
    breaker: BreakerTripped | None
    artifact: Artifact | None


@dataclass(frozen=True)
class Played:
    """One round played: its record and, when it ended the exchange, the artifact."""

    record: Round | None
    artifact: Artifact | None
    max_rounds: int


class Desk:
    """The open exchanges of every client and the limits on each client.

    Thread-safe: the MCP SDK runs each tool call on a worker thread. `clock` is monotonic seconds
    (tests pass their own); `now` dates the artifacts as `run_exchange` does.
    """

    def __init__(self, coach: Callable[[], Coach], store=None, limits: Limits = Limits(),
                 clock: Callable[[], float] = time.monotonic, now=None):
        self.limits, self.store = limits, store
        self._coach, self._clock, self._now = coach, clock, now
        self._open: dict[str, OpenExchange] = {}
        self._calls: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.RLock()  # consult() runs inside start()'s hold

    def consult(self, client: str) -> None:
        """Count one consultation of the Coach, or refuse it with the limit it would break."""
        now = self._clock()
        with self._lock:
            calls = self._calls[client]
            while calls and calls[0] <= now - HOUR_S:
                calls.popleft()
            if calls and now - calls[-1] < self.limits.min_interval_s:
                raise InvalidInput(f"too fast: at least {self.limits.min_interval_s:g} s between consultations "
                                   f"per client; wait {self.limits.min_interval_s - (now - calls[-1]):.1f} s")
            if len(calls) >= self.limits.consultations_per_hour:
                raise InvalidInput(f"rate limit: {self.limits.consultations_per_hour} consultations per hour per "
                                   f"client; the next is allowed in {calls[0] + HOUR_S - now:.0f} s")
            calls.append(now)

    def start(self, client: str, world: WorldState, constraints: Constraints, portfolio: Portfolio,
              strategy_id: str | None = None) -> Opened:
        """Open an exchange in which `client` plays the Player (one consultation); the breakers run now, as in
        the loop."""
        self.expire()
        run_id = str(uuid.uuid4())
        with self._lock:
            if len(self._open) >= self.limits.open_exchanges_total:
                raise InvalidInput(f"open exchanges: the server has {len(self._open)} open (its most); try later")
            mine = sum(e.client == client for e in self._open.values())
            if mine >= self.limits.open_exchanges:
                raise InvalidInput(f"open exchanges: this client already has {mine} (the most allowed); finish "
                                   "one with submit_proposal or wait for it to time out")
            self.consult(client)
            player = ExternalPlayer(client)
            events = run_exchange(world, constraints, portfolio, player, self._coach(), store=self.store,
                                  strategy_id=strategy_id, run_id=run_id, now=self._now)
            exchange = self._open[run_id] = OpenExchange(client, events, player, constraints.max_rounds,
                                                               self._clock())
            exchange.lock.acquire()
        self._step(run_id, exchange)
        return Opened(run_id, exchange.breaker, exchange.artifact)

    def submit(self, client: str, run_id: str, proposal: Proposal) -> Played:
        """Play one round of `client`'s open exchange `run_id` with `proposal` (one consultation)."""
        self.expire()
        if len(proposal.reasoning) > MAX_REASONING:
            raise InvalidInput(f"proposal.reasoning: {len(proposal.reasoning):,} characters; at most {MAX_REASONING:,}")
        exchange = self._mine(client, run_id)
        self.consult(client)
        if not exchange.lock.acquire(blocking=False):
            raise InvalidInput(f"exchange {run_id}: a proposal is already being checked; wait for its verdict")
        with self._lock:
            ended = self._open.get(run_id) is not exchange
        if ended:  # it timed out, or the server is stopping, between the look-up and now
            exchange.lock.release()
            raise self._not_open(run_id)
        exchange.player.hand_in(proposal)
        events = self._step(run_id, exchange)
        record = next((e.record for e in events if isinstance(e, VerdictReached)), None)
        return Played(record, exchange.artifact, exchange.max_rounds)

    def _step(self, run_id: str, exchange: OpenExchange) -> list[Event]:
        """Advance an exchange whose lock the caller holds; one that ended, or failed, is no longer open."""
        try:
            events = exchange.advance()
        except BaseException:
            self._close(run_id)  # the loop itself failed (the store, say): nothing more can be played
            raise
        finally:
            exchange.last_seen = self._clock()
            exchange.lock.release()
        if exchange.artifact is not None:
            self._close(run_id)
        return events

    def open_count(self, client: str | None = None) -> int:
        """Exchanges under way: one client's, or all."""
        with self._lock:
            return sum(client is None or e.client == client for e in self._open.values())

    def expire(self) -> None:
        """End INTERRUPTED every exchange that waited longer than the timeout for its next proposal."""
        cutoff = self._clock() - self.limits.open_timeout_s
        with self._lock:
            stale = [(run_id, e) for run_id, e in self._open.items() if e.last_seen < cutoff]
        for run_id, exchange in stale:
            if exchange.lock.acquire(blocking=False):  # a round under way is not waiting
                try:
                    if exchange.last_seen < cutoff:
                        self._interrupt(run_id, exchange, f"timed out: no proposal within "
                                                          f"{self.limits.open_timeout_s:g} s")
                finally:
                    exchange.lock.release()

    def close_all(self) -> None:
        """End INTERRUPTED every open exchange (after the round under way): the client went away or the server
        stops."""
        with self._lock:
            still_open = list(self._open.items())
        for run_id, exchange in still_open:
            with exchange.lock:
                self._interrupt(run_id, exchange, "closed: the client went away or the server stopped")

    def _interrupt(self, run_id: str, exchange: OpenExchange, reason: str) -> None:
        """End an exchange whose lock the caller holds, unless it has ended meanwhile."""
        if self._close(run_id) is exchange:
            exchange.interrupt(reason)

    def _close(self, run_id: str) -> OpenExchange | None:
        with self._lock:
            return self._open.pop(run_id, None)

    def _mine(self, client: str, run_id: str) -> OpenExchange:
        with self._lock:
            exchange = self._open.get(run_id)
        if exchange is not None and exchange.client == client:
            return exchange
        if exchange is not None:
            raise InvalidInput(f"exchange_id: exchange {run_id} belongs to another client")
        raise self._not_open(run_id)

    def _not_open(self, run_id: str) -> InvalidInput:
        """Why `run_id` takes no proposal: it ended (and how), or there is no such exchange."""
        stored = self.store.get_exchange(run_id) if self.store is not None and len(run_id) <= 64 else None
        if stored is not None:
            return InvalidInput(f"exchange_id: exchange {run_id} is closed ({stored.outcome}"
                                f"{', ' + stored.termination_reason if stored.termination_reason else ''}); "
                                "start a new one")
        return InvalidInput(f"exchange_id: no open exchange {run_id[:64]!r}; start_exchange gives the id")
