"""Backtest's "What each rule costs": computed on request, stored with the run, reopened with it; the
frontier's rule sets save as presets with their evidence."""

import json
from datetime import date

import pytest

from core import market
from ui import session

PAGE = "pages/backtest.py"


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    monkeypatch.setenv(market.OFFLINE_ENV, "1")
    monkeypatch.setattr(market, "CACHE_DIR", tmp_path / "cache")


def short_run(at):
    """A house run of MSFT over two months under moderate, alone, to its end."""
    at.selectbox(key=session.BT_SYMBOL).set_value("MSFT").run()
    at.date_input(key=session.BT_START).set_value(date(2021, 1, 4)).run()
    at.date_input(key=session.BT_END).set_value(date(2021, 2, 26)).run()
    at.selectbox(key=session.BT_COMPARE).set_value("(none)").run()
    at.button(key=session.BT_RUN).click().run()
    for _ in range(20):
        assert not at.exception, [e.value for e in at.exception]
        if not at.session_state[session.BT_JOB] if session.BT_JOB in at.session_state else True:
            (run_key,) = at.session_state[session.BT_SHOWN]
            return run_key
        at.run()
    raise AssertionError("the backtest did not finish")


def chart_titles(at) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_what_each_rule_costs_is_computed_on_request_stored_and_reopened(app, app_store):
    at = app(PAGE)
    run_key = short_run(at)
    limits = next(df for df in at.dataframe if "rejected" in df.value.columns)
    assert "missed_pnl" not in (limits.proto.column_order or ["missed_pnl"])  # the counts stay, the money moved
    headers = [config["label"] for config in json.loads(limits.proto.columns).values()]
    assert headers and all(" " not in label for label in headers)  # one word each: four counts fit a phone
    assert not any(t.startswith("What each limit costs") for t in chart_titles(at))
    at.button(key=f"{session.BT_WHATIF_RUN}.{run_key}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    stored = app_store.what_ifs(run_key)["attribution"]
    ranked = [row["delta_return_pct"] for row in stored["rows"]]
    assert ranked == sorted(ranked, reverse=True) and stored["notes"]["deterministic"] is True
    assert any(t.startswith("What each limit costs") for t in chart_titles(at))
    again = app(PAGE)  # a new session: Past runs -> Open shows it without computing again
    again.selectbox(key=session.BT_PAST).set_value(next(iter(again.selectbox(key=session.BT_PAST).options))).run()
    again.button(key=session.BT_OPEN).click().run()
    assert any(t.startswith("What each limit costs") for t in chart_titles(again))


def test_a_sensitivity_and_a_frontier_whose_rule_set_saves_as_a_preset(app, app_store):
    at = app(PAGE)
    run_key = short_run(at)
    at.selectbox(key=f"{session.BT_SENS_LIMIT}.{run_key}").set_value("max_single_trade_pct").run()
    at.button(key=f"{session.BT_SENS_RUN}.{run_key}").click().run()
    rows = app_store.what_ifs(run_key)["sensitivity max_single_trade_pct"]["rows"]
    assert [r["max_single_trade_pct"] for r in rows] == [0.025, 0.0375, 0.05, 0.075, 0.1]  # moderate's 0.05 scaled
    assert "How the results move with max_single_trade_pct" in chart_titles(at)
    frontier = at.button(key=f"{session.BT_FRONTIER_RUN}.{run_key}")
    assert frontier.disabled  # no challenge chosen: P(pass) is an axis
    at.selectbox(key=f"{session.BT_WHATIF_CHALLENGE}.{run_key}").set_value("one_step").run()
    at.button(key=f"{session.BT_FRONTIER_RUN}.{run_key}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    front = app_store.what_ifs(run_key)["frontier"]["rows"]
    assert front and all({"max_single_trade_pct", "max_leverage", "p_pass", "passes"} <= set(r) for r in front)
    at.text_input(key=f"{session.BT_FRONTIER_NAME}.{run_key}").input("survives one_step").run()
    at.button(key=f"{session.BT_FRONTIER_SAVE}.{run_key}").click().run()
    saved = app_store.custom_presets()["survives one_step"]
    assert saved.max_single_trade_pct == front[0]["max_single_trade_pct"]
    evidence = app_store.preset_evidence("survives one_step")
    assert evidence["spec"]["symbols"] == ["MSFT"] and evidence["figures"]["p_pass"] == front[0]["p_pass"]
