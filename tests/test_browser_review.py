"""Trade Review and History in a real browser, for what only a browser shows (issue 20, items 9-11):
a new run never shows the previous result, a phone reads each check in full and follows the newest
bubble, and History's filter chips are never cut.
"""

import re

import pytest

from tests.support.ui_fixtures import set_speed, wait_for_app

BANNER = re.compile("APPROVE —|REJECT-MAX —|ABORT —|ERROR —|INTERRUPTED —")


def test_run_clears_the_previous_result_before_round_1(app_server, page):
    base, _ = app_server
    page.set_default_timeout(90_000)  # a loaded machine takes 20 s and more to draw the first page
    page.goto(base)
    page.get_by_role("button", name="Run exchange").wait_for()
    wait_for_app(page)
    set_speed(page, "Instant")
    page.get_by_role("button", name="Run exchange").click()
    page.get_by_text(BANNER).first.wait_for(timeout=90_000)
    wait_for_app(page)
    page.get_by_text("Download artifact JSON").wait_for()  # the finished exchange, totals and all
    set_speed(page, "Slow")
    page.get_by_role("button", name="Run exchange").click()
    page.locator('.pc-char[data-role="player"][data-mood="speaking"]').wait_for(timeout=60_000)
    # Round 1 under way: nothing of the finished exchange is left on screen, faded or not.
    assert page.get_by_text(BANNER).count() == 0
    assert page.get_by_text("Download artifact JSON").count() == 0
    assert page.get_by_test_id("stMetric").count() == 0
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("INTERRUPTED —").first.wait_for(timeout=30_000)
