"""core.repeat: k exchanges on the same inputs, and how far they agree (issue 17 §3)."""

import statistics
from concurrent.futures import ThreadPoolExecutor

import pytest

import core
from core.exchange.repeat import final_trade
from tests.support.fake_anthropic import CRITIQUE, GOOD_PROPOSAL, THIN_PROPOSAL, tool

HOLD = {"reasoning": "Nothing here is worth the risk today: I hold.",
        "actions": [{"action_type": "hold", "symbol": "AMZN"}]}


def test_house_agents_with_one_seed_agree_completely(world, moderate):
    result = core.repeat(world, moderate, core.Portfolio(), lambda i: core.HousePlayer(seed=1),
                         lambda i: core.HouseCoach(), k=5)
    assert result.k == 5 and result.outcome_agreement == 1.0 and result.side_agreement == 1.0
    assert len({a.run_id for a in result.artifacts}) == 5  # five exchanges, not one five times
    assert {a.repeat_id for a in result.artifacts} == {result.repeat_id}
    for name, spread in result.spread.items():
        assert spread is not None and spread.min == spread.median == spread.max, name


def test_house_agents_show_their_seed_spread_across_seeds(world, moderate):
    seeds = range(8)
    result = core.repeat(world, moderate, core.Portfolio(), lambda i: core.HousePlayer(seed=seeds[i]),
                         lambda i: core.HouseCoach(), k=len(seeds))
    alone = [core.run_exchange_sync(world, moderate, core.Portfolio(), core.HousePlayer(seed=s), core.HouseCoach())
             for s in seeds]
    targets = [final_trade(a).take_profit for a in alone]
    rounds = [a.rounds_taken for a in alone]
    assert min(targets) < max(targets) and min(rounds) < max(rounds)  # the seeds do differ
    spread = result.spread
    assert (spread["take_profit"].min, spread["take_profit"].median, spread["take_profit"].max) == (
        min(targets), statistics.median(targets), max(targets))
    assert (spread["rounds_taken"].min, spread["rounds_taken"].max) == (min(rounds), max(rounds))
    assert sorted(result.outcomes) == sorted(a.outcome for a in alone)


def test_an_executor_runs_them_side_by_side_with_the_same_figures(world, moderate):
    with ThreadPoolExecutor(2) as pool:
        side_by_side = core.repeat(world, moderate, core.Portfolio(), lambda i: core.HousePlayer(seed=i),
                                   lambda i: core.HouseCoach(), k=4, executor=pool)
    in_turn = core.repeat(world, moderate, core.Portfolio(), lambda i: core.HousePlayer(seed=i),
                          lambda i: core.HouseCoach(), k=4)
    assert side_by_side.spread == in_turn.spread and sorted(side_by_side.outcomes) == sorted(in_turn.outcomes)


def test_claude_answering_differently_each_time_agrees_as_counted_by_hand(fake, key, world, moderate):
    one_round = moderate.model_copy(update={"max_rounds": 1})
    answers = [GOOD_PROPOSAL, THIN_PROPOSAL, HOLD, GOOD_PROPOSAL, THIN_PROPOSAL]
    for answer in answers:  # each exchange: the Player's call, then the Coach's
        fake.enqueue(tool(answer), tool(CRITIQUE))
    result = core.repeat(world, one_round, core.Portfolio(),
                         lambda i: core.ClaudePlayer(key, base_url=fake.base_url),
                         lambda i: core.ClaudeCoach(key, base_url=fake.base_url), k=len(answers))
    # By hand: APPROVE, REJECT-MAX (R/R 0.67), APPROVE (a hold), APPROVE, REJECT-MAX -> 3 of 5 agree;
    # sides long, long, hold, long, long -> 4 of 5.
    assert result.outcomes == ["APPROVE", "REJECT-MAX", "APPROVE", "APPROVE", "REJECT-MAX"]
    assert result.outcome_agreement == pytest.approx(3 / 5)
    assert result.side_agreement == pytest.approx(4 / 5)
    assert result.most_common() == ("APPROVE", "long")
    targets = result.spread["take_profit"]  # over the four entries: 191, 187, 191, 187
    assert (targets.min, targets.median, targets.max) == (187.0, 189.0, 191.0)
    cost = result.spread["cost_usd"]
    assert cost.min > 0 and cost.max >= cost.min
    assert len(fake.messages_requests) == 2 * len(answers)


def test_the_group_is_stored_as_k_exchanges_tied_by_the_repeat_id(world, moderate, store):
    result = core.repeat(world, moderate, core.Portfolio(), lambda i: core.HousePlayer(seed=i),
                         lambda i: core.HouseCoach(), k=3)
    store.record_many(result.artifacts)
    for artifact in result.artifacts:
        assert store.get_exchange(artifact.run_id).repeat_id == result.repeat_id
    single = core.run_exchange_sync(world, moderate, core.Portfolio(), core.HousePlayer(), core.HouseCoach(),
                                    store=store)
    assert store.get_exchange(single.run_id).repeat_id is None
    assert "repeat_id" not in single.model_dump(mode="json")  # a single exchange's file is as it was


@pytest.mark.parametrize("k", [0, 101, 2.5, True])
def test_a_bad_k_is_refused_naming_it(world, moderate, k):
    with pytest.raises(core.InvalidInput, match="^k: "):
        core.repeat(world, moderate, core.Portfolio(), lambda i: core.HousePlayer(), lambda i: core.HouseCoach(), k=k)


WORLD_ARGS = ["--symbol", "AMZN", "--price", "185", "--sma5", "183", "--sma10", "180", "--as-of", "2025-03-04 10:00"]


def test_the_command_line_repeats_stores_the_group_and_prints_json(tmp_path, capsys):
    import json

    from core.__main__ import main

    db = tmp_path / "repeat.db"
    assert main(["repeat", *WORLD_ARGS, "--k", "3", "--json", "--db", str(db)]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["k"] == 3 and figures["outcome_agreement"] == 1.0 and figures["side_agreement"] == 1.0
    store = core.Store(db)
    assert store.count_exchanges(repeat_id=figures["repeat_id"]) == 3
    assert sorted(r["run_id"] for r in store.list_exchanges(repeat_id=figures["repeat_id"])) == sorted(figures["run_ids"])
    assert main(["repeat", *WORLD_ARGS, "--k", "4", "--vary-seed", "--json"]) == 0
    spread = json.loads(capsys.readouterr().out)["spread"]
    assert spread["rounds_taken"]["min"] < spread["rounds_taken"]["max"]  # seeds 0-3 take 1 or 2 rounds


@pytest.mark.parametrize("bad, says", [(["--k", "0"], "--k: must be a whole number from 1 to 100"),
                                       (["--k", "five"], "--k: must be a whole number"),
                                       (["--price", "-1"], "price")])
def test_the_command_line_refuses_bad_input_in_one_line(capsys, bad, says):
    from core.__main__ import main

    args = [*WORLD_ARGS, *bad] if bad[0] != "--price" else [a if a != "185" else "-1" for a in WORLD_ARGS]
    try:
        code = main(["repeat", *args])
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    assert code == 3 and says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_history_lists_a_group_as_one_row_and_keeps_its_exchanges(world, moderate, store):
    result = core.repeat(world, moderate, core.Portfolio(), lambda i: core.HousePlayer(seed=i),
                         lambda i: core.HouseCoach(), k=3)
    store.record_many(result.artifacts)
    core.run_exchange_sync(world, moderate, core.Portfolio(), core.HousePlayer(), core.HouseCoach(), store=store)
    grouped = store.list_exchanges(one_per_group=True, limit=None)
    assert store.count_exchanges(one_per_group=True) == len(grouped) == 2
    assert sorted((r["repeat_id"] is not None, r["repeats"]) for r in grouped) == [(False, 0), (True, 3)]
    assert store.count_exchanges() == 4
