"""An exchange's events written to the journal as they come: storage at the edge of a pure loop.

The loop (core.exchange.loop) yields events and stores nothing. `record` sits between it and whoever
watches (a page, the CLI, a backtest): it writes the exchange when it starts, each round as it ends,
and the outcome, then passes every event on. Each write is its own transaction, so a process killed
mid-exchange leaves the exchange INTERRUPTED with every finished round on disk.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from core.exchange import loop
from core.exchange.loop import Event, ExchangeFinished, ExchangeStarted, VerdictReached
from core.exchange.artifact import Artifact
from core.exchange.errors import Interrupted


def record(events: Iterable[Event], store) -> Iterator[Event]:
    """Write an exchange's events to `store` as they come and yield them on, unchanged.

    The exchange is written INTERRUPTED when it starts, each finished round when it ends (the last
    round together with the outcome, in one write), and the outcome when it ends otherwise (a breaker,
    an error). Closing this generator, or an exception in the loop or the consumer, closes the loop and
    records the exchange INTERRUPTED with every finished round and the round under way as it stood;
    `core.exchange.loop.stop` does the same saying why.
    """
    live: Artifact | None = None  # the loop keeps it current; see ExchangeStarted
    written = 0  # how many of live.rounds are on record
    done = False

    def write(event: Event) -> None:
        nonlocal live, written, done
        if isinstance(event, ExchangeStarted):
            live = event.artifact
            store.start_exchange(live)
        elif isinstance(event, VerdictReached):
            if event.last:  # the outcome is on the artifact already: the round and it in one write
                store.finish_exchange(live, event.record)
                done = True
            else:
                store.record_round(live, event.record)
            written = len(live.rounds)
        elif isinstance(event, ExchangeFinished) and not done:
            store.finish_exchange(event.artifact, _unwritten(event.artifact, written))
            done = True

    try:
        for event in events:
            write(event)
            try:
                yield event
            except Interrupted as why:
                if done or not hasattr(events, "throw"):
                    raise
                ended = events.throw(why)  # the loop ends it INTERRUPTED saying why: its ExchangeFinished
                write(ended)
                yield ended
    finally:
        if live is not None and not done:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # the loop ends the exchange INTERRUPTED, keeping the round under way as it stood
            store.finish_exchange(live, _unwritten(live, written))


def _unwritten(artifact: Artifact, written: int):
    """The round not yet on record (the one cut short by an error or a stop), if any."""
    return artifact.rounds[-1] if len(artifact.rounds) > written else None


def run_exchange(world, constraints, portfolio, player, coach, store=None, strategy_id: str | None = None,
                 **options) -> Iterator[Event]:
    """`core.run_exchange`: the loop's events (see core.exchange.loop.run_exchange for `options`),
    recorded in `store` as they come when one is given."""
    events = loop.run_exchange(world, constraints, portfolio, player, coach, strategy_id=strategy_id, **options)
    return events if store is None else record(events, store)


def run_exchange_sync(*args, **kwargs) -> Artifact:
    """`core.run_exchange_sync`: run an exchange to the end (recorded in `store=` when given); its artifact."""
    kwargs.setdefault("stream", False)  # nobody sees the text events: the agents' text is drained whole
    for event in run_exchange(*args, **kwargs):
        pass
    return event.artifact
