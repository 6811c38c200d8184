"""Players for hand-computed backtests: picklable (module level), so they cross to worker processes."""

from __future__ import annotations

from core import Proposal, Turn


class PoliteScript:
    """Enters where its script says ((day ISO, symbol) -> plan), but holds on its own when the book
    already holds `max_open_positions` symbols: a limit that binds without a single rejection."""

    name = "polite-script"

    def __init__(self, script: dict):
        self.script = script

    def propose(self, world, constraints, portfolio, history):
        plan = self.script.get((world.as_of.date().isoformat(), world.symbol))
        held = [s for s, size in portfolio.positions.items() if size]
        if plan and len(held) < constraints.max_open_positions:
            actions = [{"action_type": "enter_long", "symbol": world.symbol, "size_pct": plan["size"],
                        "entry_price": world.price, "stop_loss": plan["stop"], "take_profit": plan["target"]}]
            said = f"long {world.symbol}"
        else:
            actions = [{"action_type": "hold", "symbol": world.symbol}]
            said = "hold: no room" if plan else "hold"
        yield said
        return Turn(Proposal.model_validate({"reasoning": said, "actions": actions}))


class Stray:
    """Holds a symbol no shipped preset allows (QQQ), round after round: a hold on another symbol is checked
    for its symbol (SPEC §4), so every round is rejected for allowed_symbols and the exchange ends REJECT-MAX."""

    name = "stray-player"

    def propose(self, world, constraints, portfolio, history):
        said = f"{world.symbol} last {world.price:.2f}: watching QQQ instead."
        yield said
        return Turn(Proposal.model_validate({"reasoning": said, "actions": [{"action_type": "hold", "symbol": "QQQ"}]}))
