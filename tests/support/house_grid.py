"""The markets and books the house Player is tested and measured on: tests and `make bench` import it from here."""

from __future__ import annotations

import itertools

from core.exchange.schema import Portfolio, WorldState


def house_grid() -> list[tuple[WorldState, Portfolio]]:
    """The markets and books the house Player is tested and measured on (tests and `make bench`).

    Five symbols (one outside most presets), up and down trends at prices from 3.17 to 61,234.56,
    three volatility regimes, ATR known or not; a flat book, a book that lost most of today's
    allowance, and one already holding two other symbols.
    """
    books = [
        Portfolio(),
        Portfolio(equity=99_400.0, peak_equity=100_000.0, start_of_day_equity=100_000.0, today_pnl=-600.0),
        Portfolio(positions={"NVDA": 0.02, "SPY": -0.02}),
    ]
    cases = []
    for symbol, (price, up), regime, atr, book in itertools.product(
        ["AMZN", "MSFT", "TSLA", "BTC-USD", "AAPL"],
        [(185.0, True), (185.0, False), (412.5, True), (61_234.56, False), (3.17, True)],
        ["low", "medium", "high"], [False, True], books,
    ):
        sma5, sma10 = (price * 0.99, price * 0.97) if up else (price * 1.01, price * 1.03)
        world = WorldState(symbol=symbol, as_of="2025-03-04 10:30", price=price, sma5=round(sma5, 2),
                           sma10=round(sma10, 2), volatility_regime=regime, atr=round(price * 0.015, 4) if atr else None)
        cases.append((world, book))
    return cases
