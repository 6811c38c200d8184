"""The command line, run as a user would: exit codes, JSON out, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import time_machine

import core
from tests.support.agents import Stray
from tests.support.files import sql

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


def write(tmp_path, name, data) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def action(**kw):
    return {"action_type": "enter_long", "symbol": "AMZN", "size_pct": 0.03, "entry_price": 100, "stop_loss": 98,
            "take_profit": 104, **kw}


def test_presets_lists_the_shipped_ones():
    result = cli("presets")
    assert result.returncode == 0
    assert result.stdout.split() == ["aggressive", "conservative", "funded_challenge", "futures_compatible", "moderate",
                                     "strict"]


@pytest.mark.parametrize("act,portfolio,code,decision", [
    (action(), None, 0, "APPROVE"),
    (action(take_profit=101), None, 1, "REJECT"),
    (action(), {"positions": {"MSFT": 0.8, "TSLA": 0.7}}, 2, "ABORT"),
])
def test_check_exit_codes(tmp_path, act, portfolio, code, decision):
    args = ["check", write(tmp_path, "p.json", {"reasoning": "r", "actions": [act]}), "--preset", "moderate"]
    if portfolio:
        args += ["--portfolio", write(tmp_path, "pf.json", portfolio)]
    result = cli(*args)
    assert result.returncode == code, result.stderr
    assert json.loads(result.stdout)["decision"] == decision


@pytest.mark.parametrize("content,message", [
    ("{not json", "not valid JSON"),
    ({"reasoning": "r", "actions": [action(size_pct="big")]}, "actions.0.size_pct"),
    ({"reasoning": "r", "actions": [action(symbol="a m z n")]}, "actions.0.symbol"),
    ({"reasoning": "r", "actions": [action()], "extra": 1}, "extra"),
])
def test_check_invalid_input_exits_3_with_the_field_named(tmp_path, content, message):
    result = cli("check", write(tmp_path, "p.json", content))
    assert result.returncode == 3
    assert message in result.stderr and "Traceback" not in result.stderr


def test_check_bad_preset_and_portfolio_exit_3(tmp_path):
    proposal = write(tmp_path, "p.json", {"reasoning": "r", "actions": [action()]})
    assert cli("check", proposal, "--preset", "yolo").returncode == 3
    result = cli("check", proposal, "--portfolio", write(tmp_path, "pf.json", {"equity": -5}))
    assert result.returncode == 3 and "portfolio: equity" in result.stderr


def test_exchange_prints_the_artifact_and_stores_it(tmp_path):
    db = str(tmp_path / "cli.db")
    result = cli("exchange", "--symbol", "AMZN", "--price", "185", "--sma5", "183", "--sma10", "180",
                 "--preset", "moderate", "--as-of", "2025-03-04 10:00", "--db", db, "--seed", "1")
    assert result.returncode == 0, result.stderr
    artifact = json.loads(result.stdout)
    assert artifact["outcome"] == "APPROVE" and artifact["agents"]["player"] == "house-player"
    history = cli("history", "--db", db, "--outcome", "APPROVE", "--limit", "5")
    lines = [json.loads(line) for line in history.stdout.splitlines()]
    assert [row["run_id"] for row in lines] == [artifact["run_id"]]
    assert cli("history", "--db", db, "--outcome", "ABORT").stdout == ""


def test_exchange_after_the_cutoff_is_a_breaker_and_exits_2():
    result = cli("exchange", "--symbol", "AMZN", "--price", "185", "--sma5", "183", "--sma10", "180",
                 "--as-of", "2025-03-04 16:30")
    artifact = json.loads(result.stdout)
    assert (artifact["outcome"], artifact["termination_reason"], artifact["rounds_taken"]) == ("ABORT", "trading_cutoff", 0)
    assert result.returncode == 2


def test_exchange_exits_with_its_outcome():
    world = ["--symbol", "AMZN", "--price", "185", "--sma5", "183", "--sma10", "180", "--as-of", "2025-03-04 10:00"]
    rejected = cli("exchange", *world, "--player", "tests.support.agents:Stray")  # holds QQQ: rejected every round
    assert json.loads(rejected.stdout)["outcome"] == "REJECT-MAX" and rejected.returncode == 1
    refused = cli("exchange", *world[:1], "AAPL", *world[2:])  # AAPL is not allowed: ABORT before round 1
    assert json.loads(refused.stdout)["rounds_taken"] == 0 and refused.returncode == 2
    failed = cli("exchange", *world, "--player", "tests.cli_agents:Broken")
    assert json.loads(failed.stdout)["outcome"] == "ERROR" and failed.returncode == 4


def test_a_price_too_large_to_trade_is_one_line_and_exit_3():
    result = cli("exchange", "--symbol", "AMZN", "--price", "1e308", "--sma5", "183", "--sma10", "180")
    assert result.returncode == 3 and result.stdout == ""
    assert result.stderr.strip() == "error: world state: price: Input should be less than or equal to 1000000000 (got 1e+308)"


ENTER_THEN_EXIT = {"reasoning": "r", "actions": [
    action(entry_price=185, stop_loss=182, take_profit=191), {"action_type": "exit", "symbol": "AMZN"}]}


def test_check_an_entry_and_an_exit_of_one_symbol_is_judged_not_a_crash(tmp_path):
    result = cli("check", write(tmp_path, "p.json", ENTER_THEN_EXIT), "--preset", "moderate")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["decision"] == "APPROVE"


def test_check_fails_the_atr_minimum_closed_and_takes_atr_from_the_command_line_or_a_world(tmp_path):
    tight = write(tmp_path, "p.json", {"reasoning": "r", "actions": [
        action(symbol="MSFT", size_pct=0.01, entry_price=400, stop_loss=399.9, take_profit=401)]})
    unknown = cli("check", tight, "--preset", "strict")
    assert unknown.returncode == 1
    checks = {c["constraint"]: c for c in json.loads(unknown.stdout)["checks"]}
    assert checks["min_stop_atr_multiple"]["arithmetic"] == "min_stop_atr_multiple: no ATR known for MSFT, cannot verify FAIL"
    told = json.loads(cli("check", tight, "--preset", "strict", "--atr", "MSFT=5").stdout)
    assert "|400.00-399.90| = 0.10 vs " in {c["constraint"]: c for c in told["checks"]}["min_stop_atr_multiple"]["arithmetic"]
    world = write(tmp_path, "w.json", {"symbol": "MSFT", "as_of": "2025-03-04 10:00", "price": 400, "sma5": 401,
                                       "sma10": 399, "atr": 5.0})
    from_world = json.loads(cli("check", tight, "--preset", "strict", "--world", world).stdout)
    assert {c["constraint"]: c for c in from_world["checks"]}["min_stop_atr_multiple"] == \
        {c["constraint"]: c for c in told["checks"]}["min_stop_atr_multiple"]
    bad = cli("check", tight, "--atr", "MSFT")
    assert bad.returncode == 3 and len(bad.stderr.strip().splitlines()) == 1 and "--atr" in bad.stderr


HOSTILE = {
    "deep": ("[" * 100_000, "nested too deeply to read"),
    "long number": ('{"reasoning": "r", "actions": [{"action_type": "hold", "symbol": "AMZN", "size_pct": '
                    + "9" * 5000 + "}]}", "a number with more than 4,300 digits"),
    "duplicate key": ('{"reasoning": "r", "actions": [{"action_type": "enter_long", "symbol": "AMZN", "size_pct": 0.5, '
                      '"size_pct": 0.03, "entry_price": 100, "stop_loss": 98, "take_profit": 104}]}',
                      "duplicate key 'size_pct' in one object"),
    "huge string": ('"' + "x" * 200_000 + '"', "Input should be a valid dictionary"),
    "NaN": ('{"reasoning": "r", "actions": [{"action_type": "hold", "symbol": "AMZN", "size_pct": NaN}]}',
            "NaN is not a number JSON allows"),
}


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("where", ["proposal", "portfolio"])
def test_hostile_json_is_one_short_line_and_exit_3(tmp_path, name, where):
    text, message = HOSTILE[name]
    proposal = write(tmp_path, "p.json", {"reasoning": "r", "actions": [action()]})
    hostile = write(tmp_path, "h.json", text)
    result = cli("check", hostile) if where == "proposal" else cli("check", proposal, "--portfolio", hostile)
    assert result.returncode == 3 and result.stdout == ""
    line, = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {where}: ") and (message in line or where == "portfolio" and name == "huge string")
    assert len(line) < 600 and "Traceback" not in result.stderr


def test_portfolio_symbols_that_collide_are_refused(tmp_path):
    proposal = write(tmp_path, "p.json", {"reasoning": "r", "actions": [action()]})
    result = cli("check", proposal, "--portfolio", write(tmp_path, "pf.json", {"positions": {"AMZN": 0.14, "amzn": 0.0}}))
    assert result.returncode == 3
    assert result.stderr.strip().startswith("error: portfolio: positions: 'AMZN' and 'amzn' are the same symbol AMZN")


@pytest.mark.parametrize("args,message", [
    (["--price", "-1"], "price"),
    (["--price", "abc"], "--price"),
    (["--price", "nan"], "price"),
])
def test_exchange_bad_numbers_exit_3(args, message):
    base = {"--symbol": "AMZN", "--price": "185", "--sma5": "183", "--sma10": "180"}
    base.update(dict(zip(args[::2], args[1::2])))
    result = cli("exchange", *[x for kv in base.items() for x in kv])
    assert result.returncode == 3 and message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args,message", [
    (["--outcome", "BOGUS"], "invalid choice: 'BOGUS'"),
    (["--limit", "-3"], "--limit"),
    (["--limit", "0"], "--limit"),
])
def test_history_bad_arguments_exit_3(tmp_path, args, message):
    result = cli("history", "--db", str(tmp_path / "h.db"), *args)
    assert result.returncode == 3 and message in result.stderr and "Traceback" not in result.stderr


def test_an_unusable_database_exits_3_naming_the_file(tmp_path):
    not_a_db = write(tmp_path, "notes.db", "these are notes, not SQLite" * 100)
    result = cli("history", "--db", not_a_db)
    assert result.returncode == 3 and f"database {not_a_db}" in result.stderr and "Traceback" not in result.stderr


def _stored(db: str, as_of: str, n: int) -> None:
    """n exchanges in db, every other one run 400 days ago, the rest now."""
    store = core.Store(db)
    world = core.WorldState(symbol="AMZN", as_of=as_of, price=185, sma5=183, sma10=180)
    for i in range(n):
        when = datetime.now(timezone.utc) - timedelta(days=400 if i % 2 == 0 else 0)
        with time_machine.travel(when, tick=False):  # recorded then, as prune reads it
            core.run_exchange_sync(world, core.load_preset("moderate"), core.Portfolio(), core.HousePlayer(seed=i),
                                   core.HouseCoach(), store=store, now=lambda when=when: when)


def test_prune_asks_first_and_deletes_only_what_is_older(tmp_path):
    db = str(tmp_path / "prune.db")
    _stored(db, "2025-03-04 10:00", 6)
    declined = subprocess.run([sys.executable, "-m", "core", "prune", "--older-than", "90d", "--db", db],
                              input="n\n", capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert declined.returncode == 1 and "Delete 3 exchanges" in declined.stdout and "nothing deleted" in declined.stdout
    assert core.Store(db).count_exchanges() == 6
    done = cli("prune", "--older-than", "90d", "--db", db, "--yes")
    assert done.returncode == 0 and "deleted 3 exchanges" in done.stdout, done.stderr
    assert core.Store(db).count_exchanges() == 3
    assert "nothing to delete" in cli("prune", "--older-than", "90d", "--db", db, "--yes").stdout
    assert cli("prune", "--all", "--db", db, "--yes").returncode == 0 and core.Store(db).count_exchanges() == 0


@pytest.mark.parametrize("args,message", [
    (["--older-than", "90"], "like 90d"),
    (["--older-than", "soon"], "like 90d"),
    ([], "one of the arguments --older-than --all is required"),
    (["--older-than", "9d", "--all"], "not allowed with argument"),
])
def test_prune_bad_arguments_exit_3(tmp_path, args, message):
    result = cli("prune", "--db", str(tmp_path / "p.db"), "--yes", *args)
    assert result.returncode == 3 and message in result.stderr and "Traceback" not in result.stderr


def test_a_database_with_a_corrupt_page_is_one_line_and_exit_3(tmp_path):
    db = str(tmp_path / "corrupt.db")
    _stored(db, "2025-03-04 10:00", 30)
    store = core.Store(db)
    store.checkpoint()
    size = Path(db).stat().st_size
    with open(db, "r+b") as file:
        file.seek(size // 2 // 4096 * 4096)
        file.write(b"\xde\xad\xbe\xef" * (size // 8))
    for args in (["history", "--db", db, "--limit", "1000"],
                 ["exchange", "--symbol", "AMZN", "--price", "185", "--sma5", "183", "--sma10", "180", "--db", db]):
        result = cli(*args)
        assert result.returncode == 3, (args, result.stderr)
        line, = result.stderr.strip().splitlines()
        assert line.startswith(f"error: database {db}: ") and "Traceback" not in result.stderr


def test_show_prints_the_whole_artifact_and_history_full_streams_them_with_historys_filters(tmp_path):
    db = tmp_path / "read.db"
    store = core.Store(db)
    made = {}
    moderate = core.load_preset("moderate").model_copy(update={"allowed_symbols": ["AMZN", "AAPL"]})
    for i, (symbol, day) in enumerate((("AMZN", "2021-03-04"), ("AAPL", "2021-03-05"), ("AAPL", "2021-03-08"))):
        world = core.WorldState(symbol=symbol, as_of=f"{day} 10:00", price=185, sma5=183, sma10=180)
        player = Stray() if symbol == "AAPL" else core.HousePlayer(seed=i)  # AAPL is allowed here; its Player strays
        made[f"r{i}"] = core.run_exchange_sync(world, moderate, core.Portfolio(), player, core.HouseCoach(),
                                               store=store, run_id=f"r{i}")
    shown = cli("show", "r1", "--db", str(db))
    assert shown.returncode == 0 and core.Artifact.model_validate_json(shown.stdout) == made["r1"]
    full = cli("history", "--full", "--db", str(db), "--symbol", "AAPL", "--dates-by", "market",
               "--since", "2021-03-06")
    assert full.returncode == 0 and [core.Artifact.model_validate_json(line) for line in full.stdout.splitlines()] \
        == [made["r2"]]
    said = cli("history", "--full", "--db", str(db), "--text", "QQQ NOT IN [AMZN")  # the critique of AAPL's, any case
    assert [json.loads(line)["run_id"] for line in said.stdout.splitlines()] == ["r2", "r1"]
    house = cli("history", "--db", str(db), "--player", "house-player")
    assert [json.loads(line)["run_id"] for line in house.stdout.splitlines()] == ["r0"]
    missing = cli("show", "nope", "--db", str(db))
    assert missing.returncode == 3 and missing.stderr == "error: run_id: no exchange 'nope' in this database\n"


def test_history_full_streams_what_reads_back_and_names_each_damaged_exchange(tmp_path):
    db = str(tmp_path / "damaged.db")
    _stored(db, "2025-03-04 10:00", 3)
    damaged = core.Store(db).list_exchanges()[1]["run_id"]
    sql(db, "update rounds set body = x'07' where run_id = ? and round = 1", [damaged])
    full = cli("history", "--full", "--db", db)
    assert full.returncode == 3 and len(full.stdout.splitlines()) == 2
    line, = full.stderr.splitlines()
    assert line.startswith(f"error: database {db}: exchange {damaged}: round 1 is damaged")
