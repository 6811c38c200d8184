"""Fixtures for the page and browser tests: a running app server and a headless chromium.

The fixtures reach every test through `pytest_plugins` in tests/conftest.py. `start_app` and
`launch_chromium` also serve the UI bench and `make screenshots`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

__all__ = ["app", "app_store", "app_server", "browser", "page"]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# Debian's chromium, never a downloaded one; no background traffic, so nothing leaves the machine.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
APP = str(ROOT / "app.py")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(db: Path, port: int, extra_env: dict | None = None) -> subprocess.Popen:
    """`streamlit run app.py` on localhost with its own database; returns once it answers health checks."""
    # Offline, and a cache folder of its own: a developer's downloads never change what a test sees.
    env = {**os.environ, "PLAYER_COACH_DB": str(db), "PLAYER_COACH_OFFLINE": "1",
           "PLAYER_COACH_CACHE": str(db.parent / "cache"), **(extra_env or {})}
    env.pop("ANTHROPIC_API_KEY", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", APP, "--server.headless=true", f"--server.port={port}",
         "--server.address=127.0.0.1", "--browser.gatherUsageStats=false", "--server.fileWatcherType=none"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("streamlit exited: " + server.stdout.read().decode(errors="replace")[-2000:])
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("streamlit did not answer within 60 s")


def launch_chromium(playwright):
    """Headless Debian chromium through Playwright."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def wait_for_app(page) -> None:
    """Until the app's script has finished its run (Streamlit marks the app element)."""
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()


def wait_until_drawn(page) -> None:
    """Until the app's run is over and the browser has drawn all of it, so that nothing moves under a click.

    An element whose kind's code is still loading stands as a skeleton of its own height; the page below it
    moves when the element comes (the run may be over by then: on Backtest, its radios and number boxes came
    0.1-0.7 s after the run on a loaded machine, and took the Past runs box 33 px down under a click)."""
    wait_for_app(page)
    page.get_by_test_id("stSkeleton").first.wait_for(state="detached")


def set_speed(page, label: str) -> None:
    """Move Trade Review's animation-speed slider to a speed by name (ui.session.SPEEDS, slowest first)."""
    from ui.session import SPEEDS

    names = list(SPEEDS)
    speed = page.get_by_test_id("stSidebar").get_by_role("slider")
    speed.focus()
    if label == names[-1]:
        speed.press("End")
    else:
        speed.press("Home")
        for _ in range(names.index(label)):
            speed.press("ArrowRight")
    page.get_by_test_id("stSliderThumbValue").get_by_text(label, exact=True).wait_for()
    wait_for_app(page)


def reject_then_approve_seed(preset: str = "moderate") -> int | None:
    """A house Player seed whose exchange on Trade Review's opening world is REJECT, then APPROVE."""
    from datetime import datetime

    import core
    from core import market
    from ui import market_defaults

    constraints = core.load_preset(preset)
    symbol = max((s for s in constraints.allowed_symbols if s in market.snapshot_symbols()),
                 key=lambda s: market.available_dates(s)[-1])
    day = market.available_dates(symbol)[-1]
    fields, _ = market_defaults.world(symbol, day)  # what the page fills the sidebar with
    world = core.WorldState(symbol=symbol, as_of=datetime.combine(day, market.DECISION_TIME), **fields)
    for seed in range(60):
        artifact = core.run_exchange_sync(world, constraints, core.Portfolio(), core.HousePlayer(seed=seed),
                                          core.HouseCoach())
        if [r.evaluation.decision for r in artifact.rounds] == ["REJECT", "APPROVE"]:
            return seed
    return None


def stop_app(server: subprocess.Popen) -> str:
    """Stop a server from start_app; return what it printed."""
    server.terminate()
    try:
        return server.communicate(timeout=10)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        server.kill()
        return server.communicate()[0].decode(errors="replace")


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """A running app: (base URL, database path). One per test module."""
    db = tmp_path_factory.mktemp("browser") / "browser.db"
    port = free_port()
    server = start_app(db, port)
    try:
        yield f"http://127.0.0.1:{port}", db
    finally:
        stop_app(server)


@pytest.fixture(scope="module")
def browser():
    """Debian's headless chromium through Playwright; skipped when it is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (make browser) to run the browser tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        launched = launch_chromium(playwright)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture
def app(tmp_path, monkeypatch):
    """A factory of AppTests of app.py on a fresh database, animation instant, opened on `page`."""
    from streamlit.testing.v1 import AppTest

    import core.market

    monkeypatch.setenv("PLAYER_COACH_DB", str(tmp_path / "pages.db"))
    monkeypatch.setenv("PLAYER_COACH_OFFLINE", "1")
    monkeypatch.setattr(core.market, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)

    def open_app(page: str | None = None) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=60)
        at.session_state["tr_speed"] = "Instant"
        at.run()
        if page:
            at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_app


@pytest.fixture
def app_store(tmp_path, app):
    """The Store the AppTests of `app` use (same file)."""
    import core

    return core.Store(tmp_path / "pages.db")


def plain(markdown: str) -> str:
    """Markdown as the reader sees it: backslash escapes and the invisible word joiners of ui.text removed."""
    import re

    from ui.text import WORD_JOINER

    return re.sub(r"\\(.)", r"\1", markdown).replace(WORD_JOINER, "")


def texts(at, kind: str) -> list[str]:
    """The plain text of every element of one kind (success, error, warning, info, markdown, caption)."""
    return [plain(element.value if kind in ("markdown", "caption") else element.body)
            for element in getattr(at, kind)]


def set_dates(at, since, until):
    """History's date filter: From, then To (two boxes), each a run as a user's typing is."""
    from ui import session

    at.date_input(key=session.H_SINCE).set_value(since).run()
    return at.date_input(key=session.H_UNTIL).set_value(until).run()
