"""The Backtest page's past runs in a real browser: a comparison reopens as one, a crashed run resumes."""

import sqlite3

import pytest

import core
from core import market
from tests.support.ui_fixtures import wait_for_app, wait_until_drawn

HOUSE = "House agents (offline, free)"  # the Backtest page's label for the house agents
START, END = "2021-01-04", "2021-03-31"


@pytest.fixture(autouse=True)
def same_bars_as_the_app(app_server, monkeypatch):
    """The runs seeded here load the bars the app does (offline, its cache folder), so their keys match."""
    _, db = app_server
    monkeypatch.setenv(market.OFFLINE_ENV, "1")
    monkeypatch.setattr(market, "CACHE_DIR", db.parent / "cache")


def seed_job(db, job_key: str, presets: list[str], stop_after: int | None = None, symbols=("MSFT",), start=START,
             end=END) -> list[str]:
    """Backtests run and filed as the page files them (one job, a run per preset), as another tab would."""
    store = core.Store(db)
    keys = [core.run_backtest(list(symbols), start, end, core.load_preset(name), core.HousePlayer(seed=0),
                              core.HouseCoach(), store=store, preset=name, stop_after=stop_after).run_key
            for name in presets]
    store.save_backtest_job(job_key, {"symbols": list(symbols), "start": start, "end": end, "presets": presets,
                                      "agents": HOUSE, "depth": "standard", "capital": 100_000.0, "fee_bps": 1.0,
                                      "slippage_bps": 2.0, "max_hold_days": 10}, keys)
    return keys


def pick_past_run(page, text: str) -> None:
    wait_until_drawn(page)  # an element drawn late above the box moves it under the click, which then opens nothing
    page.get_by_test_id("stSelectbox").filter(has_text="A stored backtest").click()
    page.get_by_role("option").filter(has_text=text).first.click()
    wait_for_app(page)


def test_a_comparison_reopens_as_one_with_its_form(app_server, page):
    base, db = app_server
    seed_job(db, "comparison", ["moderate", "aggressive"])
    page.goto(f"{base}/backtest")
    page.get_by_role("heading", name="Past runs").wait_for()
    pick_past_run(page, "vs aggressive")
    page.get_by_test_id("stButton").filter(has_text="Open").click()
    wait_for_app(page)
    tabs = page.get_by_role("tab")
    tabs.filter(has_text="aggressive").wait_for()
    assert [t.strip() for t in tabs.all_inner_texts()] == ["moderate", "aggressive"]
    compare = page.get_by_test_id("stSelectbox").filter(has_text="Compare with")
    assert compare.locator("input").input_value() == "aggressive"  # the form says what is shown


def test_a_crashed_run_is_interrupted_and_resume_finishes_it(app_server, page):
    base, db = app_server
    (key,) = seed_job(db, "crashed", ["conservative"], stop_after=15)
    with sqlite3.connect(db) as conn:  # the tab died long ago: nothing has written to the run since
        conn.execute("update backtests set status = 'running', updated = '2020-01-01T00:00:00+00:00' "
                     "where run_key = ?", [key])
    page.goto(f"{base}/backtest")
    page.get_by_role("heading", name="Past runs").wait_for()
    pick_past_run(page, "interrupted")
    page.get_by_test_id("stButton").filter(has_text="Resume").click()
    page.get_by_role("tab", name="conservative").wait_for(timeout=60_000)
    row = core.Store(db).get_backtest(key)
    assert row["status"] == "finished" and row["days_done"] == row["days_total"]
    assert [r["run_key"] for r in core.Store(db).list_backtests() if r["preset"] == "conservative"] == [key]  # carried on


def date_box(page, label: str):
    return page.get_by_test_id("stDateInput").filter(has_text=label).locator("input")


def test_opening_a_past_run_shows_its_symbols_and_dates_at_once(app_server, page):
    base, db = app_server
    seed_job(db, "portfolio-2012", ["moderate"], symbols=("MSFT", "IBM"), start="2012-01-03", end="2012-02-29")
    page.goto(f"{base}/backtest")
    page.get_by_role("heading", name="Past runs").wait_for()
    assert date_box(page, "End").input_value() == "2022-03-10"  # the fresh form: MSFT's last year
    pick_past_run(page, "MSFT,IBM")
    page.get_by_test_id("stButton").filter(has_text="Open").click()
    wait_for_app(page)
    page.get_by_role("tab", name="moderate").wait_for()
    # What Run will do, in the browser, without leaving the page (a widget default alone left the old range)
    assert (date_box(page, "Start").input_value(), date_box(page, "End").input_value()) == ("2012-01-03", "2012-02-29")
    assert page.get_by_test_id("stMultiSelect").filter(has_text="With").get_by_text("IBM").count() == 1


def test_at_phone_width_no_table_toolbar_covers_a_plus_button(app_server, browser):
    base, db = app_server
    seed_job(db, "phone", ["moderate", "strict"])
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{base}/backtest")
        page.get_by_role("heading", name="Past runs").wait_for()
        page.get_by_test_id("stButton").filter(has_text="Open").click()  # the newest run is the one selected
        wait_for_app(page)
        page.get_by_role("tab", name="strict").wait_for()
        page.get_by_text("From each start day").first.wait_for()
        page.wait_for_timeout(1_000)  # the tables' toolbars settle
        covered = page.evaluate("""() => [...document.querySelectorAll('[data-testid="stNumberInputStepUp"]')]
            .map(button => { button.scrollIntoView({block: 'center'}); const r = button.getBoundingClientRect();
                             const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
                             return button.contains(top) ? null : (top && top.outerHTML.slice(0, 80)); })
            .filter(Boolean)""")
        assert covered == []
    finally:
        context.close()


def test_a_run_of_several_slices_shows_its_figures_and_then_its_charts(app_server, page):
    """Its last slice runs on the fragment's timer: the figures come first, then, once the browser shows them, the
    page whole (the path AppTest cannot take: it runs no timer and has no browser to ask)."""
    base, db = app_server
    page.goto(f"{base}/backtest")
    page.get_by_role("heading", name="Past runs").wait_for()
    date_box(page, "Start").fill("2019-01-02")  # three years of MSFT, two presets: a slice each
    date_box(page, "Start").press("Enter")
    wait_for_app(page)
    page.get_by_role("button", name="Run backtest").click()
    page.get_by_test_id("stProgress").wait_for()
    page.get_by_test_id("stMetric").first.wait_for(timeout=120_000)
    page.get_by_role("tab", name="strict").wait_for(timeout=60_000)
    page.get_by_test_id("stPlotlyChart").nth(2).locator(".main-svg").first.wait_for(timeout=60_000)  # in the first tab
    wait_for_app(page)
    assert page.get_by_test_id("stProgress").count() == 0 and page.get_by_test_id("stMetric").count() == 5
    assert page.get_by_test_id("stPlotlyChart").count() == 4  # return, drawdown, a price chart per preset
    rows = {r["preset"]: r for r in core.Store(db).list_backtests() if r["start"] == "2019-01-02"}
    assert {p: (r["status"], r["days_done"] == r["days_total"]) for p, r in rows.items()} == {
        "moderate": ("finished", True), "strict": ("finished", True)}
    page.wait_for_timeout(500)  # the fragment's timer is gone: nothing reruns the page by itself any more
    assert page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').count() == 1
