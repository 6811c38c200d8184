"""The app's errors: one family, so a caller that means "anything of ours" catches one class.

Every message is fit to show a trader as it is: it names the field, file or symbol and the value,
quotes at most a short excerpt of what it was given, and never carries an API key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # errors sit below every other module: no import of schema at run time
    from core.exchange.artifact import Usage


def _billed(usage: Usage | None) -> Usage:
    from core.exchange.artifact import NO_USAGE

    return NO_USAGE if usage is None else usage


class PlayerCoachError(Exception):
    """Base of every error the engine raises on purpose."""


class InvalidInput(PlayerCoachError, ValueError):
    """Input that failed validation; the message names the field and the value.

    Also a ValueError, so pydantic validators may raise it and older callers still catch it.
    """


class StoreError(PlayerCoachError):
    """The database file cannot be used; the message names the file and the reason."""


class MarketDataError(PlayerCoachError, ValueError):
    """Bars that cannot be used; the message names the symbol and the problem."""


class AgentError(PlayerCoachError):
    """An agent could not produce a valid answer; the message is shown to the user as is.

    `usage` is what the failed turn had already been billed (failed attempts, a dropped stream),
    so the exchange's cost stays true when it ends early.
    """

    def __init__(self, message: str = "", usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = _billed(usage)


class RetryLater(AgentError):
    """The API asked to wait longer than the agent may wait on its own; `wait_s` says how long.

    The exchange ends ERROR with that wait in its reason, and the trader may run it again then.
    """

    def __init__(self, message: str, wait_s: float, usage: Usage | None = None) -> None:
        super().__init__(message, usage)
        self.wait_s = wait_s


class SpendLimitReached(PlayerCoachError):
    """The spend guard refused a paid call; the exchange ends ABORT with reason spend_guard.

    Not an AgentError: the loop tells the two apart by class, whatever order it catches them in.
    `usage` is what the turn had already been billed before the refusal.
    """

    def __init__(self, message: str = "", usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = _billed(usage)


class Interrupted(Exception):
    """Thrown into an exchange's events to end it INTERRUPTED saying why, its message being the reason
    (`core.exchange.loop.stop`). Not an error of the engine: whoever plays the exchange stops it."""
