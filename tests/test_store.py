"""The SQLite store: round trips, filters, concurrency, migrations, coach memory."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlite_utils
import time_machine

import core
import core.journal.compact
import core.journal.db
from core.exchange.schema import SIDES
from core.journal.history import HISTORY_COLUMNS
from core.journal.migrations import MIGRATIONS
from tests.support.files import sql

DATA = Path(__file__).resolve().parent / "data"

WORLDS = [
    core.WorldState(symbol=s, as_of="2025-03-04 10:00", price=185, sma5=183 if up else 178, sma10=180)
    for s in ("AMZN", "MSFT", "TSLA") for up in (True, False)
]
HURRIED = "TSLA"
"""Its exchanges get one round and always a hurried first proposal (a flaw the Coach rejects): REJECT-MAX.
(A symbol the preset forbids would end ABORT before round 1, SPEC §4, so it cannot stand in for a rejection.)"""


def fill(store, n, preset="moderate", strategy="s1", start=None):
    """n house exchanges run (and recorded) one minute apart; HURRIED's end REJECT-MAX in their only round."""
    start = start or datetime(2025, 3, 4, 15, 0, tzinfo=timezone.utc)
    constraints = core.load_preset(preset)
    one_round = constraints.model_copy(update={"max_rounds": 1})
    artifacts = []
    for i in range(n):
        world = WORLDS[i % len(WORLDS)]
        hurried = world.symbol == HURRIED
        with time_machine.travel(start + timedelta(minutes=i), tick=False):
            artifacts.append(core.run_exchange_sync(
                world, one_round if hurried else constraints, core.Portfolio(),
                core.HousePlayer(seed=i, flaw_rate=1.0 if hurried else 0.5), core.HouseCoach(),
                store=store, strategy_id=strategy, now=lambda i=i: start + timedelta(minutes=i)))
    return artifacts


def test_artifact_round_trips_through_the_store(store):
    for artifact in fill(store, 6):
        stored = store.get_exchange(artifact.run_id)
        assert isinstance(stored, core.Artifact) and stored == artifact
        assert json.dumps(stored.model_dump(mode="json")) == json.dumps(artifact.model_dump(mode="json"))


def test_record_writes_a_whole_artifact_into_another_store(store, tmp_path):
    artifact = fill(store, 2)[1]
    other = core.Store(tmp_path / "other.db")
    other.record(artifact)
    assert other.get_exchange(artifact.run_id) == artifact
    assert other.count_exchanges() == 1


def test_recording_an_artifact_again_replaces_it(store):
    artifact = fill(store, 1, strategy="s1")[0]
    memory = len(store.coach_memory("s1"))
    store.record(artifact)
    store.record(artifact)
    assert len(store.coach_memory("s1")) == memory
    assert sql(store.path, "select count(*) from portfolio_snapshots") == [(1,)] and store.count_exchanges() == 1
    assert store.get_exchange(artifact.run_id) == artifact


def test_store_file_is_wal_at_the_newest_version_with_its_indexes(store):
    file = sqlite_utils.Database(store.path)
    assert file.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert store.schema_version == len(MIGRATIONS.names)
    assert [m.name for m in MIGRATIONS.applied(file)] == MIGRATIONS.names
    assert file.execute("pragma user_version").fetchone()[0] == len(MIGRATIONS.names)
    indexed = {tuple(i.columns) for i in file["exchanges"].indexes}
    assert {("timestamp",), ("outcome", "symbol", "timestamp"), ("strategy_id", "timestamp"), ("player",)} <= indexed
    plan = " ".join(r[-1] for r in file.execute("explain query plan select distinct player from exchanges"))
    assert "COVERING INDEX idx_exchanges_player" in plan  # History lists the Players without reading the table
    assert {"exchanges", "rounds", "strategies", "portfolio_snapshots", "coach_entries"} <= set(file.table_names())
    assert "coach_memory" in file.view_names()


def test_reopening_runs_no_migration_twice(store):
    fill(store, 1)
    again = core.Store(store.path)
    assert again.schema_version == len(MIGRATIONS.names) and again.count_exchanges() == 1


def test_list_filters(store):
    fill(store, 12)
    everything = store.list_exchanges(limit=None)
    assert len(everything) == 12
    assert [r["timestamp"] for r in everything] == sorted((r["timestamp"] for r in everything), reverse=True)
    hurried = store.list_exchanges(symbol=HURRIED)
    assert len(hurried) == 4 and all(r["symbol"] == HURRIED and r["outcome"] == "REJECT-MAX" for r in hurried)
    approved_amzn = store.list_exchanges(outcome="APPROVE", symbol="AMZN")
    assert approved_amzn and {r["symbol"] for r in approved_amzn} == {"AMZN"}
    assert store.count_exchanges(outcome=["APPROVE", "REJECT-MAX"]) == 12
    assert store.list_exchanges(strategy="nope") == []
    page = store.list_exchanges(limit=5, offset=5)
    assert [r["run_id"] for r in page] == [r["run_id"] for r in everything[5:10]]


def test_date_filters_take_whole_days_and_exact_times(store):
    fill(store, 3, start=datetime(2025, 3, 3, 23, 59, tzinfo=timezone.utc))  # 23:59, 00:00, 00:01
    assert store.count_exchanges(until=date(2025, 3, 3)) == 1
    assert store.count_exchanges(since=date(2025, 3, 4)) == 2
    assert store.count_exchanges(since=datetime(2025, 3, 4, 0, 1, tzinfo=timezone.utc)) == 1


def test_text_filter_searches_reasoning_and_critique(store):
    artifacts = fill(store, 6)
    in_critique = store.list_exchanges(text="Nothing to fix: the trade stays inside every limit")  # the Coach's words
    assert in_critique and {r["run_id"] for r in in_critique} == {a.run_id for a in artifacts if a.approved}
    in_reasoning = store.list_exchanges(text=f"{HURRIED} last 185.00")  # the Player's words
    assert {r["run_id"] for r in in_reasoning} == {a.run_id for a in artifacts if a.symbol == HURRIED}
    assert store.count_exchanges(text="trend up") > 0
    assert store.count_exchanges(text="no such words anywhere") == 0


def test_text_filter_takes_percent_and_underscore_literally(store):
    fill(store, 6)
    assert store.count_exchanges(text="max_single_trade_pct") > 0  # the critique names it
    assert store.count_exchanges(text="max%trade") == 0
    assert store.count_exchanges(text="trend_up") == 0  # "_" would match the space in "trend up"
    assert store.count_exchanges(text="\\") == 0


def unpacking_counted(store, monkeypatch) -> list[int]:
    """How many round first lines `store` unpacks from now on (a text search unpacks each round's)."""
    unpacked, unpack_line = [0], store._packer.unpack_line

    def counted(blob):
        unpacked[0] += 1
        return unpack_line(blob)

    monkeypatch.setattr(store._packer, "unpack_line", counted)
    return unpacked


def test_a_text_search_reads_the_rounds_once_for_every_query_that_asks_for_it(store, monkeypatch):
    fill(store, 6)
    rounds = store._db.execute("select count(*) from rounds").fetchone()[0]
    unpacked = unpacking_counted(store, monkeypatch)
    found = store.count_exchanges(text="Trend Up")
    assert unpacked[0] == rounds
    assert store.summary(text="trend up")["count"] == found  # the same words in other letters: the same search
    assert len(store.list_exchanges(text="TREND UP", one_per_group=True)) == found
    assert store.violation_counts(text="trend up") is not None and store.outcomes_by_day(text="trend up")
    assert unpacked[0] == rounds
    store.count_exchanges(text="trend down")  # other words: another pass
    assert unpacked[0] == 2 * rounds


@pytest.mark.parametrize("writer", ["this store", "another store on the file", "another thread"])
def test_a_text_search_finds_an_exchange_recorded_after_it_ran(store, world, moderate, writer):
    fill(store, 6)
    before = store.count_exchanges(text="sma5 183.00")
    assert before == 3 and store.count_exchanges(text="sma5 191.00") == 0  # half the worlds trend up
    newer = world.model_copy(update={"sma5": 191})
    record = lambda: core.run_exchange_sync(newer, moderate, core.Portfolio(), core.HousePlayer(seed=1),
                                            core.HouseCoach(), store=store if writer == "this store" else
                                            core.Store(store.path), run_id="newer")
    if writer == "another thread":
        thread = threading.Thread(target=lambda: core.run_exchange_sync(
            newer, moderate, core.Portfolio(), core.HousePlayer(seed=1), core.HouseCoach(), store=store,
            run_id="newer"))
        thread.start()
        thread.join()
    else:
        record()
    assert [r["run_id"] for r in store.list_exchanges(text="sma5 191.00")] == ["newer"]
    assert store.count_exchanges(text="sma5 183.00") == before


def test_a_text_search_forgets_an_exchange_pruned_after_it_ran(store):
    fill(store, 6)
    assert store.count_exchanges(text="trend up") == 3
    store.prune(None, now=datetime(2030, 1, 1, tzinfo=timezone.utc))
    assert store.count_exchanges(text="trend up") == 0 and store.list_exchanges(text="trend up") == []


def test_summary_and_violation_counts(store):
    artifacts = fill(store, 12)
    summary = store.summary()
    assert summary["count"] == 12
    assert summary["approval_rate"] == sum(a.approved for a in artifacts) / 12
    assert summary["mean_rounds"] == sum(a.rounds_taken for a in artifacts) / 12
    counts = dict(store.violation_counts())
    expected = {}
    for a in artifacts:
        for r in a.rounds:
            for v in r.evaluation.violations:
                expected[v] = expected.get(v, 0) + 1
    assert counts == expected
    hurried = {}
    for a in artifacts:
        for r in a.rounds:
            for v in r.evaluation.violations if a.symbol == HURRIED else []:
                hurried[v] = hurried.get(v, 0) + 1
    assert dict(store.violation_counts(symbol=HURRIED)) == hurried and hurried != expected


def test_outcomes_by_day_counts_each_days_outcomes(store):
    artifacts = fill(store, 6, start=datetime(2025, 3, 4, 23, 57, tzinfo=timezone.utc))  # runs past midnight
    expected = {}
    for a in artifacts:
        key = (a.timestamp[:10], a.outcome)
        expected[key] = expected.get(key, 0) + 1
    rows = store.outcomes_by_day()
    assert {(day, outcome): n for day, outcome, n in rows} == expected
    assert {day for day, _, _ in rows} == {"2025-03-04", "2025-03-05"} and rows == sorted(rows)
    assert sum(n for _, _, n in store.outcomes_by_day(symbol=HURRIED)) == sum(a.symbol == HURRIED for a in artifacts)


def test_coach_memory_has_a_row_per_action_and_constraint(store):
    artifact = fill(store, 1)[0]
    rows = store.coach_memory("s1")
    checks = [c for r in artifact.rounds for c in r.evaluation.checks]
    assert len(rows) == len(checks)  # one entry action: proposal-wide checks count once
    rr = [r for r in rows if r["constraint"] == "min_risk_reward"]
    assert rr and all(r["rr"] == r["value"] for r in rr)
    assert {r["outcome"] for r in rows} <= {"APPROVE", "REJECT", "ABORT"}


def test_memory_summary_names_the_most_broken_constraints(store):
    fill(store, 12)  # TSLA's hurried targets fail min_risk_reward in 3 of its 4 one-round exchanges
    summary = store.memory_summary("s1")
    assert summary[0]["failures"] >= summary[-1]["failures"]
    assert {"symbol", "constraint", "failures", "checks"} == set(summary[0])
    top = [(r["symbol"], r["constraint"], r["failures"], r["checks"]) for r in summary[:2]]
    assert top == [("AMZN", "max_single_trade_pct", 3, 8), ("TSLA", "min_risk_reward", 3, 4)]  # a tie: by symbol
    # the stray hold is charged to its own symbol
    assert ("QQQ", "allowed_symbols") in {(r["symbol"], r["constraint"]) for r in summary}


def test_custom_presets_round_trip(store):
    schema = core.load_preset("strict").model_copy(update={"max_rounds": 5})
    assert store.save_preset("my strict", schema) is False
    assert store.custom_presets() == {"my strict": schema}
    assert store.save_preset(" my strict ", core.load_preset("moderate")) is True
    assert store.custom_presets() == {"my strict": core.load_preset("moderate")}


@pytest.mark.parametrize("name,message", [("Moderate", "is a shipped preset"), ("  ", "must not be empty")])
def test_a_custom_preset_needs_a_name_of_its_own(store, name, message):
    with pytest.raises(ValueError, match=message):
        store.save_preset(name, core.load_preset("strict"))
    assert store.custom_presets() == {}


def test_four_threads_writing_250_exchanges_each_lose_nothing(store):
    constraints = core.load_preset("moderate")
    errors = []

    def writer(n):
        try:
            for i in range(250):
                core.run_exchange_sync(WORLDS[i % len(WORLDS)], constraints, core.Portfolio(), core.HousePlayer(seed=i),
                                       core.HouseCoach(), store=store, strategy_id=f"t{n}")
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count_exchanges() == 1000
    assert store.count_exchanges(outcome=["INTERRUPTED", "ERROR"]) == 0
    rounds = sql(store.path, "select sum(rounds_taken) from exchanges")
    assert sql(store.path, "select count(*) from rounds") == rounds
    assert {s: store.count_exchanges(strategy=s) for s in store.strategies()} == {f"t{n}": 250 for n in range(4)}


def test_two_processes_writing_at_once_lose_nothing(store):
    script = (
        "import sys, core\n"
        "s = core.Store(sys.argv[1]); c = core.load_preset('moderate')\n"
        "w = core.WorldState(symbol='AMZN', as_of='2025-03-04 10:00', price=185, sma5=183, sma10=180)\n"
        "for i in range(150): core.run_exchange_sync(w, c, core.Portfolio(), core.HousePlayer(seed=i), core.HouseCoach(), store=s)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(store.path)], cwd=core.journal.db.DEFAULT_PATH.parent.parent)
             for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert store.count_exchanges(outcome="APPROVE") == 300


def test_a_file_that_is_not_a_database_is_named(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("these are notes, not SQLite" * 100)
    with pytest.raises(core.StoreError, match="notes.db: file is not a database"):
        core.Store(path)


def test_a_database_from_a_newer_version_is_refused_untouched(store):
    sql(store.path, f"pragma user_version = {len(MIGRATIONS.names) + 1}")
    with pytest.raises(core.StoreError, match=f"schema version {len(MIGRATIONS.names) + 1} is newer"):
        core.Store(store.path)
    assert sql(store.path, "pragma user_version") == [(len(MIGRATIONS.names) + 1,)]


def test_a_database_that_ran_a_migration_this_app_does_not_know_is_refused_untouched(store):
    sql(store.path, "insert into _sqlite_migrations (migration_set, name, applied_at) values (?, ?, ?)",
        [MIGRATIONS.name, "_v99_from_the_future", "2030-01-01"])
    with pytest.raises(core.StoreError, match=f"schema version {len(MIGRATIONS.names) + 1} is newer"):
        core.Store(store.path)
    assert len(sql(store.path, "select * from _sqlite_migrations")) == len(MIGRATIONS.names) + 1


def test_list_rows_carry_the_market_time_the_preset_the_trade_and_the_fixed_violations(store):
    artifacts = fill(store, 6) + fill(store, 2, preset="strict", start=datetime(2025, 3, 5, tzinfo=timezone.utc))
    rows = {r["run_id"]: r for r in store.list_exchanges(limit=None)}
    for artifact in artifacts:
        row = rows[artifact.run_id]
        last = artifact.rounds[-1]
        action = last.proposal.actions[0].model_dump()
        assert row["market_time"] == artifact.world_state.as_of.isoformat()
        named = {"strict": core.load_preset("strict"), "moderate": core.load_preset("moderate")}
        assert row["preset"] == next((n for n, c in named.items() if c == artifact.constraint_snapshot), "edited")
        more = len(last.proposal.actions) - 1  # a hurried entry may carry a stray hold: "long +1"
        side = SIDES[action["action_type"]] + (f" +{more}" if more else "")
        assert (row["side"], row["size_pct"], row["entry"], row["stop"], row["target"]) == (
            side, action.get("size_pct"), action.get("entry_price"), action.get("stop_loss"), action.get("take_profit"))
        assert row["violations"] == ", ".join(last.evaluation.violations)
        earlier = {v for r in artifact.rounds[:-1] for v in r.evaluation.violations}
        assert set(filter(None, row["fixed"].split(", "))) == earlier - set(last.evaluation.violations)
    assert any(r["outcome"] == "APPROVE" and r["fixed"] for r in rows.values())
    assert {r["side"] for r in rows.values()} >= {"long", "hold"}


def test_the_preset_is_named_shipped_first_then_saved_else_edited(store, world):
    mine = core.load_preset("moderate").model_copy(update={"max_rounds": 5})
    store.save_preset("mine", mine)
    for constraints, run_id in ((core.load_preset("aggressive"), "a"), (mine, "m"),
                                (mine.model_copy(update={"max_rounds": 4}), "e")):
        core.run_exchange_sync(world, constraints, core.Portfolio(), core.HousePlayer(), core.HouseCoach(),
                               store=core.Store(store.path), run_id=run_id)
    assert {r["run_id"]: r["preset"] for r in store.list_exchanges()} == {"a": "aggressive", "m": "mine", "e": "edited"}


def test_a_preset_saved_after_exchanges_were_named_names_the_next_ones(store, world):
    """The saved presets are read once, not per exchange: a preset saved since, by this store, by another
    Store on the file (another connection) or in another thread, still names the exchanges after it."""
    def named(run_id, constraints):
        core.run_exchange_sync(world, constraints, core.Portfolio(), core.HousePlayer(), core.HouseCoach(),
                               store=store, run_id=run_id)
        return next(r["preset"] for r in store.list_exchanges() if r["run_id"] == run_id)

    base = core.load_preset("moderate")
    mine, theirs, threaded = (base.model_copy(update={"max_rounds": n}) for n in (5, 6, 7))
    assert named("before", mine) == "edited"
    store.save_preset("mine", mine)
    assert named("mine", mine) == "mine"
    core.Store(store.path).save_preset("theirs", theirs)
    assert named("theirs", theirs) == "theirs"
    saver = threading.Thread(target=store.save_preset, args=("threaded", threaded))
    saver.start()
    saver.join()
    assert named("threaded", threaded) == "threaded"
    core.Store(store.path).save_preset("mine", base.model_copy(update={"max_rounds": 8}))  # replaced elsewhere
    assert named("after", mine) == "edited"


def test_history_can_filter_and_order_by_market_date(store):
    moderate = core.load_preset("moderate")
    for day, run_id in (("2021-03-04", "late"), ("2010-06-01", "early"), ("2015-01-02", "middle")):
        world = core.WorldState(symbol="AMZN", as_of=f"{day} 15:59", price=185, sma5=183, sma10=180)
        core.run_exchange_sync(world, moderate, core.Portfolio(), core.HousePlayer(), core.HouseCoach(), store=store,
                               run_id=run_id)
    assert [r["run_id"] for r in store.list_exchanges(dates_by="market")] == ["late", "middle", "early"]
    assert [r["run_id"] for r in store.list_exchanges(dates_by="run")] == ["middle", "early", "late"]
    # 15:59 ET is 20:59 UTC: the market day is the ET one
    assert store.count_exchanges(since=date(2010, 6, 1), until=date(2010, 6, 1), dates_by="market") == 1
    assert store.count_exchanges(since=date(2010, 6, 2), dates_by="market") == 2
    assert store.count_exchanges(since=date(2010, 6, 1), until=date(2010, 6, 1), dates_by="run") == 0
    assert {day for day, _, _ in store.outcomes_by_day(dates_by="market")} == {"2021-03-04", "2010-06-01", "2015-01-02"}


def listed_as_before(store, before) -> bool:
    """The list rows hold what version 3 listed (columns added since aside)."""
    now = {r["run_id"]: r for r in store.list_exchanges(limit=None)}
    return {r["run_id"]: {k: now[r["run_id"]][k] for k in r} for r in before["list"]} == \
        {r["run_id"]: r for r in before["list"]}


@pytest.fixture
def version_3(tmp_path):
    """A copy of a database the version 3 store wrote (tests/data), and what that store read back from it."""
    path = tmp_path / "v3.db"
    shutil.copy(DATA / "store_v3.db", path)
    return path, json.loads((DATA / "store_v3.json").read_text())


def test_a_version_3_database_reads_back_every_artifact_after_the_lean_migration(version_3):
    path, before = version_3
    store = core.Store(path)
    assert store.schema_version == len(MIGRATIONS.names)
    for artifact in before["artifacts"]:
        assert store.get_exchange(artifact["run_id"]) == core.Artifact.model_validate(artifact)
    assert listed_as_before(store, before)
    memory = sorted(tuple(sorted(r.items())) for r in store.coach_memory("swing"))
    assert memory == sorted(tuple(sorted((k, v) for k, v in r.items() if k != "id")) for r in before["coach_memory_swing"])
    assert store.memory_summary("swing") == before["memory_summary_swing"]
    said = {a["run_id"]: " ".join(r["proposal"]["reasoning"] + r["evaluation"]["feedback"] for r in a["rounds"]).lower()
            for a in before["artifacts"]}
    assert store.count_exchanges(text="aapl") == sum("aapl" in text for text in said.values()) > 0
    assert store.count_exchanges(text="no such words") == 0


def test_a_version_2_database_gets_the_history_columns_filled_in(version_3):
    path, before = version_3
    db = sqlite3.connect(path)
    db.execute("drop index idx_exchanges_market_time")
    for column in HISTORY_COLUMNS:
        db.execute(f"alter table exchanges drop column {column}")
    db.execute("update exchanges set violations = 'as version 2 had it'")
    db.execute("pragma user_version = 2")
    db.commit()
    db.close()
    store = core.Store(path)
    assert listed_as_before(store, before)


def test_prune_deletes_old_exchanges_with_everything_they_own_and_shrinks_the_file(store):
    old = fill(store, 30, strategy="old", start=datetime(2025, 1, 1, tzinfo=timezone.utc))
    new = fill(store, 5, strategy="new", start=datetime(2025, 6, 1, tzinfo=timezone.utc))
    store.checkpoint()
    size = store.size_bytes()
    cutoff = datetime(2025, 3, 1, tzinfo=timezone.utc)
    assert store.count_older(cutoff) == 30
    assert store.prune(cutoff) == 30
    assert {r["run_id"] for r in store.list_exchanges(limit=None)} == {a.run_id for a in new}
    assert store.get_exchange(old[0].run_id) is None and store.coach_memory("old") == []
    assert store.strategies() == ["new"]
    for table in ("rounds", "coach_memory", "portfolio_snapshots"):
        assert sql(store.path, f"select count(*) from {table} where run_id not in (select run_id from exchanges)") \
            == [(0,)]
    assert store.size_bytes() < size
    assert store.get_exchange(new[0].run_id) == new[0]


def test_prune_of_everything_leaves_an_empty_working_store(store):
    fill(store, 4)
    assert store.count_older(None) == 4 and store.prune(None) == 4
    assert store.count_exchanges() == 0 and store.prune(None) == 0
    fill(store, 1)
    assert store.count_exchanges() == 1


def raw_rows(store, run_id):
    """Every stored column of one exchange, as SQLite holds it (ids left out)."""
    tables = {"exchanges": "*", "rounds": "*", "portfolio_snapshots": "run_id, timestamp, equity, peak_equity, "
              "start_of_day_equity, cumulative_pnl, today_pnl, positions", "coach_entries": "*"}
    return {t: sql(store.path, f"select {cols} from {t} where run_id = ? order by 1, 2", [run_id])
            for t, cols in tables.items()}


def test_the_stored_rows_survive_a_read_and_a_rewrite_byte_for_byte(store, tmp_path):
    artifact = fill(store, 2)[1]
    other = core.Store(tmp_path / "other.db")
    other.record(store.get_exchange(artifact.run_id))
    assert raw_rows(other, artifact.run_id) == raw_rows(store, artifact.run_id)
    assert other.get_exchange(artifact.run_id).model_dump_json() == artifact.model_dump_json()


@pytest.mark.parametrize("crafted", [
    {"run_id": "someone-else"},  # a key that names another column of the row
    {'equity", "timestamp': 1.0},  # a key that would break out of the column list
    {"positions": {"AMZN": 0.1}, "today_pnl": 0.0, "x) values (1); drop table rounds; --": 0},
])
def test_record_refuses_an_artifact_whose_keys_are_not_the_models_and_writes_nothing(store, tmp_path, crafted):
    data = fill(store, 1)[0].model_dump(mode="json")
    data["run_id"] = "crafted"
    data["portfolio_snapshot"].update(crafted)
    with pytest.raises(core.InvalidInput, match="artifact: portfolio_snapshot"):
        store.record(data)
    assert store.get_exchange("crafted") is None and store.count_exchanges() == 1
    assert sql(store.path, "select count(*) from portfolio_snapshots") == [(1,)]
    assert sql(store.path, "select count(*) from sqlite_master where name = 'rounds'") == [(1,)]


def test_record_takes_the_json_form_of_an_artifact_and_stores_the_model(store):
    artifact = fill(store, 1)[0]
    data = artifact.model_dump(mode="json")
    data["run_id"] = "from-a-file"
    store.record(data)
    assert store.get_exchange("from-a-file") == artifact.model_copy(update={"run_id": "from-a-file"})


def test_every_artifact_round_trips_byte_for_byte_through_the_packed_store(store):
    odd = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)

    class Talker:
        name = "talker"

        def propose(self, world, constraints, portfolio, history):
            text = 'Ünïcödé “quotes” <b>html</b>\nnew line\ttab \\ back\x00nul $5 * _ 🚀'
            yield text
            return core.Turn(core.Proposal(reasoning=text, actions=[
                {"action_type": "enter_long", "symbol": "AMZN", "size_pct": 0.1 + 0.2, "entry_price": 185.123456789,
                 "stop_loss": 1e-5, "take_profit": 1e16}, {"action_type": "hold", "symbol": "MSFT"}]))  # JSON exponents

    artifacts = fill(store, 12) + fill(store, 3, preset="strict", start=datetime(2025, 4, 1, tzinfo=timezone.utc))
    artifacts.append(core.run_exchange_sync(odd, core.load_preset("moderate"), core.Portfolio(), Talker(),
                                            core.HouseCoach(), store=store, run_id="odd"))
    artifacts.append(core.run_exchange_sync(odd, core.load_preset("moderate"),
                                            core.Portfolio(equity=80_000, peak_equity=100_000), core.HousePlayer(),
                                            core.HouseCoach(), store=store, run_id="breaker"))
    for artifact in artifacts:
        assert store.get_exchange(artifact.run_id).model_dump_json() == artifact.model_dump_json()
    assert store.count_exchanges(text="🚀") == 1 and store.count_exchanges(text="ÜNÏCÖDÉ") == 1
    assert store.count_exchanges(text="new line\ttab") == 1


def test_house_exchanges_take_under_3_kb_each(store):
    fill(store, 300)
    fill(store, 200, preset="strict", start=datetime(2025, 4, 1, tzinfo=timezone.utc))
    store.checkpoint()
    assert store.size_bytes() / 500 <= 3 * 1024


def test_a_database_keeps_the_dictionary_it_was_written_with(tmp_path, monkeypatch):
    first = core.Store(tmp_path / "first.db")
    written = fill(first, 3)
    monkeypatch.setattr(core.journal.compact, "dictionary", lambda: b'{"round":1,"proposal":{"actions":[]}} a later dictionary')
    later = core.Store(tmp_path / "later.db")
    again = fill(later, 2)
    for store, artifacts in ((core.Store(first.path), written), (later, again)):
        assert [store.get_exchange(a.run_id) for a in artifacts] == artifacts


def test_a_stored_preset_that_no_longer_validates_is_listed_unusable_with_its_reason(store):
    store.save_preset("mine", core.load_preset("moderate"))
    sql(store.path, "insert into presets (name, constraints, saved_at) values ('old', ?, '2024-01-01')",
        [json.dumps({**core.load_preset("moderate").model_dump(mode="json"), "max_rounds": 99})])
    assert list(store.custom_presets()) == ["mine"]
    assert store.unusable_presets() == {"old": "max_rounds: Input should be less than or equal to 10 (got 99)"}


def test_a_corrupt_page_after_a_good_header_is_a_store_error_naming_the_file(store):
    fill(store, 30)
    store.checkpoint()
    size = store.path.stat().st_size
    with store.path.open("r+b") as file:  # the header and the schema stay good; the later half is garbage
        file.seek(size // 2 // 4096 * 4096)
        file.write(b"\xde\xad\xbe\xef" * (size // 8))
    failed = []
    try:  # whether opening already reads a bad page (the store's dictionaries) or a later read does
        reopened = core.Store(store.path)
        reads = (reopened.list_exchanges, reopened.summary, reopened.violation_counts,
                 lambda: reopened.memory_summary("s1"))
    except core.StoreError as error:
        failed.append(str(error))
        reads = ()
    for read in reads:
        try:
            read()
        except core.StoreError as error:
            failed.append(str(error))
    assert failed and all(f.startswith(f"database {store.path}: ") and "malformed" in f for f in failed)


def test_a_database_in_a_folder_without_write_access_opens_read_only_for_reading(store, tmp_path, monkeypatch):
    fill(store, 3)
    store.checkpoint()
    real = core.journal.db.os.access
    monkeypatch.setattr(core.journal.db.os, "access", lambda path, mode: False if Path(path) == store.path.parent
                        else real(path, mode))  # root may write anywhere: the folder's mode cannot say no
    reader = core.Store(store.path)
    assert reader.read_only and reader.count_exchanges() == 3
    assert reader.get_exchange(reader.list_exchanges()[0]["run_id"]) is not None
    with pytest.raises(core.StoreError, match="it is read-only here"):
        reader.save_preset("mine", core.load_preset("moderate"))
    with pytest.raises(core.StoreError, match="it is read-only here"):
        core.run_exchange_sync(WORLDS[0], core.load_preset("moderate"), core.Portfolio(), core.HousePlayer(),
                               core.HouseCoach(), store=reader)
