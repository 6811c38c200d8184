"""`make screenshots`: a PNG of each page under docs/, from the real app in Debian's headless chromium.

The app runs on a scratch database holding a week of house exchanges (so History has figures and
charts); Trade Review is shot after a finished exchange, Constraints with one field edited.
"""

from __future__ import annotations

import itertools
import re
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import core  # noqa: E402
from tests.support.ui_fixtures import free_port, launch_chromium, set_speed, start_app, stop_app, wait_for_app  # noqa: E402

DOCS = Path(__file__).resolve().parent
WIDTH = 1400
BANNER = re.compile("APPROVE —|REJECT-MAX —|ABORT —|ERROR —|INTERRUPTED —")


def seed(db: Path) -> None:
    """Five days of exchanges over three symbols, two strategies and three presets."""
    store = core.Store(db)
    start = datetime.now(timezone.utc).replace(hour=14, minute=0, second=0, microsecond=0) - timedelta(days=5)
    cases = itertools.product(range(5), ("AMZN", "MSFT", "TSLA"), (1.01, 0.99), ("moderate", "strict", "conservative"))
    for n, (day, symbol, trend, preset) in enumerate(cases):
        price = 185.0 * (1 + 0.05 * day)
        world = core.WorldState(symbol=symbol, as_of="2025-03-04 10:00", price=price, sma5=price * trend, sma10=price)
        core.run_exchange_sync(world, core.load_preset(preset), core.Portfolio(), core.HousePlayer(seed=n),
                               core.HouseCoach(), store=store, strategy_id=("trend-following", "breakout")[n % 2],
                               now=lambda day=day, n=n: start + timedelta(days=day, minutes=n))


def shoot(page, name: str) -> None:
    """The whole page, however tall: the viewport grows to the main area's height first."""
    wait_for_app(page)
    # Tables and charts load their code on first use: a grey placeholder until then (longer on a busy machine)
    page.wait_for_function("!document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=60_000)
    page.wait_for_timeout(600)  # charts and fonts settle
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": WIDTH, "height": min(max(height, 900), 3200)})
    page.wait_for_timeout(400)
    page.screenshot(path=str(DOCS / f"{name}.png"))
    page.set_viewport_size({"width": WIDTH, "height": 1000})
    print(f"docs/{name}.png")


def main() -> int:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        db = Path(tmp) / "screenshots.db"
        seed(db)
        server = start_app(db, port := free_port())
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_text("Animation speed").wait_for()
            set_speed(page, "Instant")
            page.get_by_role("button", name="Run exchange").click()
            page.get_by_text(BANNER).first.wait_for(timeout=60_000)
            shoot(page, "trade_review")

            nav = page.get_by_test_id("stSidebarNav")  # the app's own navigation keeps the session
            nav.get_by_text("Constraints", exact=True).click()
            page.get_by_role("heading", name="Live JSON").wait_for()
            slider = page.get_by_test_id("stMain").get_by_role("slider").nth(7)  # min_risk_reward
            slider.focus()
            for _ in range(5):
                slider.press("ArrowRight")
            shoot(page, "constraints")

            nav.get_by_text("History", exact=True).click()
            page.get_by_test_id("stPlotlyChart").nth(1).locator(".main-svg").first.wait_for()
            shoot(page, "history")

            nav.get_by_text("Backtest", exact=True).click()
            page.get_by_role("button", name="Run backtest").click()
            page.get_by_text("Past runs").wait_for()
            page.get_by_test_id("stPlotlyChart").first.locator(".main-svg").first.wait_for(timeout=120_000)
            shoot(page, "backtest")

            nav.get_by_text("Settings", exact=True).click()
            page.get_by_role("heading", name="Settings", exact=True).wait_for()
            shoot(page, "settings")
        finally:
            browser.close()
            stop_app(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
