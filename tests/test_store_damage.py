"""A damaged or unusual store file (issue 21, items 1-4): damaged rows are StoreErrors naming the file and the
exchange or run, and everything intact still reads; a read-only folder sees committed rows; nothing creates a
file where a command only reads; prune goes by when an exchange was recorded and never touches one being written."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import time_machine

import core
import core.journal.db
from tests.support.agents import Stray
from tests.support.files import sql
from ui import session

ROOT = Path(__file__).resolve().parent.parent
WORLD = core.WorldState(symbol="AMZN", as_of="2025-03-04 10:00", price=185, sma5=183, sma10=180)


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env=env)


def exchanges(store, n: int) -> list[core.Artifact]:
    """n exchanges rejected in every round for allowed_symbols (a hold on QQQ): REJECT-MAX after 3 rounds."""
    return [core.run_exchange_sync(WORLD, core.load_preset("moderate"), core.Portfolio(), Stray(),
                                   core.HouseCoach(), store=store, run_id=f"x{i}") for i in range(n)]


@pytest.mark.parametrize("damage", [
    "set body = randomblob(length(body))",  # flipped bytes
    "set body = x'07' || substr(body, 2)",  # a dictionary the file does not have
    "set body = x''",  # emptied
    "set body = substr(body, 1, 12)",  # cut short
])
def test_a_damaged_round_is_a_store_error_naming_the_file_and_the_exchange_and_the_rest_still_reads(store, damage):
    made = exchanges(store, 3)
    sql(store.path, f"update rounds {damage} where run_id = 'x1' and round = 1")
    with pytest.raises(core.StoreError, match=rf"^database {store.path}: exchange x1: round 1 is damaged"):
        store.get_exchange("x1")
    assert [store.get_exchange(a.run_id) for a in (made[0], made[2])] == [made[0], made[2]]
    assert store.count_exchanges() == 3 and len(store.list_exchanges()) == 3


def test_a_damaged_exchange_detail_is_a_store_error_naming_the_exchange(store):
    exchanges(store, 2)
    sql(store.path, "update exchanges set detail = x'01deadbeef' where run_id = 'x0'")
    with pytest.raises(core.StoreError, match=rf"^database {store.path}: exchange x0: its detail"):
        store.get_exchange("x0")
    assert store.get_exchange("x1") is not None


def test_a_text_search_skips_a_damaged_round_and_says_how_many(store):
    exchanges(store, 3)
    sql(store.path, "update rounds set body = x'07' where run_id = 'x1' and round = 1")
    assert store.count_exchanges(text="allowed_symbols") == 3  # x1's later rounds still name it
    assert store.skipped_rounds == 1
    assert store.count_exchanges(text="no such words") == 0 and store.skipped_rounds == 1
    assert len(store.list_exchanges(text="allowed_symbols", one_per_group=True)) == 3  # the round looked at twice
    assert store.skipped_rounds == 1


def test_a_file_whose_dictionary_is_gone_opens_for_listing_only_and_says_so(store, moderate):
    exchanges(store, 2)
    sql(store.path, "delete from dictionaries")
    reopened = core.Store(store.path)
    assert "dictionary is gone" in reopened.problem and "read-only" in reopened.problem
    assert reopened.count_exchanges() == 2 and {r["run_id"] for r in reopened.list_exchanges()} == {"x0", "x1"}
    assert reopened.summary()["count"] == 2 and reopened.violation_counts()
    with pytest.raises(core.StoreError, match=rf"^database {store.path}: exchange x\d: round 1 is damaged"):
        reopened.get_exchange("x0")
    with pytest.raises(core.StoreError, match="dictionary is gone"):
        reopened.save_preset("mine", moderate)
    assert reopened.count_exchanges(text="allowed") == 0 and reopened.skipped_rounds > 0
    listed = cli("history", "--db", str(store.path))
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 2
    assert listed.stderr.startswith(f"warning: database {store.path}: its packing dictionary is gone")


@pytest.mark.parametrize("settings", ["{not json", "[1, 2]"])
def test_a_damaged_backtest_row_is_a_store_error_naming_the_run(store, settings):
    for key in ("good", "bad"):
        store.start_backtest({"run_key": key, "created": "2025-01-01T00:00:00", "updated": "2025-01-01T00:00:00",
                              "status": "finished", "symbol": "MSFT", "settings": "{}", "metrics": "{}"})
    sql(store.path, "update backtests set settings = ? where run_key = 'bad'", [settings])
    with pytest.raises(core.StoreError, match=rf"^database {store.path}: backtest bad: its settings are damaged"):
        store.get_backtest("bad")
    assert [r["run_key"] for r in store.list_backtests()] == ["good"]
    result = cli("challenge", "--from-backtest", "bad", "--target", "0.06", "--db", str(store.path))
    assert result.returncode == 3 and "Traceback" not in result.stderr
    line, = result.stderr.splitlines()
    assert line.startswith(f"error: database {store.path}: backtest bad: its settings are damaged")


def test_a_read_only_folder_sees_the_rows_a_writer_left_in_its_write_ahead_log(tmp_path, monkeypatch):
    path = tmp_path / "left.db"
    script = ("import os, sys, core\n"
              "s = core.Store(sys.argv[1])\n"
              "w = core.WorldState(symbol='AMZN', as_of='2025-03-04 10:00', price=185, sma5=183, sma10=180)\n"
              "for i in range(3): core.run_exchange_sync(w, core.load_preset('moderate'), core.Portfolio(), "
              "core.HousePlayer(seed=i), core.HouseCoach(), store=s)\n"
              "os._exit(0)\n")  # no clean close: the rows stay in the -wal file, as a killed writer leaves them
    subprocess.run([sys.executable, "-c", script, str(path)], cwd=ROOT, check=True, timeout=60)
    assert Path(f"{path}-wal").stat().st_size > 0
    real = core.journal.db.os.access
    monkeypatch.setattr(core.journal.db.os, "access", lambda p, mode: False if Path(p) == tmp_path
                        else real(p, mode))  # root may write anywhere: the folder's mode cannot say no
    reader = core.Store(path)
    assert reader.read_only and reader.count_exchanges() == 3 and reader.note is None
    assert reader.get_exchange(reader.list_exchanges()[0]["run_id"]).outcome == "APPROVE"


def test_an_empty_db_option_is_refused_and_the_default_database_keeps_its_exchanges(tmp_path, world, moderate):
    victim = tmp_path / "victim.db"
    core.run_exchange_sync(world, moderate, core.Portfolio(), core.HousePlayer(), core.HouseCoach(),
                           store=core.Store(victim))
    env = {"PATH": "/usr/bin:/bin", "PLAYER_COACH_DB": str(victim)}
    for args in (["prune", "--all", "--yes", "--db", ""], ["history", "--db", " "], ["show", "x", "--db", ""],
                 ["exchange", "--symbol", "AMZN", "--price", "185", "--sma5", "183", "--sma10", "180", "--db", ""],
                 ["challenge", "--from-backtest", "x", "--target", "0.06", "--db", ""]):
        result = cli(*args, env=env)
        assert result.returncode == 3 and "--db: must name a SQLite file" in result.stderr, (args, result.stderr)
    assert core.Store(victim).count_exchanges() == 1


@pytest.mark.parametrize("command", [["history"], ["show", "x"], ["prune", "--all", "--yes"],
                                     ["challenge", "--from-backtest", "x", "--target", "0.06"]])
def test_a_command_that_only_reads_never_turns_a_file_into_a_database(tmp_path, command):
    empty, missing = tmp_path / "empty.csv", tmp_path / "missing.db"
    empty.write_bytes(b"")
    for path, what in ((empty, "an empty file, not a database"), (missing, "no such file")):
        result = cli(*command, "--db", str(path))
        assert result.returncode == 3 and result.stderr == f"error: database {path}: {what} (only a command that " \
            "stores something creates one)\n", result.stderr
    assert empty.read_bytes() == b"" and not missing.exists() and sorted(tmp_path.iterdir()) == [empty]


def test_prune_goes_by_when_an_exchange_was_recorded_not_by_its_date(store, moderate):
    now = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
    old_world = core.WorldState(symbol="AMZN", as_of="2021-03-04 10:00", price=185, sma5=183, sma10=180)
    with time_machine.travel(now, tick=False):  # a backtest records an exchange dated years ago, today
        core.run_exchange_sync(old_world, moderate, core.Portfolio(), core.HousePlayer(), core.HouseCoach(),
                               store=store, run_id="dated-2021", now=lambda: datetime(2021, 3, 4, 15, tzinfo=timezone.utc))
    with time_machine.travel(now - timedelta(days=60), tick=False):
        core.run_exchange_sync(old_world, moderate, core.Portfolio(), core.HousePlayer(), core.HouseCoach(),
                               store=store, run_id="recorded-60-days-ago")
    assert store.count_older(now - timedelta(days=30), now=now) == 1
    assert store.prune(now - timedelta(days=30), now=now) == 1
    assert [r["run_id"] for r in store.list_exchanges()] == ["dated-2021"]


def test_prune_never_touches_an_exchange_still_being_written(store, world, moderate):
    now = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
    done = core.run_exchange_sync(world, moderate, core.Portfolio(), core.HousePlayer(), core.HouseCoach(),
                                  now=lambda: now)
    with time_machine.travel(now - timedelta(minutes=5), tick=False):
        store.start_exchange(done.model_copy(update={"run_id": "being-written", "rounds": [], "outcome": "INTERRUPTED"}))
    with time_machine.travel(now - timedelta(days=3), tick=False):
        store.start_exchange(done.model_copy(update={"run_id": "crashed", "rounds": [], "outcome": "INTERRUPTED"}))
    assert store.prune(None, now=now) == 1  # --all: the one left by a crashed writer days ago goes
    assert [r["run_id"] for r in store.list_exchanges()] == ["being-written"]
    with time_machine.travel(now, tick=False):
        store.record_round(done.model_copy(update={"run_id": "being-written"}), done.rounds[0])
        store.finish_exchange(done.model_copy(update={"run_id": "being-written"}))
    assert store.get_exchange("being-written").rounds == done.rounds[:1]


def test_history_lists_what_is_intact_of_a_file_whose_dictionary_is_gone_and_says_so(app, app_store):
    exchanges(app_store, 2)
    sql(app_store.path, "delete from dictionaries")
    at = app("pages/history.py")
    warnings = [w.value for w in at.warning]
    assert any("its packing dictionary is gone" in w for w in warnings), warnings
    assert any(m.value == "2" for m in at.metric if m.label == "Exchanges")


def test_history_names_a_picked_exchange_that_does_not_read_back_and_the_page_goes_on(app, app_store):
    exchanges(app_store, 2)
    sql(app_store.path, "update rounds set body = x'07' where run_id = 'x1' and round = 1")
    at = app("pages/history.py")
    at.session_state[session.HISTORY_SELECTED] = "x1"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("exchange x1: round 1 is damaged" in e.value for e in at.error)


def test_a_read_only_folder_without_the_wal_index_says_that_recent_rows_may_be_missing(tmp_path, monkeypatch):
    path = tmp_path / "left.db"
    store = core.Store(path)
    exchanges(store, 2)
    store.checkpoint()
    script = ("import os, sys, core\n"
              "s = core.Store(sys.argv[1])\n"
              "w = core.WorldState(symbol='AMZN', as_of='2025-03-04 10:00', price=185, sma5=183, sma10=180)\n"
              "core.run_exchange_sync(w, core.load_preset('moderate'), core.Portfolio(), core.HousePlayer(), "
              "core.HouseCoach(), store=s)\n"
              "os._exit(0)\n")
    subprocess.run([sys.executable, "-c", script, str(path)], cwd=ROOT, check=True, timeout=60)
    real_access, real_connect = core.journal.db.os.access, core.journal.db.sqlite3.connect

    def connect(target, *args, **kwargs):  # what SQLite says when it can neither open nor make the -shm file
        if "mode=ro" in str(target) and "immutable" not in str(target):
            raise core.journal.db.sqlite3.OperationalError("unable to open database file")
        return real_connect(target, *args, **kwargs)

    monkeypatch.setattr(core.journal.db.os, "access", lambda p, mode: False if Path(p) == tmp_path
                        else real_access(p, mode))
    monkeypatch.setattr(core.journal.db.sqlite3, "connect", connect)
    reader = core.Store(path)
    assert "rows written since the last checkpoint may be missing" in reader.note
    assert reader.count_exchanges() == 2  # the file as it stands; the third is in the -wal it cannot read
