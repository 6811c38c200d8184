"""Your own Player in 30 lines: buy a dip below the 10-day average, stop 2 % away, target 3 R.

    python -m examples.dip_buyer            (from the repository's top folder)
    python -m core exchange --symbol AMZN --price 180 --sma5 182 --sma10 185 --player examples.dip_buyer:DipBuyer
"""

import core


class DipBuyer:
    """A Player is any class with a `name` and a `propose` that yields text and returns a Turn (see core.Player)."""

    name = "dip-buyer"

    def propose(self, world, constraints, portfolio, history):
        if world.price >= world.sma10:
            said = f"{world.symbol} is not below its 10-day average: hold."
            actions = [core.Action(action_type="hold", symbol=world.symbol)]
        else:
            entry, size = round(world.price, 2), min(0.02, constraints.max_single_trade_pct)
            stop = round(entry * 0.98, 2)
            target = round(entry + 3 * (entry - stop), 2)
            said = f"A dip below the 10-day average: long {size:.2%} at {entry:.2f}, stop {stop:.2f}, target {target:.2f} (3.00R)."
            actions = [core.Action(action_type="enter_long", symbol=world.symbol, size_pct=size,
                                   entry_price=entry, stop_loss=stop, take_profit=target)]
        yield said  # streamed to the speech bubble; yield as many fragments as you like
        return core.Turn(core.Proposal(reasoning=said, actions=actions))


if __name__ == "__main__":
    world = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=180, sma5=182, sma10=185)
    artifact = core.run_exchange_sync(world, core.load_preset("moderate"), core.Portfolio(), DipBuyer(), core.HouseCoach())
    print(artifact.outcome, artifact.rounds[-1].proposal.reasoning)
