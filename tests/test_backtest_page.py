"""The Backtest page: a short house-agent run shows metrics and charts; Cancel stops a run; past runs reopen."""

import base64
import re
import json
from datetime import date, timedelta

import numpy as np

import core
import pytest

from core import market
from core.backtest import job
from core.backtest import result as metrics
from core.backtest.job import SLICE_EXCHANGES, past_runs
from tests.support.ui_fixtures import texts
from ui import session

PAGE = "pages/backtest.py"


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """Offline (the app fixture sets it too), and never a developer's real data/cache/."""
    monkeypatch.setenv(market.OFFLINE_ENV, "1")
    monkeypatch.setattr(market, "CACHE_DIR", tmp_path / "cache")


def set_dates(at, start, end):
    at.date_input(key=session.BT_START).set_value(start).run()
    at.date_input(key=session.BT_END).set_value(end).run()
    return at


def dates_of(at):
    return at.date_input(key=session.BT_START).value, at.date_input(key=session.BT_END).value


def choose_short_msft(at, start=date(2021, 1, 4), end=date(2021, 3, 31), compare="strict"):
    at.selectbox(key=session.BT_SYMBOL).set_value("MSFT").run()
    set_dates(at, start, end)
    at.selectbox(key=session.BT_COMPARE).set_value(compare).run()
    return at


def run_to_the_end(at, limit=20, start=True):
    if start:
        at.button(key=session.BT_RUN).click().run()
    for _ in range(limit):
        assert not at.exception, [e.value for e in at.exception]
        if not at.session_state[session.BT_JOB] if session.BT_JOB in at.session_state else True:
            return at
        at.run()
    raise AssertionError("the backtest did not finish")


def test_a_short_house_run_shows_metrics_side_by_side_charts_and_trades(app, app_store):
    at = choose_short_msft(app(PAGE))
    run_to_the_end(at)
    assert not at.exception, [e.value for e in at.exception]
    shown = at.session_state[session.BT_SHOWN]
    assert len(shown) == 2
    tables = [df.value for df in at.dataframe]
    side_by_side = next(t for t in tables if "better" in t.columns)
    assert list(side_by_side.columns) == ["better", "moderate", "strict"]  # the verdict first: a phone shows it
    assert "Sharpe Ratio" in side_by_side.index and "Max. Drawdown [%]" in side_by_side.index
    assert side_by_side.loc["Return [%]", "better"] in ("moderate", "strict", "=")
    for activity in ("Approval Rate [%]", "Avg. Rounds", "# Trades", "Max. Drawdown [%]", "Win Rate [%]"):
        assert side_by_side.loc[activity, "better"] == "", activity  # a trade-off or a behaviour, not a merit
    table = next(df for df in at.dataframe if "better" in df.value.columns)
    assert json.loads(table.proto.columns)["better"]["help"] == metrics.BETTER_RULE  # the rule, where it is used
    assert len(at.get("plotly_chart")) >= 4  # equity, drawdown and a price chart per preset
    assert any(m.label.startswith("Return [%]") for m in at.metric)
    stored = {r["run_key"]: r for r in app_store.list_backtests()}
    assert set(shown) <= set(stored) and all(stored[k]["status"] == "finished" for k in shown)
    assert stored[shown[0]]["days_done"] == 61
    assert any("snapshot" in c for c in texts(at, "caption"))


def test_cancel_stops_the_run_and_keeps_the_days_it_decided(app, app_store, monkeypatch):
    monkeypatch.setitem(SLICE_EXCHANGES, "house", 400)  # two years of days: two slices
    at = choose_short_msft(app(PAGE), start=date(2020, 1, 2), end=date(2021, 12, 31), compare="(none)")
    at.button(key=session.BT_RUN).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state[session.BT_JOB]  # still running after the first slice
    at.button(key=session.BT_CANCEL).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert session.BT_JOB not in at.session_state
    (row,) = app_store.list_backtests()
    assert row["status"] == "cancelled" and 0 < row["days_done"] < row["days_total"]
    warning = next(w for w in texts(at, "warning") if "cancelled" in w)
    done = re.search(r"cancelled after ([\d,]+) of ([\d,]+) days", warning)
    assert done and int(done[1]) == row["days_done"] and int(done[2].replace(",", "")) == row["days_total"]
    assert f"{done[1]} of {done[2]} days" in at.selectbox(key=session.BT_PAST).options[0]  # Past runs says it alike
    at.run()  # nothing runs on by itself once cancelled
    assert app_store.list_backtests()[0]["days_done"] == row["days_done"]


def test_a_past_run_is_listed_and_reopens(app, app_store):
    at = choose_short_msft(app(PAGE), compare="(none)")
    run_to_the_end(at)
    key = at.session_state[session.BT_SHOWN][0]
    fresh = app(PAGE)
    assert fresh.selectbox(key=session.BT_PAST).value == past_runs(app_store)[0].key
    fresh.button(key=session.BT_OPEN).click().run()
    assert not fresh.exception, [e.value for e in fresh.exception]
    assert fresh.session_state[session.BT_SHOWN] == [key]
    assert any("Sharpe Ratio" in df.value.index for df in fresh.dataframe)


def test_a_comparison_is_stored_listed_and_reopened_as_one(app, app_store):
    at = choose_short_msft(app(PAGE))  # moderate against strict
    run_to_the_end(at)
    keys = at.session_state[session.BT_SHOWN]
    (entry,) = past_runs(app_store)
    assert entry.run_keys == keys and entry.presets == ["moderate", "strict"] and entry.state == "finished"
    label = at.selectbox(key=session.BT_PAST).options[0]
    assert "finished" in label and "moderate" in label and " vs strict" in label and "61 of 61 days" in label
    fresh = app(PAGE)
    fresh.selectbox(key=session.BT_COMPARE).set_value("(none)").run()  # the form says something else now
    fresh.selectbox(key=session.BT_SYMBOL).set_value("AMZN").run()
    fresh.button(key=session.BT_OPEN).click().run()
    assert not fresh.exception, [e.value for e in fresh.exception]
    assert fresh.session_state[session.BT_SHOWN] == keys
    assert fresh.selectbox(key=session.BT_PRESET).value == "moderate"
    assert fresh.selectbox(key=session.BT_COMPARE).value == "strict"  # the form says what is shown
    assert fresh.selectbox(key=session.BT_SYMBOL).value == "MSFT"
    assert dates_of(fresh) == (date(2021, 1, 4), date(2021, 3, 31))
    assert [tab.label for tab in fresh.tabs] == ["moderate", "strict"]


def test_a_crashed_run_is_listed_as_interrupted_and_resumes_from_its_days(app, app_store, monkeypatch):
    monkeypatch.setitem(SLICE_EXCHANGES, "house", 40)  # a resume of many slices: it is still running after one
    at = choose_short_msft(app(PAGE), start=date(2020, 1, 2), end=date(2021, 12, 31), compare="(none)")
    at.button(key=session.BT_RUN).click().run()  # the first slice, then the tab is closed
    (row,) = app_store.list_backtests()
    assert row["status"] == "paused" and 0 < row["days_done"] < row["days_total"]
    decided = row["days_done"]
    assert past_runs(app_store)[0].state == "running"  # just written to: another tab may be advancing it
    monkeypatch.setattr("core.backtest.job.STALE_AFTER", timedelta(0))  # ...until nothing has written for a while
    assert past_runs(app_store)[0].state == "interrupted"
    fresh = app(PAGE)
    assert "interrupted" in fresh.selectbox(key=session.BT_PAST).options[0]
    fresh.selectbox(key=session.BT_COMPARE).set_value("aggressive").run()
    fresh.button(key=session.BT_RESUME).click().run()
    assert not fresh.exception, [e.value for e in fresh.exception]
    assert fresh.selectbox(key=session.BT_COMPARE).value == "(none)"  # the form it ran with, not the one on screen
    assert fresh.session_state[session.BT_JOB]
    run_to_the_end(fresh, start=False)
    (row,) = app_store.list_backtests()  # the same run, carried on: no second row
    assert row["status"] == "finished" and row["days_done"] == row["days_total"] > decided
    assert past_runs(app_store)[0].state == "finished"


def test_a_preset_that_made_no_trade_says_why_and_is_credited_with_nothing(app, app_store):
    import core

    app_store.save_preset("AMZN only", core.load_preset("moderate").model_copy(update={"allowed_symbols": ["AMZN"]}))
    at = choose_short_msft(app(PAGE), compare="AMZN only (custom)")
    run_to_the_end(at)
    assert not at.exception, [e.value for e in at.exception]
    why = next(i for i in texts(at, "info") if "No trade" in i)
    assert "61 exchanges" in why and "`allowed_symbols`" in why
    table = next(df.value for df in at.dataframe if "better" in df.value.columns)
    assert table.loc["Sharpe Ratio", "better"] == "not comparable (no trades)"
    assert table.loc["Max. Drawdown [%]", "better"] == ""  # a drawdown is never marked
    assert table.loc["Sharpe Ratio", "AMZN only (custom)"] == "no trades"
    assert table.loc["Return [%]", "better"] != "not comparable (no trades)"  # doing nothing is a comparable return


def last_y(trace: dict) -> float:
    """A trace's last y value from plotly's JSON (numbers arrive as a base64 typed array)."""
    y = trace["y"]
    return float(np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"])[-1]) if isinstance(y, dict) else y[-1]


def test_returns_are_drawn_in_percent_with_buy_and_hold_on_its_own_scale_on_demand(app, app_store):
    at = choose_short_msft(app(PAGE), compare="(none)")
    run_to_the_end(at)
    returns = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert returns["layout"]["title"]["text"] == "Return of each preset"
    assert returns["layout"]["yaxis"]["ticksuffix"] == " %" and [t["name"] for t in returns["data"]] == ["moderate"]
    result = at.session_state[session.BT_RESULTS][at.session_state[session.BT_SHOWN][0]]
    assert last_y(returns["data"][0]) == pytest.approx(result.total_return_pct, abs=1e-6)
    at.toggle(key=session.BT_BUY_HOLD).set_value(True).run()
    returns = json.loads(at.get("plotly_chart")[0].proto.spec)
    bench = returns["data"][-1]
    assert bench["yaxis"] == "y2" and last_y(bench) == pytest.approx(result.buy_hold_return_pct, abs=1e-6)


def test_a_failed_download_shows_the_snapshot_fallback_as_a_warning(app, app_store, monkeypatch):
    def failing(symbol, start, end):
        raise ConnectionError("network is unreachable")

    at = app(PAGE)
    monkeypatch.delenv(market.OFFLINE_ENV)  # online, but yfinance fails (patched: never the network)
    monkeypatch.setattr(market, "yfinance_download", failing)
    # Dates no other test uses: the page caches the bars it loads per (symbol, start, end).
    choose_short_msft(at, start=date(2021, 6, 1), end=date(2021, 7, 30), compare="(none)")
    run_to_the_end(at)
    assert not at.exception, [e.value for e in at.exception]
    warning = next(w for w in texts(at, "warning") if "Bars from" in w)
    assert "snapshot" in warning and "yfinance failed (network is unreachable)" in warning


def test_a_claude_run_needs_its_estimated_cost_confirmed_first(app):
    at = choose_short_msft(app(PAGE), compare="(none)")
    at.session_state[session.API_KEY] = "sk-ant-api03-test"  # only shown the choice; no call is made
    at.run()
    at.radio(key=session.BT_AGENTS).set_value(at.radio(key=session.BT_AGENTS).options[1]).run()
    assert not at.exception, [e.value for e in at.exception]
    estimate = next(w for w in texts(at, "warning") if "calls" in w)
    assert "61 days × 1 preset(s)" in estimate and "$" in estimate
    assert at.button(key=session.BT_RUN).disabled
    at.checkbox(key=session.BT_CONFIRM).check().run()
    assert not at.button(key=session.BT_RUN).disabled
    assert session.BT_JOB not in at.session_state  # confirming does not start it: the Run button does
    assert "thinking" not in estimate  # the default model's thinking is turned off


def test_the_estimate_of_a_model_that_cannot_stop_thinking_counts_its_thinking(app):
    at = choose_short_msft(app(PAGE), compare="(none)")
    at.session_state[session.API_KEY] = "sk-ant-api03-test"  # only shown the choice; no call is made
    at.session_state[session.MODEL] = "claude-opus-5-5"
    at.run()
    at.radio(key=session.BT_AGENTS).set_value(at.radio(key=session.BT_AGENTS).options[1]).run()
    estimate = next(w for w in texts(at, "warning") if "calls" in w)
    assert "about 1,000 thinking tokens a call" in estimate


def test_a_custom_preset_name_is_shown_as_typed(app, app_store):
    import core
    from ui.text import literal

    name = "**loud** <b>x</b> [click](https://example.com)"
    app_store.save_preset(name, core.load_preset("moderate"))
    at = app(PAGE)
    at.selectbox(key=session.BT_PRESET).set_value(f"{name} (custom)").run()
    run_to_the_end(choose_short_msft(at, compare="(none)"))
    assert [tab.label for tab in at.tabs] == [literal(f"{name} (custom)")]  # markdown would bold it and link it
    assert at.metric[0].label.endswith(literal(f"{name} (custom)"))
    figures = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    as_typed = "**loud** &lt;b&gt;x&lt;/b&gt; [click](https://example.com) (custom)"  # plotly shows &lt; as <
    assert [f["layout"]["title"]["text"] for f in figures][-1] == f"MSFT with the trades of {as_typed}"
    assert {t["name"] for f in figures[:2] for t in f["data"]} >= {as_typed}  # equity and drawdown legends
    assert "<b>x</b>" not in json.dumps(figures)


def test_the_challenge_panel_shows_each_presets_pass_probability_with_editable_rules(app, app_store):
    import core
    from core.backtest.challenge import ChallengeRules, pass_probability

    at = choose_short_msft(app(PAGE))
    run_to_the_end(at)
    assert at.number_input(key=session.BT_CH + "moderate.max_drawdown_pct").value == 10.0  # from the preset
    assert at.number_input(key=session.BT_CH + "strict.max_daily_loss_pct").value == \
        core.load_preset("strict").max_daily_loss_pct * 100

    def table():
        return next(df.value for df in at.dataframe if "P(pass)" in df.value.columns)

    assert list(table().index) == ["moderate", "strict"]
    result = job.reopen_backtest(app_store, at.session_state[session.BT_SHOWN][0])
    rules = ChallengeRules.from_constraints(core.load_preset("moderate"), 0.005, max_days=60)
    at.number_input(key=session.BT_CH + "target").set_value(0.5).run()
    expected = pass_probability(result.equity.pct_change().iloc[1:], rules)
    assert table().loc["moderate", "P(pass)"] == f"{expected.p_pass:.1%}"
    at.number_input(key=session.BT_CH + "target").set_value(100.0).run()  # out of reach in 60 days
    assert table().loc["moderate", "P(pass)"] == "0.0%" and table().loc["moderate", "median days to pass"] == "—"


def test_the_challenge_odds_are_worked_out_once_not_on_every_rerun(app, monkeypatch):
    from ui import challenge_view

    worked = []
    real = challenge_view.pass_probability
    monkeypatch.setattr(challenge_view, "pass_probability", lambda *a, **k: worked.append(a[1]) or real(*a, **k))
    at = choose_short_msft(app(PAGE))
    run_to_the_end(at)
    at.number_input(key=session.BT_CH + "max_days").set_value(0).run()  # no time limit: ~1 s a preset
    first = len(worked)
    shown = next(df.value for df in at.dataframe if "P(pass)" in df.value.columns)
    at.toggle(key=session.BT_BUY_HOLD).set_value(True).run()  # a rerun that changes nothing of the odds
    at.run()
    assert len(worked) == first
    assert next(df.value for df in at.dataframe if "P(pass)" in df.value.columns).equals(shown)
    at.number_input(key=session.BT_CH + "target").set_value(0.5).run()  # new terms: worked out again
    assert len(worked) > first


def test_a_rerun_that_changes_no_chart_builds_none_and_a_change_builds_only_its_chart(app, monkeypatch):
    from ui import charts

    for kept in (charts.returns_curves, charts.drawdowns, charts.price_with_trades, charts.positions):
        kept.clear()  # charts kept from another test's run would be builds this one never sees
    built = []
    title = charts._title  # every chart's builder calls it once
    monkeypatch.setattr(charts, "_title", lambda text: built.append(text) or title(text))
    at = choose_short_msft(app(PAGE))
    run_to_the_end(at)
    assert sorted(built) == ["Drawdown: below the running peak", "MSFT with the trades of moderate",
                             "MSFT with the trades of strict", "Return of each preset"]
    drawn = [c.proto.spec for c in at.get("plotly_chart")]
    built.clear()
    at.run()
    at.selectbox(key=session.BT_CH + "template").set_value("two_step").run()
    at.button(key=session.BT_OPEN).click().run()  # the run already shown, read again from the store
    assert built == [] and [c.proto.spec for c in at.get("plotly_chart")] == drawn
    at.toggle(key=session.BT_BUY_HOLD).set_value(True).run()
    assert built == ["Return of each preset"] and "buy & hold" in at.get("plotly_chart")[0].proto.spec
    at.toggle(key=session.BT_BUY_HOLD).set_value(False).run()  # back to a chart built before
    assert built == ["Return of each preset"] and [c.proto.spec for c in at.get("plotly_chart")] == drawn


def test_a_portfolio_run_shows_each_symbol_the_positions_and_the_limits_that_bound(app, app_store):
    at = app(PAGE)
    at.selectbox(key=session.BT_SYMBOL).set_value("MSFT").run()
    at.multiselect(key=session.BT_MORE).set_value(["BTC-USD"]).run()
    set_dates(at, date(2020, 6, 1), date(2020, 8, 31))
    at.selectbox(key=session.BT_PRESET).set_value("aggressive").run()
    at.selectbox(key=session.BT_COMPARE).set_value("(none)").run()
    run_to_the_end(at)
    assert not at.exception, [e.value for e in at.exception]
    (key,) = at.session_state[session.BT_SHOWN]
    stored = app_store.get_backtest(key)
    assert stored["symbol"] == "MSFT,BTC-USD" and stored["status"] == "finished"
    tables = [df.value for df in at.dataframe]
    by_symbol = next(t for t in tables if "exposure_pct" in t.columns)
    assert list(by_symbol.index) == ["MSFT", "BTC-USD"]
    limits = next(t for t in tables if "days_blocked" in t.columns)  # labelled by its column config
    assert len(limits) >= 1
    trades = next(t for t in tables if "exit_reason" in t.columns)
    assert set(trades["symbol"]) <= {"MSFT", "BTC-USD"}
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("Positions at each close" in spec for spec in titles)
    assert any("BTC-USD with the trades" in spec for spec in titles)


def test_the_stocks_2000_2013_set_is_offered_for_portfolios(app):
    at = app(PAGE)
    options = at.selectbox(key=session.BT_SYMBOL).options
    assert {"AAPL", "GOOG", "IBM", "MSFT"} <= set(options) and "XOM" not in options  # sp500-2009 is not listed
    at.selectbox(key=session.BT_SYMBOL).set_value("IBM").run()
    assert not at.exception
    dates = at.date_input(key=session.BT_START)
    assert dates.min.year == 2000 and dates.max == date(2013, 3, 1)  # IBM: the set's thirteen years


def test_dates_default_to_the_days_every_chosen_symbol_has_and_survive_a_change_of_symbols_that_fits(app):
    at = app(PAGE)
    assert dates_of(at)[1] == date(2022, 3, 10)  # MSFT alone: the last year of its bars
    at.selectbox(key=session.BT_SYMBOL).set_value("AAPL").run()  # no AAPL bars from 2013 to 2024
    assert dates_of(at)[1] == date(2026, 8, 6)
    at.multiselect(key=session.BT_MORE).set_value(["IBM"]).run()  # IBM's bars end on 1 Mar 2013
    start, end = dates_of(at)
    assert end == date(2013, 3, 1) and date(2012, 2, 1) <= start < date(2012, 3, 15)  # a year both have
    assert at.date_input(key=session.BT_END).max == date(2013, 3, 1)
    set_dates(at, date(2011, 1, 3), date(2011, 6, 30))
    at.multiselect(key=session.BT_MORE).set_value(["IBM", "GOOG"]).run()  # GOOG from 2004: the dates still fit
    assert dates_of(at) == (date(2011, 1, 3), date(2011, 6, 30))
    at.selectbox(key=session.BT_SYMBOL).set_value("MSFT").run()
    assert dates_of(at) == (date(2011, 1, 3), date(2011, 6, 30))
    at.multiselect(key=session.BT_MORE).set_value(["BTC-USD"]).run()  # 2019-2021: no day in common with 2011
    assert not at.exception
    assert all(date(2019, 1, 1) <= d <= date(2021, 1, 12) for d in dates_of(at))
    assert any("Dates moved" in c for c in texts(at, "caption"))
    at.multiselect(key=session.BT_MORE).set_value(["TSLA"]).run()  # MSFT's data has no 2017-2018
    assert any("no trading days in common" in e for e in texts(at, "error"))


def test_the_challenge_chooser_runs_a_template_and_the_horizon_is_capped(app, app_store):
    import core
    from core.backtest.challenge import MAX_HORIZON_DAYS, pass_probability, rolling_pass_rate

    at = choose_short_msft(app(PAGE))
    run_to_the_end(at)
    # Issue 21 item 6: neither the time limit nor the minimum of trading days goes past ten years of trading days.
    assert at.number_input(key=session.BT_CH + "max_days").max == MAX_HORIZON_DAYS == 2520
    assert at.number_input(key=session.BT_CH + "min_days").max == MAX_HORIZON_DAYS
    at.selectbox(key=session.BT_CH + "drawdown").set_value("static").run()
    assert not at.exception
    at.selectbox(key=session.BT_CH + "template").set_value("two_step").run()
    assert not at.exception, [e.value for e in at.exception]
    table = next(df.value for df in at.dataframe if "P(pass)" in df.value.columns)
    result = job.reopen_backtest(app_store, at.session_state[session.BT_SHOWN][0])
    returns = result.equity.pct_change().iloc[1:]
    two = core.load_challenge("two_step")
    def percent(p):  # as the panel shows a share: two decimals under 1 %
        return f"{p:.2%}" if 0 < p < 0.01 else f"{p:.1%}"

    assert table.loc["moderate", "P(pass)"] == percent(pass_probability(returns, two).p_pass)
    assert table.loc["moderate", "from each start day"] == percent(rolling_pass_rate(returns, two))
    assert not any(n.key == session.BT_CH + "target" for n in at.number_input)  # the template sets the target
    shown = " ".join(texts(at, "caption"))
    assert "Phase 1: reach 8 % profit" in shown and "drawn at random from this backtest's own daily returns" in shown
    assert "2,520 trading days (ten years)" in shown and "keeps the real order of the days" in shown


def portfolio_2012(at, compare="aggressive"):
    at.selectbox(key=session.BT_SYMBOL).set_value("MSFT").run()
    at.multiselect(key=session.BT_MORE).set_value(["AAPL", "IBM"]).run()
    set_dates(at, date(2012, 1, 3), date(2012, 2, 29))
    at.selectbox(key=session.BT_COMPARE).set_value(compare).run()
    return at


def test_symbols_a_preset_forbids_are_named_before_the_run_and_one_click_allows_them(app, app_store):
    at = portfolio_2012(app(PAGE))
    warning = next(w for w in texts(at, "warning") if "allowed_symbols" in w)
    assert "AAPL and IBM are not in moderate's allowed_symbols: they will never trade." in warning
    assert "IBM is not in aggressive's allowed_symbols: it will never trade." in warning
    at.checkbox(key=session.BT_ALLOW).check().run()
    assert not any("never trade" in w for w in texts(at, "warning"))
    assert any("AAPL and IBM added to moderate's allowed_symbols for this run" in i for i in texts(at, "info"))
    run_to_the_end(at)
    assert not any("could trade different symbols" in w for w in texts(at, "warning"))  # both trade the whole book
    for key in at.session_state[session.BT_SHOWN]:
        allowed = core.Constraints.model_validate_json(app_store.get_backtest(key)["constraints"]).allowed_symbols
        assert {"MSFT", "AAPL", "IBM"} <= set(allowed)
    assert core.load_preset("moderate").allowed_symbols == ["AMZN", "MSFT", "TSLA", "BTC-USD"]  # the preset unchanged
    assert at.session_state[session.KEPT + session.BT_ALLOW] is True


def test_a_comparison_of_presets_that_could_trade_different_symbols_says_so_above_the_table(app):
    at = portfolio_2012(app(PAGE))
    run_to_the_end(at)
    note = next(w for w in texts(at, "warning") if "could trade different symbols" in w)
    assert "moderate MSFT; aggressive MSFT and AAPL" in note
    nodes = list(at.main)  # in the page's order
    where = next(i for i, n in enumerate(nodes) if n.type == "warning" and "could trade different" in n.value)
    table = next(i for i, n in enumerate(nodes) if n.type == "dataframe" and "better" in n.value.columns)
    assert where < table  # read before the figures it qualifies


def test_yfinance_guessing_delisted_for_a_download_it_could_not_make_is_not_repeated(app, monkeypatch):
    def offline(symbol, start, end):  # what yfinance logs with no network, for any ticker
        raise ConnectionError(f"1 Failed download:\n['{symbol}']: YFTzMissingError('possibly delisted; no timezone found')")

    at = app(PAGE)
    monkeypatch.delenv(market.OFFLINE_ENV)
    monkeypatch.setattr(market, "yfinance_download", offline)
    choose_short_msft(at, start=date(2021, 8, 2), end=date(2021, 9, 30), compare="(none)")  # dates no other test uses
    run_to_the_end(at)
    warning = next(w for w in texts(at, "warning") if "Bars from" in w)
    assert "delisted" not in warning and "yfinance could not download it" in warning and "snapshot" in warning


def test_past_runs_selects_the_run_that_just_finished(app, app_store):
    at = choose_short_msft(app(PAGE), start=date(2021, 1, 4), end=date(2021, 1, 29), compare="(none)")
    run_to_the_end(at)
    first = at.selectbox(key=session.BT_PAST).value
    set_dates(at, date(2021, 2, 1), date(2021, 2, 26))
    run_to_the_end(at)
    newest = past_runs(app_store)[0]
    assert newest.key != first and newest.spec.start == date(2021, 2, 1)
    assert at.selectbox(key=session.BT_PAST).value == newest.key


def test_a_symbol_that_never_traded_says_why_and_each_run_exports_its_days_metrics_and_whole_run(app):
    from core import exports

    at = portfolio_2012(app(PAGE))
    run_to_the_end(at)
    captions = texts(at, "caption")
    assert any("No trade in IBM: it is not in moderate's allowed_symbols" in c for c in captions)
    assert any("No trade in AAPL: it is not in moderate's allowed_symbols" in c for c in captions)
    labels = [b.proto.label for b in at.get("download_button")]
    assert {"Metrics CSV", "Whole run JSON"} <= set(labels) and labels.count("Export daily CSV") == 2
    results = {r.preset: r for r in (at.session_state[session.BT_RESULTS][k] for k in at.session_state[session.BT_SHOWN])}
    daily = exports.backtest_daily(results["aggressive"])
    assert list(daily.columns[-3:]) == ["MSFT position (% of equity)", "AAPL position (% of equity)",
                                        "IBM position (% of equity)"]
    assert daily["equity ($)"].iloc[-1] == pytest.approx(results["aggressive"].equity.iloc[-1], abs=0.01)
    assert (daily["IBM position (% of equity)"] == 0).all()  # aggressive does not allow IBM either
    side = exports.backtest_metrics(results)
    assert list(side.columns) == ["metric", "label", "moderate", "aggressive", "better"]
    whole = json.loads(exports.backtest_json(results))
    assert whole["runs"]["moderate"]["spec"]["presets"][0]["constraints"]["allowed_symbols"] == \
        core.load_preset("moderate").allowed_symbols
    assert len(whole["runs"]["moderate"]["exchanges"]) == len(results["moderate"].days)
    assert whole["comparison"]["approval_rate"]["better"] == ""
