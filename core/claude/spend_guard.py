"""The spend guard: limits on paid calls, shared by both Claude agents of a session (no SDK here)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from core.exchange.errors import SpendLimitReached


class SpendGuard:
    """Limits on paid calls, shared by both agents of a session: calls per hour and dollars in all.

    `admit()` runs before every request and raises SpendLimitReached instead of letting it go;
    `record(cost, basis)` adds a billed call's dollars. A call already admitted may take the total a
    little past `dollars_per_session`; the next one is refused. None is no limit; the limits may be
    changed at any time (the Settings page does), what was spent is kept.

    The dollar limit can only count what has a price: a call of a model the price table lacks is
    counted at its family's prices (estimated) or, when not even that is known, not at all (it is
    counted in `unpriced_calls` and `summary()` says so). The calls-per-hour limit always holds.
    """

    def __init__(self, calls_per_hour: int | None = None, dollars_per_session: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.calls_per_hour = calls_per_hour
        self.dollars_per_session = dollars_per_session
        self.clock = clock
        self.spent_usd = 0.0
        self.estimated_calls = 0  # calls whose dollars are an estimate from the model's family
        self.unpriced_calls = 0  # calls whose dollars nobody knows: not in spent_usd
        self._calls: list[float] = []
        self._lock = threading.Lock()

    def calls_last_hour(self) -> int:
        """Requests admitted in the last 3600 s of the clock."""
        with self._lock:
            self._forget()
            return len(self._calls)

    def _forget(self) -> None:
        horizon = self.clock() - 3600
        self._calls = [t for t in self._calls if t > horizon]

    def admit(self) -> None:
        """Count one request, or raise SpendLimitReached when a limit is reached (nothing is counted then)."""
        with self._lock:
            self._forget()
            if self.calls_per_hour is not None and len(self._calls) >= self.calls_per_hour:
                raise SpendLimitReached(f"spend guard: {len(self._calls)} API calls in the last hour, "
                                        f"the limit is {self.calls_per_hour}")
            if self.dollars_per_session is not None and self.spent_usd >= self.dollars_per_session:
                raise SpendLimitReached(f"spend guard: ${self.spent_usd:.4f} spent this session, "
                                        f"the limit is ${self.dollars_per_session:.2f}")
            self._calls.append(self.clock())

    def record(self, cost_usd: float, basis: str = "price list") -> None:
        """Add the dollars of a finished request; `basis` is its Usage.cost_basis."""
        with self._lock:
            self.spent_usd = round(self.spent_usd + cost_usd, 8)
            self.estimated_calls += basis == "estimated"
            self.unpriced_calls += basis == "unknown"

    def summary(self) -> str:
        """What was spent against the limits, and what the dollar figure cannot count, in one line."""
        calls = self.calls_last_hour()
        dollars = f"${self.spent_usd:.4f}" + (f" of ${self.dollars_per_session:.2f}"
                                             if self.dollars_per_session is not None else "")
        text = (f"This session: {dollars} spent, {calls}"
                + (f" of {self.calls_per_hour}" if self.calls_per_hour is not None else "") + " calls in the last hour.")
        if self.estimated_calls:
            text += f" {self.estimated_calls} call(s) priced by estimate (model not in the price table)."
        if self.unpriced_calls:
            text += (f" {self.unpriced_calls} call(s) of an unpriced model are not in the dollar figure, so the "
                     "dollar limit cannot stop them; the calls-per-hour limit still does.")
        return text

    def __repr__(self) -> str:
        return (f"SpendGuard(calls_per_hour={self.calls_per_hour}, dollars_per_session={self.dollars_per_session}, "
                f"spent_usd={self.spent_usd})")
