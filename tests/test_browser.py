"""The whole app in a real browser: `streamlit run app.py` driven by Playwright through Debian's chromium.

Skipped, with the reason, when /usr/bin/chromium or playwright is missing.
"""

import base64
import re
import sqlite3
from pathlib import Path

import pytest

import core
from tests.support.ui_fixtures import reject_then_approve_seed, set_speed, wait_for_app

PAGES = {"": "Trade Review", "constraints": "Constraints", "history": "History", "backtest": "Backtest",
         "settings": "Settings"}
BANNER = "APPROVE —|REJECT-MAX —|ABORT —|ERROR —|INTERRUPTED —"


BUBBLE = '.pc-char[data-role="{role}"] .pc-bubble'


def wait_for_bubble_to_grow(page, role: str) -> None:
    """The bubble's text gets longer three times in a row: it fills as the text streams."""
    page.locator(BUBBLE.format(role=role)).wait_for()
    page.wait_for_function("""([css]) => {
        const n = document.querySelector(css)?.innerText.length ?? 0;
        const seen = (window.bubbleLengths ||= {})[css] ||= [];
        if (seen.at(-1) !== n) seen.push(n);
        return seen.length >= 3 && seen.slice(-3).every((length, i, last) => i === 0 || length > last[i - 1]);
    }""", arg=[BUBBLE.format(role=role)])


def seed(db, run_id: str, player=None, preset: str = "strict") -> dict:
    """An exchange written straight into the app's database, as another session would."""
    world = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180, atr=2.8)
    # flaw_rate 1: the house Player's first proposal is rejected, so there is a revision to replay
    return core.run_exchange_sync(world, core.load_preset(preset), core.Portfolio(), player or core.HousePlayer(flaw_rate=1.0),
                                  core.HouseCoach(), store=core.Store(db), run_id=run_id)


def pick_in_history(page, run_id: str) -> None:
    """Pick an exchange on History with the Exchange box (what a click on its table row does). The box is
    opened once the page's run is over: a run still drawing (the charts come after the table) may close the
    list it opened, so a list that closed is opened again."""
    from playwright.sync_api import TimeoutError as NotYet

    box = page.get_by_test_id("stMain").get_by_test_id("stSelectbox").filter(has_text="Exchange")
    option = page.get_by_role("option").filter(has_text=run_id[:8]).first
    for attempt in range(3):
        wait_for_app(page)
        box.click()
        try:
            option.click(timeout=10_000)
            break
        except NotYet:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")
    wait_for_app(page)


def test_each_page_opens_directly_by_its_url(app_server, page):
    base, _ = app_server
    # Fresh server: the first request is a page URL, the case Streamlit's legacy pages mode got wrong.
    for path, title in [*list(PAGES.items())[1:], ("", "Trade Review")]:
        page.goto(f"{base}/{path}")
        page.get_by_role("heading", name=title, exact=True).wait_for()
        nav = page.get_by_test_id("stSidebarNav")
        for name in PAGES.values():
            assert nav.get_by_text(name, exact=True).count() == 1
        assert page.get_by_test_id("stSidebar").get_by_text("Agents: house").count() == 1  # app.py's sidebar, so app.py ran
        assert page.get_by_text("Page not found").count() == 0
        assert page.url.rstrip("/") == f"{base}/{path}".rstrip("/")


def test_the_tab_shows_the_scales_icon_from_the_apps_own_file(app_server, page):
    base, _ = app_server
    page.goto(base)
    page.get_by_role("button", name="Run exchange").wait_for()
    wait_for_app(page)
    svg = (Path(__file__).parents[1] / "static" / "scales.svg").read_bytes()
    # the file itself, in the page: nothing to fetch, so an offline machine shows it too
    assert page.locator("link[rel='shortcut icon']").get_attribute("href") == (
        "data:image/svg+xml;base64," + base64.b64encode(svg).decode())


def test_a_house_exchange_runs_and_shows_the_outcome_banner(app_server, page):
    base, db = app_server
    page.goto(base)
    page.get_by_text("Animation speed").wait_for()
    set_speed(page, "Instant")  # this test is about the outcome, the Stop test watches the animation
    page.get_by_role("button", name="Run exchange").click()
    banner = page.get_by_text(re.compile(BANNER)).first
    banner.wait_for(timeout=60_000)
    assert page.get_by_text("Round 1 —").count() >= 1
    page.locator('.pc-char[data-role="coach"]').wait_for()
    assert page.locator('.pc-char[data-role="player"]').count() == 1
    assert page.locator('.pc-char[data-role="coach"]').count() == 1
    run_ids = [r[0] for r in sqlite3.connect(db).execute("select run_id from exchanges where finished = 1")]
    assert run_ids


def test_stop_ends_a_running_exchange_as_interrupted_keeping_finished_rounds(app_server, page):
    base, db = app_server
    page.goto(base)
    page.get_by_text("Animation speed").wait_for()
    # Slow animation and a house seed that is rejected once: time to click Stop after the first round.
    seed_input = page.get_by_test_id("stSidebar").get_by_label("House Player seed", exact=True)
    seed_input.fill(str(reject_then_approve_seed()))
    seed_input.press("Enter")
    wait_for_app(page)
    set_speed(page, "Slow")
    page.get_by_role("button", name="Run exchange").click()
    # The speaker is highlighted and their bubble fills word by word.
    page.locator('.pc-char.pc-active[data-role="player"]').wait_for()
    wait_for_bubble_to_grow(page, "player")
    assert page.locator('.pc-char.pc-active[data-role="coach"]').count() == 0
    page.get_by_text("Round 1 —").first.wait_for(timeout=60_000)
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("INTERRUPTED —").first.wait_for(timeout=30_000)
    row = sqlite3.connect(db).execute(
        "select run_id, outcome, rounds_taken from exchanges order by timestamp desc limit 1").fetchone()
    assert row[1] == "INTERRUPTED" and row[2] >= 1
    rounds = sqlite3.connect(db).execute("select count(*) from rounds where run_id = ?", [row[0]]).fetchone()[0]
    assert rounds == row[2]


def test_history_replays_a_stored_exchange_with_the_animation_and_no_agent(app_server, page):
    base, db = app_server
    stored = seed(db, "replayed")
    assert stored.rounds_taken >= 2
    exchanges = core.Store(db).count_exchanges()
    page.goto(f"{base}/history")
    page.get_by_role("heading", name="History", exact=True).wait_for()
    pick_in_history(page, stored.run_id)
    page.locator("code", has_text=stored.run_id[:8]).first.wait_for()
    speed = page.get_by_test_id("stMain").get_by_role("slider")
    speed.focus()
    speed.press("Home")  # Slow: every few words drawn, even on a loaded machine
    page.get_by_test_id("stSliderThumbValue").get_by_text("Slow", exact=True).wait_for()
    wait_for_app(page)
    page.get_by_role("button", name="Replay").click()
    wait_for_bubble_to_grow(page, "player")
    page.get_by_text(f"{stored.outcome} —").first.wait_for(timeout=60_000)
    assert page.get_by_text("Round 2 —").count() >= 1
    assert core.Store(db).count_exchanges() == exchanges  # a replay runs nothing and stores nothing


def test_html_from_an_agent_shows_as_literal_text_and_runs_nothing(app_server, page):
    base, db = app_server
    hostile = "<img src=x onerror=alert(1)><script>alert(2)</script><b>x</b> [link](http://example.com)"

    class Player:
        name = "stub-player"

        def propose(self, world, constraints, portfolio, history):
            yield hostile
            return core.Turn(core.Proposal(reasoning=hostile, actions=[{"action_type": "hold", "symbol": "AMZN"}]))

    seed(db, "hostile", Player(), preset="moderate")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{base}/history")
    page.get_by_role("heading", name="History", exact=True).wait_for()
    pick_in_history(page, "hostile")
    # in the Player's bubble and in its (open) round card
    bubble = page.locator(BUBBLE.format(role="player")).filter(has_text="onerror")
    bubble.wait_for()
    assert hostile in bubble.inner_text()
    said = page.locator(".pc-said").filter(has_text="onerror").first
    said.wait_for()
    assert hostile in said.inner_text()
    wait_for_app(page)
    # No element that could run anything exists, so nothing can fire later: no wait needed before saying so.
    assert page.locator(".pc-stage img, .pc-said img, .pc-stage script, .pc-said script, .pc-bubble b").count() == 0
    assert page.locator('a[href="http://example.com"]').count() == 0
    assert dialogs == []


@pytest.fixture
def listener():
    """A local HTTP server that records every request it gets: what a page must never call."""
    import http.server
    import threading

    seen: list[str] = []

    class Record(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the stdlib's name)
            seen.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Record)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_reasoning_with_a_lone_cr_and_bare_urls_replays_as_text_and_calls_nothing(app_server, page, listener):
    base, db = app_server
    host, seen = listener
    hostile = f"Trend up.\r\r![x]({host}/b.png) [link]({host}/) and {host}/bare and www.example.com"

    class Player:
        name = "stub-player"

        def propose(self, world, constraints, portfolio, history):
            yield hostile
            return core.Turn(core.Proposal(reasoning=hostile, actions=[{"action_type": "hold", "symbol": "AMZN"}]))

    class Failing:
        name = "failing-player"

        def propose(self, world, constraints, portfolio, history):
            yield "thinking"
            raise core.AgentError(f"the gateway at {host}/v1 said no")

    seed(db, "cr-injection", Player(), preset="moderate")
    seed(db, "cr-error", Failing(), preset="moderate")
    for run_id, shown in (("cr-injection", "Trend up."), ("cr-error", "said no")):
        page.goto(f"{base}/history")
        page.get_by_role("heading", name="History", exact=True).wait_for()
        pick_in_history(page, run_id)
        page.get_by_test_id("stMain").get_by_text(shown).first.wait_for()
        wait_for_app(page)
        links = page.locator(f'a[href^="{host}"], img[src^="{host}"], a[href*="www.example.com"]')
        assert links.count() == 0
    bubble = page.locator(BUBBLE.format(role="player")).filter(has_text="Trend up.")
    assert f"{host}/bare" in bubble.inner_text() if bubble.count() else True
    # every image and link the page made exists in the DOM by now; none pointed at the listener
    assert seen == []


def test_history_paints_the_summary_and_table_before_the_charts(app_server, page):
    base, db = app_server
    seed(db, "first-paint")
    # Record the order in which the page's parts first enter the document.
    page.add_init_script("""
        window.firstSeen = [];
        new MutationObserver(() => {
            for (const id of ["stMetric", "stDataFrame", "stPlotlyChart"]) {
                if (!window.firstSeen.includes(id) && document.querySelector(`[data-testid="${id}"]`))
                    window.firstSeen.push(id);
            }
        }).observe(document, {childList: true, subtree: true});
    """)
    page.goto(f"{base}/history")
    page.get_by_test_id("stPlotlyChart").nth(1).locator(".main-svg").first.wait_for(timeout=60_000)
    assert page.evaluate("window.firstSeen") == ["stMetric", "stDataFrame", "stPlotlyChart"]
    assert page.get_by_text("The charts follow").count() == 0
    titles = page.get_by_test_id("stPlotlyChart").locator(".gtitle")
    assert titles.nth(0).text_content().startswith("Exchanges per market day")
    assert titles.nth(1).text_content() == "Most frequent violations"
    # nothing picked, nothing replayed: the rounds come when a row is picked
    assert page.get_by_text("Round 1 —").count() == 0


def hold_back_charts(page) -> list[bytes]:
    """Route `page`'s connection to the server so that the first chart the server sends, and everything after it,
    is held back; returns the list the held messages are put in."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    held: list[bytes] = []

    def route(ws) -> None:
        server = ws.connect_to_server()

        def to_page(message) -> None:
            msg = ForwardMsg.FromString(message) if isinstance(message, bytes) else ForwardMsg()
            if held or msg.delta.new_element.WhichOneof("type") == "plotly_chart":
                held.append(message)
            else:
                ws.send(message)

        server.on_message(to_page)

    page.route_web_socket(re.compile(r"/_stcore/stream$"), route)
    return held


PLOTLY_CODE = "performance.getEntriesByType('resource').some(e => /\\/PlotlyChart\\.[^/]*\\.js$/.test(e.name))"
"""Whether the page fetched plotly's code (Streamlit's PlotlyChart.<hash>.js, 4.7 MB)."""


def test_history_loads_plotlys_code_once_the_table_is_drawn_before_its_charts_come(app_server, page):
    """plotly's code (4.7 MB, ~0.6 s of a core to compile and run) loads while the charts' run runs, not after it:
    here the server's charts are held back, and the code comes all the same."""
    base, db = app_server
    seed(db, "plotly-code")
    held = hold_back_charts(page)
    page.goto(f"{base}/history")
    page.get_by_test_id("stDataFrame").first.locator("canvas").first.wait_for(timeout=60_000)
    page.wait_for_function(PLOTLY_CODE, timeout=30_000)
    for _ in range(300):  # the charts' run comes (and is held back) whether the code came before or after it
        if held:
            break
        page.wait_for_timeout(100)
    assert held and page.get_by_test_id("stPlotlyChart").count() == 0


def test_a_phone_sees_history_chart_titles_clear_of_the_toolbar(app_server, browser):
    base, db = app_server
    seed(db, "phone")
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(f"{base}/history")
        chart = page.get_by_test_id("stPlotlyChart").first
        chart.locator(".gtitle").wait_for(timeout=60_000)
        chart.hover()
        bar = chart.locator(".modebar-container .modebar").first
        bar.wait_for()
        title, tools = chart.locator(".gtitle").bounding_box(), bar.bounding_box()
        overlaps = (title["x"] < tools["x"] + tools["width"] and tools["x"] < title["x"] + title["width"]
                    and title["y"] < tools["y"] + tools["height"] and tools["y"] < title["y"] + title["height"])
        assert not overlaps, (title, tools)
        frame = page.get_by_test_id("stDataFrame").first.bounding_box()
        assert frame["x"] >= 0 and frame["x"] + frame["width"] <= 390  # the table scrolls inside its frame
    finally:
        context.close()


def test_deleting_old_exchanges_on_settings_asks_before_it_deletes(app_server, page):
    base, db = app_server
    for n in range(3):
        seed(db, f"doomed-{n}")
    total = core.Store(db).count_exchanges()
    page.goto(f"{base}/settings")
    page.get_by_text("All exchanges", exact=True).click()
    wait_for_app(page)
    page.get_by_role("button", name=f"Delete {total:,} exchanges…").click()
    page.get_by_text("for good?").wait_for()
    assert core.Store(db).count_exchanges() == total
    page.get_by_role("button", name=f"Yes, delete {total:,}").click()
    page.get_by_text(f"Deleted {total:,} exchanges").wait_for()
    assert core.Store(db).count_exchanges() == 0


def test_claude_agents_play_with_a_session_key_that_is_written_nowhere(browser, tmp_path):
    """Validate a key on Settings (fake Anthropic server), run an exchange with Claude agents, look for the key."""

    from tests.support.fake_anthropic import FakeAnthropic
    from tests.support.ui_fixtures import free_port, start_app

    key = "sk-ant-test-" + "Br0wS3rK3y" * 4
    db = tmp_path / "claude.db"
    with FakeAnthropic() as fake:
        fake.scenario("reject_then_approve")
        server = start_app(db, port := free_port(), {"ANTHROPIC_BASE_URL": fake.base_url})
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            page.goto(f"http://127.0.0.1:{port}/settings")
            page.get_by_label("API key", exact=True).fill(key)
            page.get_by_label("API key", exact=True).press("Enter")
            wait_for_app(page)
            page.get_by_role("button", name="Validate").click()
            page.get_by_text("Key is valid").wait_for()
            # follow the app's own navigation: a fresh page load would be a new session without the key
            page.get_by_test_id("stSidebarNav").get_by_text("Trade Review", exact=True).click()
            page.get_by_text("Animation speed").wait_for()
            assert page.get_by_test_id("stSidebar").get_by_text("Agents: Claude").count() == 1
            set_speed(page, "Instant")
            page.get_by_role("button", name="Run exchange").click()
            page.get_by_text(re.compile(BANNER)).first.wait_for(timeout=60_000)
            assert fake.messages_requests
            assert key not in page.content()
            assert key not in page.url
        finally:
            context.close()
            server.terminate()
            logs = server.communicate(timeout=10)[0].decode(errors="replace")
    row = sqlite3.connect(db).execute("select player, model from exchanges").fetchone()
    assert row[0].startswith("claude")
    secret = key.encode()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret not in path.read_bytes(), path
    assert key not in logs
