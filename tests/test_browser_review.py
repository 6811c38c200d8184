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


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    tab = context.new_page()
    tab.set_default_timeout(90_000)
    try:
        yield tab
    finally:
        context.close()


def test_a_phone_reads_each_check_as_a_stacked_line_with_its_arithmetic_in_full(app_server, phone):
    base, _ = app_server
    phone.goto(base)
    set_speed(phone, "Instant")
    phone.get_by_role("button", name="Run exchange").click()
    phone.get_by_text(BANNER).first.wait_for()
    wait_for_app(phone)
    phone.locator(".pc-checks").last.wait_for()
    phone.locator('[data-testid="stTable"] td').last.wait_for()
    lines = phone.evaluate("""() => [...document.querySelectorAll('.pc-checks')].flatMap(mark => {
        const table = mark.closest('[data-testid="stElementContainer"]').nextElementSibling.querySelector('table');
        return [...table.querySelectorAll('tbody tr')].map(row => {
            const arithmetic = row.lastElementChild, width = table.getBoundingClientRect().width;
            return {text: arithmetic.innerText, share: arithmetic.getBoundingClientRect().width / width,
                    cut: arithmetic.scrollWidth > arithmetic.clientWidth + 1,
                    below: arithmetic.getBoundingClientRect().top >= row.firstElementChild.getBoundingClientRect().bottom - 1};
        });
    })""")
    assert lines
    for line in lines:  # the arithmetic on a line of its own, the table's whole width, nothing cut
        assert line["share"] > 0.9 and not line["cut"] and line["below"], line


def test_a_phone_keeps_the_speaking_character_in_view(app_server, phone):
    base, _ = app_server
    phone.goto(base)
    phone.get_by_role("button", name="Run exchange").wait_for()
    wait_for_app(phone)
    set_speed(phone, "Slow")
    phone.get_by_role("button", name="Run exchange").click()
    phone.locator('.pc-char[data-role="coach"][data-mood="speaking"]').wait_for()
    bubble = phone.locator('.pc-char[data-role="coach"] .pc-bubble')
    # The newest bubble wholly on screen (the page scrolls to it a moment after the Coach starts).
    phone.wait_for_function("""() => { const box = document.querySelector('.pc-char[data-role="coach"] .pc-bubble')
        .getBoundingClientRect(); return box.top >= 0 && box.bottom <= window.innerHeight; }""", timeout=30_000)
    assert bubble.bounding_box()["y"] >= 0
    phone.get_by_role("button", name="Stop").click()
    phone.get_by_text("INTERRUPTED —").first.wait_for()


def test_historys_outcome_chips_are_never_cut(app_server, page):
    base, _ = app_server
    page.set_default_timeout(90_000)
    page.goto(f"{base}/history")
    outcome = page.get_by_test_id("stMultiSelect").filter(has_text="Outcome")
    for name in ("REJECT-MAX", "INTERRUPTED", "APPROVE"):
        outcome.locator("input").fill(name)
        page.keyboard.press("Enter")
        page.keyboard.press("Escape")
        wait_for_app(page)
    chips = page.evaluate("""() => [...document.querySelectorAll('[data-testid="stMultiSelect"] [data-tag] > span[title]')]
        .map(text => [text.innerText, text.scrollWidth <= text.clientWidth + 1])""")
    assert sorted(text for text, _ in chips) == ["APPROVE", "INTERRUPTED", "REJECT-MAX"]
    assert all(whole for _, whole in chips), chips
