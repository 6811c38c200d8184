"""Trade Review in a real browser: the characters' moods, the locked sidebar, Stop, a phone's width, and the
hidden element that loads the widgets' code.

`streamlit run app.py` driven by Playwright through Debian's chromium; skipped when either is missing.
"""

import re
import sqlite3

import pytest

import core
from tests.support.ui_fixtures import (free_port, reject_then_approve_seed, set_speed, start_app, stop_app,
                                      wait_for_app)

BANNER = re.compile("APPROVE —|REJECT-MAX —|ABORT —|ERROR —|INTERRUPTED —")

# Every change of either character's mood, in order, as the browser drew it.
WATCH_MOODS = """() => {
    window.moods = [];
    const seen = () => {
        for (const el of document.querySelectorAll('.pc-char[data-role]')) {
            const entry = el.dataset.role + ':' + el.dataset.mood;
            const last = window.moods.filter(m => m.startsWith(el.dataset.role + ':')).at(-1);
            if (last !== entry) window.moods.push(entry);
        }
    };
    new MutationObserver(seen).observe(document.body, {subtree: true, childList: true, attributes: true});
    seen();
}"""


def sidebar_widget(page, label: str):
    return page.get_by_test_id("stSidebar").get_by_label(label, exact=True)


def subsequence(wanted: list[str], seen: list[str]) -> bool:
    remaining = iter(seen)
    return all(any(step == got for got in remaining) for step in wanted)


def test_the_characters_wait_from_the_first_paint_and_act_out_reject_revise_approve(app_server, page):
    base, _ = app_server
    seed = reject_then_approve_seed()
    assert seed is not None, "no house seed gives REJECT then APPROVE on the page's opening world"
    page.goto(base)
    # Before any run: both characters drawn, waiting, each an inline SVG (no image, no request).
    for role in ("player", "coach"):
        page.locator(f'.pc-char[data-role="{role}"][data-mood="idle"] svg.pc-avatar').wait_for()
    assert page.locator(".pc-stage img").count() == 0
    sidebar_widget(page, "House Player seed").fill(str(seed))
    sidebar_widget(page, "House Player seed").press("Enter")
    wait_for_app(page)
    set_speed(page, "Slow")  # every face held long enough for a loaded machine to draw it
    page.evaluate(WATCH_MOODS)
    page.get_by_role("button", name="Run exchange").click()
    page.get_by_text("APPROVE —").first.wait_for(timeout=60_000)
    # The banner and the faces are separate updates: the exchange ends with both characters pleased.
    page.wait_for_function("document.querySelectorAll('.pc-char[data-mood=\"pleased\"]').length === 2",
                           timeout=30_000)
    moods = page.evaluate("window.moods")
    player = [m.split(":")[1] for m in moods if m.startswith("player:")]
    coach = [m.split(":")[1] for m in moods if m.startswith("coach:")]
    # Round 1: the Player thinks, speaks; the Coach thinks, speaks, is stern; the Player is chastened.
    # Round 2: the Player thinks again, speaks; the Coach speaks and both end pleased.
    assert subsequence(["thinking", "speaking", "chastened", "thinking", "speaking", "pleased"], player), moods
    assert subsequence(["thinking", "speaking", "stern", "thinking", "speaking", "pleased"], coach), moods
    assert "alarmed" not in moods and "puzzled" not in moods


# Every frame: where the page's title stands, and whether the element that loads the widgets' code early shows.
WATCH_TITLE = """() => {
    window.frames_seen = [];
    const look = () => {
        const title = document.querySelector('h1'), loader = document.querySelector('.st-key-first_paint_code');
        window.frames_seen.push([title ? title.getBoundingClientRect().top : null,
                                 loader ? getComputedStyle(loader).display : null]);
        requestAnimationFrame(look);
    };
    look();
}"""


def test_the_title_never_moves_as_a_fresh_tab_draws_the_page(browser, tmp_path):
    """app.py mounts the hidden element that loads the widgets' code early in the tab whose run pays the process's
    imports; neither it nor the later tabs that go without it ever push the page down, not even for a frame."""
    server = start_app(tmp_path / "fresh.db", port := free_port())  # a process of its own: its first tab is the one
    try:
        for tab in ("the first", "a later"):
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.add_init_script(f"({WATCH_TITLE})()")
            page.goto(f"http://127.0.0.1:{port}/")
            page.locator("h1").first.wait_for(timeout=60_000)
            wait_for_app(page)
            page.wait_for_timeout(500)
            frames = page.evaluate("window.frames_seen")
            loader = page.locator(".st-key-first_paint_code")
            assert loader.count() == (1 if tab == "the first" else 0), tab
            assert {top for top, _ in frames if top is not None} == {page.locator("h1").first.bounding_box()["y"]}, tab
            assert all(shown in (None, "none") for top, shown in frames if top is not None), tab
            context.close()
    finally:
        stop_app(server)


def test_the_sidebar_is_locked_while_an_exchange_plays_and_stop_only_then(app_server, page):
    base, db = app_server
    page.goto(base)
    page.get_by_role("button", name="Run exchange").wait_for()
    wait_for_app(page)
    assert page.get_by_role("button", name="Stop").is_disabled()  # nothing runs: nothing to stop
    set_speed(page, "Slow")
    page.get_by_role("button", name="Run exchange").click()
    page.locator('.pc-char[data-role="player"][data-mood="speaking"]').wait_for()
    for label in ("Symbol", "Date", "Preset", "Strategy"):
        assert sidebar_widget(page, label).is_disabled(), label
    assert page.get_by_role("button", name="Run exchange").is_disabled()
    assert page.get_by_role("button", name="Stop").is_enabled()
    page.get_by_text(BANNER).first.wait_for(timeout=90_000)
    wait_for_app(page)
    assert page.get_by_text("INTERRUPTED —").count() == 0  # it ran to its end
    expect = pytest.importorskip("playwright.sync_api").expect
    for label in ("Symbol", "Date", "Preset", "Strategy"):  # unlocked by the rerun that follows the banner
        expect(sidebar_widget(page, label)).to_be_enabled()
    expect(page.get_by_role("button", name="Stop")).to_be_disabled()
    outcome = sqlite3.connect(db).execute("select outcome from exchanges order by timestamp desc limit 1").fetchone()[0]
    assert outcome != "INTERRUPTED"


def test_stop_in_round_1_keeps_the_proposal_and_checks_being_read_marked_interrupted(app_server, page):
    base, db = app_server
    page.goto(base)
    seed = sidebar_widget(page, "House Player seed")
    seed.fill(str(reject_then_approve_seed()))  # round 1 is rejected: the Coach has failures to read out
    seed.press("Enter")
    wait_for_app(page)
    set_speed(page, "Slow")
    page.get_by_role("button", name="Run exchange").click()
    # The Coach thinks, then reads out the failures: the proposal and its checks are on screen.
    page.locator('.pc-char[data-role="coach"][data-mood="thinking"]').wait_for(timeout=60_000)
    reasoning = page.locator('.pc-char[data-role="player"] .pc-bubble').inner_text()
    assert reasoning.strip()
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("INTERRUPTED — stopped with the Stop button; 0 finished rounds kept, and round 1 as it "
                     "stood").first.wait_for(timeout=30_000)
    page.get_by_text("Round 1 — INTERRUPTED before the Coach's verdict; the checks said REJECT").wait_for()
    assert page.locator('.pc-char[data-role="player"] .pc-bubble').inner_text() == reasoning  # still on screen
    page.get_by_test_id("stTable").filter(has_text="arithmetic").first.wait_for()  # the checks being read
    store = core.Store(db)
    (newest,) = store.list_exchanges(limit=1)
    assert (newest["outcome"], newest["rounds_taken"], newest["termination_reason"]) == (
        "INTERRUPTED", 0, "stopped with the Stop button")  # History says why too
    assert [(r.round, r.complete) for r in store.get_exchange(newest["run_id"]).rounds] == [(1, False)]


def test_a_phone_stacks_the_characters_and_nothing_is_wider_than_the_screen(browser, app_server):
    base, _ = app_server
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(base)
        page.locator('.pc-char[data-role="coach"]').wait_for()
        wait_for_app(page)
        # Both boxes read in one frame: the page may scroll between two separate reads.
        player, coach = page.evaluate(STAGE_BOXES)
        assert coach["top"] >= player["bottom"], (player, coach)
        page.get_by_role("button", name="Run exchange").click()
        page.get_by_text(BANNER).first.wait_for(timeout=90_000)
        wait_for_app(page)
        page.locator(".pc-char[data-role='coach']").first.wait_for()
        assert page.evaluate(WIDER_THAN_SCREEN) == []
        # the sidebar's controls are one tap away, and fit the screen too
        page.get_by_test_id("stExpandSidebarButton").click()
        symbol = page.get_by_test_id("stSidebar").get_by_label("Symbol", exact=True)
        pytest.importorskip("playwright.sync_api").expect(symbol).to_be_in_viewport(ratio=1)  # wholly on screen once the sidebar has slid in
    finally:
        context.close()


# The player's then the coach's box on screen, read together.
STAGE_BOXES = """() => ['player', 'coach'].map(role =>
    document.querySelector(`.pc-char[data-role="${role}"]`).getBoundingClientRect().toJSON())"""

# Elements reaching past the right edge, except inside a frame that scrolls or clips them (a table).
WIDER_THAN_SCREEN = """() => {
    const edge = window.innerWidth + 1;
    // framed: some frame of its own (a table's scroller; not the page's) clips it and itself fits the screen
    const framed = el => {
        for (let up = el.parentElement; up; up = up.parentElement) {
            if (['stMain', 'stAppViewContainer', 'stApp'].includes(up.dataset?.testid)) return false;
            const style = getComputedStyle(up);
            if (['auto', 'scroll', 'hidden', 'clip'].includes(style.overflowX) && up.getBoundingClientRect().right <= edge) return true;
        }
        return false;
    };
    return [...document.querySelectorAll('body *')]
        .filter(el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.right > edge && !framed(el); })
        .map(el => el.tagName + '.' + (el.className.baseVal ?? el.className) + ' ' + Math.round(el.getBoundingClientRect().right));
}"""
