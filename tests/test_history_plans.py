"""History's pages on a filter: many matches are found by walking the date index (no sort of every match),
few through the filter's own index; either way a page is the whole listing's rows, newest first."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import date, datetime, timedelta, timezone

import pytest

import core
from core.journal.history import HistoryFilter

NEWEST = datetime(2025, 6, 30, 20, 0, tzinfo=timezone.utc)
ROWS = 1_500  # more than a page walks (core.journal.history.WALKED_PER_ROW rows for each row it needs)
OLD_FEW = 5  # the oldest rows, the only NFLX ones (a symbol the preset forbids: they end ABORT)


def _played() -> dict[str, core.Artifact]:
    """One house exchange per symbol: AMZN and MSFT approve, TSLA's hurried one round ends REJECT-MAX."""
    moderate = core.load_preset("moderate")
    played = {}
    for symbol in ("AMZN", "MSFT", "TSLA", "NFLX"):
        hurried = symbol == "TSLA"
        world = core.WorldState(symbol=symbol, as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)
        constraints = moderate.model_copy(update={"max_rounds": 1}) if hurried else moderate
        played[symbol] = core.run_exchange_sync(world, constraints, core.Portfolio(),
                                                core.HousePlayer(seed=1, flaw_rate=1.0 if hurried else 0.0),
                                                core.HouseCoach(), strategy_id="s0")
    return played


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    """ROWS exchanges five minutes apart, stored oldest first (run id order is storing order): the symbols in
    turn, four strategies, two repeat groups, and every 50th pair of rows run at the same instant."""
    played = _played()
    rows = []
    for i in reversed(range(ROWS)):  # i = 0 is the newest
        symbol = "NFLX" if i >= ROWS - OLD_FEW else ("AMZN", "MSFT", "TSLA")[i % 3]
        when = NEWEST - timedelta(minutes=5 * (i - (i % 50 == 1)))
        world = played[symbol].world_state.model_copy(update={"as_of": when.astimezone(core.ET)})
        rows.append(played[symbol].model_copy(update={
            "run_id": f"r{ROWS - i:05d}", "timestamp": when.isoformat(), "world_state": world,
            "strategy_id": f"s{i % 4}", "repeat_id": "g1" if 100 <= i < 105 else "g2" if 700 <= i < 703 else None}))
    path = tmp_path_factory.mktemp("history") / "plans.db"
    core.Store(path).record_many(rows)
    return path


@pytest.fixture
def statements(monkeypatch):
    """The SQL the store sends from here on."""
    seen = []
    connect = sqlite3.connect

    def traced(*args, **kwargs):
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(seen.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    return seen


def plan(path, statements: list[str], starting: str = "select run_id, market_time") -> list[str]:
    """EXPLAIN QUERY PLAN of the last statement the store ran that starts so (by default a listing: the one whose
    rows came back)."""
    last = [s for s in statements if s.startswith(starting)][-1]
    with sqlite3.connect(path) as conn:
        return [row[3] for row in conn.execute("explain query plan " + last)]


def newest_first(rows: list[dict], dated: str) -> bool:
    """Newest first by the dated column, the last stored (highest run id) first among equal dates."""
    keys = [(r[dated], r["run_id"]) for r in rows]
    return keys == sorted(keys, reverse=True)


MANY = {
    "approved": HistoryFilter(outcome=["APPROVE"]),
    "rejected (a third)": HistoryFilter(outcome=["REJECT-MAX"]),
    "a symbol": HistoryFilter(symbol=["AMZN"]),
    "two symbols": HistoryFilter(symbol=["MSFT", "TSLA"]),
    "a strategy": HistoryFilter(strategy=["s1"]),
    "outcome and symbol": HistoryFilter(outcome=["APPROVE"], symbol=["MSFT"]),
    "symbol and strategy": HistoryFilter(symbol=["AMZN"], strategy=["s2", "s3"]),
    "symbol since a day": HistoryFilter(symbol=["TSLA"], since=date(2025, 6, 28)),
    "strategy in a week": HistoryFilter(strategy=["s2"], since=date(2025, 6, 20), until=date(2025, 6, 26)),
}
FEW = {
    "an old symbol": HistoryFilter(symbol=["NFLX"]),
    "an old outcome": HistoryFilter(outcome=["ABORT", "ERROR"]),
    "an outcome no row has": HistoryFilter(outcome=["REJECT"]),
    "a pair no row has": HistoryFilter(outcome=["REJECT-MAX"], symbol=["AMZN"]),
    "unfaithful (none)": HistoryFilter(unfaithful=True),
}


@pytest.mark.parametrize("dates_by", ["market", "run"])
@pytest.mark.parametrize("offset", [0, 20])
@pytest.mark.parametrize("name", list(MANY))
def test_a_page_of_a_filter_that_keeps_many_rows_walks_the_date_index_and_sorts_nothing(path, statements, name,
                                                                                     offset, dates_by):
    matching = dataclasses.replace(MANY[name], dates_by=dates_by, one_per_group=True)
    page = core.Store(path).list_exchanges(matching, limit=20, offset=offset)
    steps = plan(path, statements)
    assert len(page) == 20
    assert "USE TEMP B-TREE FOR ORDER BY" not in steps, steps
    assert f"idx_exchanges_{matching.dated}" in steps[0], steps


@pytest.mark.parametrize("dates_by", ["market", "run"])
@pytest.mark.parametrize("name", list(FEW))
def test_a_filter_that_keeps_few_rows_finds_them_through_its_own_index(path, statements, name, dates_by):
    matching = dataclasses.replace(FEW[name], dates_by=dates_by, one_per_group=True)
    page = core.Store(path).list_exchanges(matching, limit=20)
    steps = plan(path, statements)
    assert len(page) == (OLD_FEW if name.startswith("an old") else 0)
    reads = [step for step in steps if step.startswith(("SCAN exchanges", "SEARCH exchanges"))]
    assert reads and not any(step.startswith("SCAN") for step in reads), steps  # never every row


@pytest.mark.parametrize("one_per_group", [False, True])
@pytest.mark.parametrize("dates_by", ["market", "run"])
@pytest.mark.parametrize("name", [*MANY, *FEW])
def test_pages_are_the_whole_listing_cut_in_twenties_newest_first(path, name, dates_by, one_per_group):
    store = core.Store(path)
    matching = dataclasses.replace({**MANY, **FEW}[name], dates_by=dates_by, one_per_group=one_per_group)
    everything = store.list_exchanges(matching, limit=None)
    pages = [store.list_exchanges(matching, limit=20, offset=offset) for offset in range(0, 100, 20)]
    assert [row for page in pages for row in page] == everything[:100]
    assert store.count_exchanges(matching) == len(everything)
    assert newest_first(everything, matching.dated)


@pytest.mark.parametrize("dates_by", ["market", "run"])
@pytest.mark.parametrize("name", ["approved", "a symbol", "a strategy", "outcome and symbol"])
def test_a_count_within_a_few_days_reads_those_days_through_the_date_index(path, statements, name, dates_by):
    matching = dataclasses.replace(MANY[name], dates_by=dates_by, since=date(2025, 6, 28), one_per_group=True)
    store = core.Store(path)
    count = store.count_exchanges(matching)
    steps = plan(path, statements, starting='select count(*) from "exchanges"')
    assert f"idx_exchanges_{matching.dated}" in steps[0], steps
    assert count == len(store.list_exchanges(matching, limit=None)) > 0


def test_a_group_is_one_row_on_a_filtered_page(path):
    store = core.Store(path)
    rows = [r for offset in range(0, 600, 20)
            for r in store.list_exchanges(HistoryFilter(symbol=["AMZN", "MSFT", "TSLA"], dates_by="run",
                                                        one_per_group=True), limit=20, offset=offset)]
    assert [r["repeat_id"] for r in rows if r["repeat_id"]] == ["g1"]  # g2 is older than 600 rows
    assert len(rows) == 600 and len({r["run_id"] for r in rows}) == 600
