"""Agents the command-line tests load with --player (a helper module, not a test module)."""

from __future__ import annotations

import core


class Broken:
    """A Player whose model returns nonsense: the exchange ends ERROR."""

    name = "broken-player"

    def propose(self, world, constraints, portfolio, history):
        yield "thinking"
        raise core.AgentError("the model returned nonsense twice")
