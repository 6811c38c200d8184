"""The Constraints page in a real browser: what the slider shows is what the JSON, the diff and Trade Review get.

`streamlit run app.py` driven by Playwright through Debian's chromium; skipped when either is missing.
"""

import json
import re

import core
from tests.support.ui_fixtures import set_speed, wait_for_app

LEVERAGE = "Most leverage (max_leverage)"
BANNER = re.compile("APPROVE —|REJECT-MAX —|ABORT —|ERROR —|INTERRUPTED —")


def live_json(page) -> dict:
    return json.loads(page.get_by_test_id("stCode").first.inner_text())


def test_fast_arrow_key_presses_reach_the_json_the_diff_and_trade_review(app_server, page):
    base, db = app_server
    page.goto(f"{base}/constraints")
    page.get_by_role("heading", name="Constraints", exact=True).wait_for()
    wait_for_app(page)
    slider = page.get_by_role("slider", name=LEVERAGE)
    thumb = page.get_by_test_id("stSlider").filter(has=slider).get_by_test_id("stSliderThumbValue")
    assert slider.input_value() == "1.5" and thumb.inner_text() == "1.5"
    slider.focus()
    for _ in range(5):  # a trader nudging the slider: five presses about 50 ms apart
        slider.press("ArrowRight")
        page.wait_for_timeout(50)
    # Every press lands (1.5 + 5 x 0.1), then the page settles and every view says the same.
    thumb.get_by_text("2.0", exact=True).wait_for()
    page.get_by_test_id("stCode").filter(has_text='"max_leverage": 2.0').wait_for()
    wait_for_app(page)
    assert slider.input_value() == "2" and thumb.inner_text() == "2.0"
    assert live_json(page)["max_leverage"] == 2.0
    row = page.get_by_test_id("stTable").locator("tr", has_text="(max_leverage)")
    assert [c.strip() for c in row.locator("td, th").all_inner_texts()] == [LEVERAGE, "1.5", "2.0"]
    page.get_by_role("button", name="Use in Trade Review").click()
    page.get_by_role("heading", name="Trade Review", exact=True).wait_for()
    wait_for_app(page)
    values = [box.input_value() for box in page.get_by_test_id("stSidebar").get_by_role("combobox").all()]
    assert "Edited schema (from moderate)" in values
    set_speed(page, "Instant")
    page.get_by_role("button", name="Run exchange").click()
    page.get_by_text(BANNER).first.wait_for(timeout=60_000)
    store = core.Store(db)
    (newest,) = store.list_exchanges(limit=1)
    assert store.get_exchange(newest["run_id"]).constraint_snapshot.max_leverage == 2.0
