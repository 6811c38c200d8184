"""Speed of the dashboard in a real browser (`streamlit run` driven by Playwright and Debian's chromium).

* cold start: `streamlit run app.py` launched to a healthy server and Trade Review drawn in the
  browser (goal <= 3 s);
* a full house-agent exchange on Trade Review at the fastest animation speed, from the click on
  Run exchange to the outcome banner (goal <= 1.5 s); and a two-round one (REJECT, then APPROVE)
  at the default speed, as a new user watches it (goal <= 5 s);
* History with 100,000 exchanges in the database: a fresh session opens it, until the first page
  of the table and both charts are drawn (goal <= 1.5 s); and a click on History in an open app,
  its first visit (when the browser starts plotly.js, about 1.2 s here even for a one-bar chart)
  and a later one. Beside them, the same page on a database of 500 exchanges (what the browser
  alone costs) and the page script's own time at 100k, with cold and warm caches (the server).

Each figure is the best of a few tries, as timeit does: other load on the machine only adds time.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import core
from bench.core_bench import _mix
from tests.ui_fixtures import (CHROMIUM, free_port, launch_chromium, reject_then_approve_seed, set_speed, start_app,
                               stop_app, wait_for_app)

BANNER = re.compile("APPROVE —|REJECT-MAX —|ABORT —|ERROR —|INTERRUPTED —")
HISTORY_ROWS = 100_000
DISTINCT = 500  # exchanges actually run; the rest of the 100k are copies with other ids and times
STEP_MINUTES = 5  # one exchange every five minutes: 100k span about a year


def build_history(path: Path, n: int = HISTORY_ROWS) -> float:
    """A database of n exchanges (with their rounds) in seconds, not minutes.

    DISTINCT real house exchanges are recorded through core.Store, then copied in SQL with new
    run ids and earlier timestamps until there are n.
    """
    assert n % DISTINCT == 0, n
    start = time.perf_counter()
    store = core.Store(path)
    cases = _mix()
    player, coach, portfolio = core.HousePlayer(), core.HouseCoach(), core.Portfolio()
    newest = datetime(2025, 6, 30, 20, 0, tzinfo=timezone.utc)
    for i in range(DISTINCT):
        world, constraints = cases[i % len(cases)]
        when = newest - timedelta(minutes=STEP_MINUTES * i)
        store.record(core.run_exchange_sync(world, constraints, portfolio, player, coach, strategy_id=f"s{i % 7}",
                                            run_id=f"r{i:03d}", now=lambda when=when: when))
    db = store.db
    exchange_columns = [c.name for c in db["exchanges"].columns]
    round_columns = [c.name for c in db["rounds"].columns]
    shift = f"printf('-%d minutes', k * {DISTINCT * STEP_MINUTES})"
    copied = {"run_id": "run_id || '-' || k", "timestamp": f"strftime('%Y-%m-%dT%H:%M:%S+00:00', timestamp, {shift})"}
    copies = f"with recursive c(k) as (select 1 union all select k + 1 from c where k < {n // DISTINCT - 1})"
    with store._write():
        if n == DISTINCT:
            return time.perf_counter() - start
        db.execute(f"{copies} insert into exchanges ({', '.join(exchange_columns)}) "
                   f"select {', '.join(copied.get(c, c) for c in exchange_columns)} from exchanges, c")
        db.execute(f"{copies} insert into rounds ({', '.join(round_columns)}) "
                   f"select {', '.join(copied.get(c, c) for c in round_columns)} from rounds, c")
    db.execute("analyze")
    assert store.count_exchanges() == n
    return time.perf_counter() - start


def _cold_start(browser) -> tuple[float, float]:
    """Seconds from launching `streamlit run` to a healthy server, and to Trade Review drawn."""
    with tempfile.TemporaryDirectory() as tmp:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        start = time.perf_counter()
        server = start_app(Path(tmp) / "cold.db", port := free_port())
        healthy = time.perf_counter() - start
        try:
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_role("button", name="Run exchange").wait_for(timeout=60_000)
            wait_for_app(page)
            drawn = time.perf_counter() - start
        finally:
            page.close()
            stop_app(server)
    return healthy, drawn


def _exchanges(browser, tries: int = 5, speed: str = "Instant", seed: int | None = None) -> list[float]:
    """Seconds from the click on Run exchange to the outcome banner, at a speed, with a house Player seed."""
    timings = []
    with tempfile.TemporaryDirectory() as tmp:
        server = start_app(Path(tmp) / "exchange.db", port := free_port())
        try:
            for _ in range(tries + 1):  # the first one warms imports and caches up, and is not counted
                # A new session each time, so no earlier banner is on the page.
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"http://127.0.0.1:{port}/")
                page.get_by_text("Animation speed").wait_for(timeout=60_000)
                if seed is not None:
                    page.get_by_test_id("stSidebar").get_by_label("House Player seed", exact=True).fill(str(seed))
                    page.get_by_test_id("stSidebar").get_by_label("House Player seed", exact=True).press("Enter")
                    wait_for_app(page)
                set_speed(page, speed)
                assert page.get_by_text(BANNER).count() == 0
                start = time.perf_counter()
                page.get_by_role("button", name="Run exchange").click()
                page.get_by_text(BANNER).first.wait_for(timeout=60_000)
                timings.append(time.perf_counter() - start)
                page.close()
        finally:
            stop_app(server)
    return timings[1:]


def _history(browser, db: Path, tries: int = 4) -> list[float]:
    """Seconds for a new session to draw History's first page and both charts on the big database."""
    timings = []
    server = start_app(db, port := free_port())
    try:
        for _ in range(tries):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            start = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/history")
            _history_drawn(page)
            timings.append(time.perf_counter() - start)
            wait_for_app(page)
            page.close()
    finally:
        stop_app(server)
    return timings


def _history_in_app(browser, db: Path, tries: int = 3) -> tuple[list[float], list[float]]:
    """Seconds from a click on History in the sidebar of an open app to its first page and both
    charts drawn: the first visit of a session (plotly.js starts then), and a second one."""
    first, again = [], []
    server = start_app(db, port := free_port())
    try:
        for _ in range(tries):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_role("button", name="Run exchange").wait_for(timeout=60_000)
            wait_for_app(page)
            for timings in (first, again):
                start = time.perf_counter()
                page.get_by_test_id("stSidebarNav").get_by_role("link", name="History").click()
                _history_drawn(page)
                timings.append(time.perf_counter() - start)
                wait_for_app(page)
                page.get_by_test_id("stSidebarNav").get_by_role("link", name="Trade Review").click()
                page.get_by_role("button", name="Run exchange").wait_for(timeout=60_000)
                wait_for_app(page)
            page.close()
    finally:
        stop_app(server)
    return first, again


def _history_drawn(page) -> None:
    page.get_by_test_id("stDataFrame").first.wait_for(timeout=60_000)
    charts = page.get_by_test_id("stPlotlyChart")
    for n in range(2):
        charts.nth(n).locator(".main-svg").first.wait_for(timeout=60_000)


def _history_script(db: Path) -> tuple[float, float]:
    """Seconds the History page's script takes on the server (AppTest): caches cold, then warm."""
    import os

    from streamlit.testing.v1 import AppTest

    os.environ["PLAYER_COACH_DB"] = str(db)
    try:
        at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=120)
        at.run()
        at.switch_page("pages/history.py")
        timings = []
        for _ in range(2):
            start = time.perf_counter()
            at.run()
            timings.append(time.perf_counter() - start)
        assert not at.exception and at.title[0].value == "History"
    finally:
        del os.environ["PLAYER_COACH_DB"]
    return timings[0], timings[1]


def run() -> dict:
    if not CHROMIUM.exists():
        return {"skipped": f"{CHROMIUM} is missing (make browser)"}
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as tmp:
        browser = launch_chromium(playwright)
        try:
            starts = [_cold_start(browser) for _ in range(3)]
            exchanges = _exchanges(browser)
            two_rounds = reject_then_approve_seed()
            paced = _exchanges(browser, tries=3, speed="Normal", seed=two_rounds) if two_rounds is not None else [float("nan")]
            small = Path(tmp) / "small.db"
            build_history(small, DISTINCT)
            baseline = _history(browser, small, tries=3)
            db = Path(tmp) / "history.db"
            build_s = build_history(db)
            history = _history(browser, db)
            in_app_first, in_app_again = _history_in_app(browser, db)
        finally:
            browser.close()
        size_mb = core.Store(db).size_bytes() / 1e6
        script_cold, script_warm = _history_script(db)
    healthy, drawn = min(starts, key=lambda pair: pair[1])
    return {
        "cold_start_to_trade_review_s_best_of_3": round(drawn, 2),
        "cold_start_server_healthy_s": round(healthy, 2),
        "cold_start_goal_s": 3.0,
        "house_exchange_click_to_banner_s_best": round(min(exchanges), 2),
        "house_exchange_click_to_banner_s_median": round(statistics.median(exchanges), 2),
        "house_exchange_goal_s": 1.5,
        "house_exchange_two_rounds_default_speed_click_to_banner_s_best": round(min(paced), 2),
        "house_exchange_two_rounds_default_speed_click_to_banner_s_median": round(statistics.median(paced), 2),
        "house_exchange_two_rounds_default_speed_goal_s": 5.0,
        "history_100k_first_page_and_charts_s_first_visit": round(history[0], 2),
        "history_100k_first_page_and_charts_s_best": round(min(history), 2),
        "history_100k_in_app_click_first_visit_s_best": round(min(in_app_first), 2),
        "history_100k_in_app_click_next_visit_s_best": round(min(in_app_again), 2),
        "history_100k_goal_s": 1.5,
        "history_500_rows_first_page_and_charts_s_best": round(min(baseline), 2),
        "history_100k_page_script_s_cold_cache": round(script_cold, 2),
        "history_100k_page_script_s_warm_cache": round(script_warm, 2),
        "history_100k_db_build_s": round(build_s, 1),
        "history_100k_db_size_mb": round(size_mb, 1),
    }
