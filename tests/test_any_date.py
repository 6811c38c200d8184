"""The date-sensitive parts give the right answer whatever day the suite runs on.

Each test moves the clock (time-machine) to a day before the Sonnet 4.5 retirement, one after it,
and one years later, and checks what depends on the date against that day, never against a
date written into the test as "today".
"""

from datetime import date, datetime, timedelta, timezone

import pytest
import time_machine

import core
from core import market, prices
from core.backtest.job import STALE_AFTER, past_runs
from tests.support.ui_fixtures import set_dates
from ui import session

DAYS = [datetime(2026, 1, 1, 15, tzinfo=timezone.utc), datetime(2027, 6, 30, 15, tzinfo=timezone.utc),
        datetime(2029, 1, 1, 15, tzinfo=timezone.utc)]
RETIRES = date.fromisoformat(prices.RETIRING["claude-sonnet-4-5-20250929"])
SONNET_4_5 = "claude-sonnet-4-5-20250929"


@pytest.fixture(params=DAYS, ids=lambda d: d.date().isoformat())
def clock(request):
    with time_machine.travel(request.param, tick=True) as traveller:
        yield traveller


def test_the_built_in_models_offer_a_retiring_model_only_before_its_day(clock):
    listed = {m.id: m for m in prices.builtin_models()}
    if date.today() < RETIRES:
        assert listed[SONNET_4_5].label().endswith(f"deprecated, retires {RETIRES}")
    else:
        assert SONNET_4_5 not in listed
    assert prices.DEFAULT_MODEL in listed  # the default is always offered


def test_the_models_of_a_key_follow_the_clock(clock, fake, key):
    ids = [m.id for m in core.list_models(key, base_url=fake.base_url)]
    assert (SONNET_4_5 in ids) == (date.today() < RETIRES)
    assert ids[0] == "claude-fable-5-2"


def test_settings_offers_what_the_day_allows(clock, app, monkeypatch, key):
    from tests.support.fake_anthropic import FakeAnthropic

    with FakeAnthropic() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        at = app("pages/settings.py")
        at.text_input(key=session.S_KEY_INPUT).input(key).run()
        next(b for b in at.button if b.label == "Validate").click().run()
        options = at.selectbox(key=session.S_MODEL).options
    assert session.today() == date.today()
    assert any(o.startswith("Claude Sonnet 4.5") for o in options) == (date.today() < RETIRES)


def test_history_filters_run_times_by_the_day_they_ran(clock, app, app_store):
    world = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)
    core.run_exchange_sync(world, core.load_preset("moderate"), core.Portfolio(), core.HousePlayer(),
                           core.HouseCoach(), store=app_store, run_id="ran-today")
    at = app("pages/history.py")
    at.radio(key=session.H_DATES_BY).set_value("run").run()
    today = datetime.now(timezone.utc).date()
    set_dates(at, today, today)
    table = next(df.value for df in at.dataframe if "run_id" in df.value.columns)
    assert table["run_id"].tolist() == ["ran-today"]
    yesterday = today - timedelta(days=1)
    set_dates(at, yesterday, yesterday)
    assert not any("run_id" in df.value.columns and len(df.value) for df in at.dataframe)


def test_a_past_run_turns_interrupted_once_nothing_writes_to_it(clock, store):
    written = datetime.now(timezone.utc).isoformat(timespec="seconds")
    store.start_backtest({
        "run_key": "r", "created": written, "updated": written, "status": "running", "symbol": "MSFT",
        "start": "2021-01-04", "end": "2021-03-31", "preset": "moderate",
        "constraints": core.load_preset("moderate").model_dump_json(), "player": "house-player",
        "coach": "house-coach", "model": None, "depth": "standard", "settings": '{"capital": 100000.0}',
        "days_total": 61, "days_done": 0, "metrics": None})
    assert [p.state for p in past_runs(store)] == ["running"]
    clock.shift(STALE_AFTER + timedelta(seconds=5))
    assert [p.state for p in past_runs(store)] == ["interrupted"]


def test_trade_review_opens_on_the_newest_day_of_the_data_whatever_the_date(clock, app):
    at = app("pages/trade_review.py")
    symbol = at.selectbox(key=session.TR_SYMBOL).value
    assert at.date_input(key=session.TR_DATE).value == market.available_dates(symbol)[-1]
