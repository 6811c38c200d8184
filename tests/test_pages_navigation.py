"""Every page opens through app.py's st.navigation, on the first run and on every run after it.

Streamlit's legacy pages-directory mode (our page files live in `pages/`) would otherwise run a
page file alone after the first AppTest run, skipping app.py: the sidebar caption that app.py
draws is the proof that app.py ran.
"""

import pytest

from tests.support.ui_fixtures import texts

PAGES = {
    "pages/trade_review.py": "Trade Review",
    "pages/constraints.py": "Constraints",
    "pages/history.py": "History",
    "pages/backtest.py": "Backtest",
    "pages/settings.py": "Settings",
}


def drawn_by_app(at) -> bool:
    return any(c.startswith("Agents:") for c in texts(at.sidebar, "caption"))


def test_trade_review_is_the_default_page(app):
    at = app()
    assert [t.value for t in at.title] == ["Trade Review"]
    assert drawn_by_app(at)


@pytest.mark.parametrize("path, title", PAGES.items())
def test_every_page_opens_through_app_py_on_every_run(app, path, title):
    at = app(path)
    for _ in range(2):  # the second run is where the legacy mode used to skip app.py
        assert not at.exception, [e.value for e in at.exception]
        assert [t.value for t in at.title] == [title]
        assert drawn_by_app(at)
        at.run()


def test_switching_between_pages_keeps_app_py_in_charge(app):
    at = app()
    for path, title in [*PAGES.items(), ("pages/trade_review.py", "Trade Review")]:
        at.switch_page(path).run()
        assert [t.value for t in at.title] == [title]
        assert drawn_by_app(at)



@pytest.mark.parametrize("path", PAGES)
def test_a_database_the_app_cannot_use_is_named_on_every_page(app, tmp_path, monkeypatch, path):
    notes = tmp_path / "notes.db"
    notes.write_text("these are notes, not SQLite" * 100)
    monkeypatch.setenv("PLAYER_COACH_DB", str(notes))
    at = app(path)
    assert not at.exception, [e.value for e in at.exception]
    assert any(f"database {notes}: file is not a database" in e for e in texts(at, "error"))
