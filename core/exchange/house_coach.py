"""The house Coach: writes its critique from the rules' checks, needing no key and no network (the house Player,
its partner, is core.exchange.house's)."""

from __future__ import annotations

from collections.abc import Generator

from core.exchange.agent import Turn
from core.exchange.schema import Constraints, Portfolio, Proposal, WorldState
from core.exchange.artifact import Verdict


class HouseCoach:
    """Writes the critique from the rules' checks: each failing check with its arithmetic.

    The verdict itself and the full list of checks are the rules' (the round's record); the
    critique says what has to change, so nothing is said twice.
    """

    name = "house-coach"

    def critique(
        self, proposal: Proposal, verdict: Verdict, constraints: Constraints, world: WorldState, portfolio: Portfolio
    ) -> Generator[str, None, Turn]:
        """Stream the critique a line at a time, return it whole."""
        failing = [check for check in verdict.checks if not check.passed]
        if failing:
            lines = [f"{'[action ' + str(check.action + 1) + '] ' if check.action is not None else ''}{check.arithmetic}"
                     for check in failing]
            passed = len(verdict.checks) - len(failing)
            lines.append(f"The other {passed} checks pass." if passed else "No check passes.")
        else:
            lines = ["Nothing to fix: the trade stays inside every limit, approved."]
        if verdict.decision == "ABORT":
            lines.append("A hard limit was broken: the exchange stops here.")
        # A line at a time: the UI types them out at its own pace.
        for line in lines[:-1]:
            yield line + "\n"
        yield lines[-1]
        return Turn("\n".join(lines))
