"""core.backtest.challenge: pass probability against closed forms, an exact enumeration and a plain walker."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

import core
from core.__main__ import main
from core.backtest.challenge import ChallengeRules, pass_probability, read_returns, rolling_pass_rate, wilson_interval


def walk(returns, rules: ChallengeRules) -> tuple[str, int]:
    """The rule text, one day at a time in plain Python: (outcome, day); 'open' when the days run out."""
    equity = peak = 1.0
    active, best = 0, -math.inf
    for day, r in enumerate(returns, start=1):
        if rules.max_days is not None and day > rules.max_days:
            return "timeout", rules.max_days
        best = max(best, equity * r)
        equity *= 1 + r
        peak = max(peak, equity)
        active += r != 0
        if r <= -rules.max_daily_loss_pct + 1e-9:
            return "daily", day
        if equity <= peak * (1 - rules.max_drawdown_pct) + 1e-9:
            return "drawdown", day
        consistent = rules.consistency_rule_pct is None or best <= rules.consistency_rule_pct * (equity - 1) + 1e-9
        if equity >= 1 + rules.profit_target_pct - 1e-9 and active >= rules.min_trading_days and consistent:
            return "pass", day
    return ("timeout", len(returns)) if rules.max_days == len(returns) else ("open", len(returns))


# -- closed forms ------------------------------------------------------------------------------

def test_identical_positive_days_pass_on_the_day_the_target_is_reached():
    result = pass_probability([0.01] * 30, ChallengeRules(profit_target_pct=0.05, max_drawdown_pct=0.1,
                                                          max_daily_loss_pct=0.02), paths=500)
    # 1.01^4 = 1.0406 < 1.05 <= 1.01^5 = 1.0510: day 5 on every path
    assert result.p_pass == 1.0 and result.median_days_to_pass == 5.0
    assert result.p_fail_daily == result.p_fail_drawdown == result.p_timeout == 0.0
    assert result.ci_high == 1.0 and 0.99 < result.ci_low < 1.0


def test_a_series_that_never_moves_times_out_at_once():
    rules = ChallengeRules(profit_target_pct=0.05, max_drawdown_pct=0.1, max_daily_loss_pct=0.02)
    result = pass_probability([0.0] * 250, rules)  # no time limit: it would otherwise walk ten years
    assert result.p_timeout == 1.0 and result.p_pass == 0.0 and result.median_days_to_pass is None
    assert rolling_pass_rate([0.0] * 250, rules) == 0.0


def test_the_minimum_of_trading_days_and_the_time_limit_hold_a_pass_back():
    rules = dict(profit_target_pct=0.05, max_drawdown_pct=0.1, max_daily_loss_pct=0.02)
    later = pass_probability([0.01] * 30, ChallengeRules(**rules, min_trading_days=8), paths=100)
    assert later.p_pass == 1.0 and later.median_days_to_pass == 8.0
    too_short = pass_probability([0.01] * 30, ChallengeRules(**rules, max_days=4), paths=100)
    assert too_short.p_pass == 0.0 and too_short.p_timeout == 1.0 and too_short.median_days_to_pass is None


def test_every_day_breaching_the_daily_limit_never_passes():
    result = pass_probability([-0.02, -0.03, -0.025], ChallengeRules(0.05, 0.5, 0.02), paths=1000)
    assert result.p_pass == 0.0 and result.p_fail_daily == 1.0  # -2.00 % breaches a 2 % limit exactly
    assert result.ci_low == 0.0 and 0 < result.ci_high < 0.005


def test_the_consistency_rule_waits_until_the_best_day_is_a_small_enough_part_of_the_profit():
    days = [0.06, 0.0, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01]
    rules = ChallengeRules(profit_target_pct=0.05, max_drawdown_pct=0.2, max_daily_loss_pct=0.1,
                           consistency_rule_pct=0.5)
    outcome, day = walk(days, rules)
    assert (outcome, day) == ("pass", 8)  # the 6 % day is half the profit only once the total reaches 12 %
    assert pass_probability(days, rules, paths=1, block=len(days)).median_days_to_pass == 8.0


def test_the_drawdown_trails_from_the_peak():
    days = [0.05, -0.04, -0.04]  # peak 1.05; 1.05*0.96*0.96 = 0.9677 <= 1.05*0.93 = 0.9765 on day 3
    rules = ChallengeRules(profit_target_pct=0.2, max_drawdown_pct=0.07, max_daily_loss_pct=0.05)
    assert walk(days, rules) == ("drawdown", 3)
    result = pass_probability(days, rules, paths=1, block=3)
    assert result.p_fail_drawdown == 1.0


# -- the simulation against an exact enumeration ---------------------------------------------

TWO_VALUED = [0.02] * 3 + [-0.01] * 2  # up with probability 0.6
EXACT_RULES = ChallengeRules(profit_target_pct=0.05, max_drawdown_pct=0.025, max_daily_loss_pct=0.02,
                             consistency_rule_pct=0.35, min_trading_days=4, max_days=8)


def exact(values, rules: ChallengeRules) -> dict[str, float]:
    """Every sequence of max_days draws, weighted by its probability: the outcome split exactly."""
    weights = {v: values.count(v) / len(values) for v in set(values)}
    split = {"pass": 0.0, "drawdown": 0.0, "daily": 0.0, "timeout": 0.0}
    for sequence in itertools.product(weights, repeat=rules.max_days):
        split[walk(sequence, rules)[0]] += math.prod(weights[v] for v in sequence)
    return split


def test_a_two_valued_series_matches_the_exact_enumeration():
    truth = exact(TWO_VALUED, EXACT_RULES)
    assert 0.2 < truth["pass"] < 0.8 and truth["drawdown"] > 0.05 and truth["timeout"] > 0.05  # all in play
    n = 40_000
    result = pass_probability(TWO_VALUED, EXACT_RULES, paths=n, seed=1)
    for name, p in (("p_pass", truth["pass"]), ("p_fail_drawdown", truth["drawdown"]),
                    ("p_timeout", truth["timeout"])):
        assert abs(getattr(result, name) - p) <= 4 * math.sqrt(p * (1 - p) / n), name
    assert result.p_fail_daily == 0.0


def test_the_interval_covers_the_exact_probability():
    truth = exact(TWO_VALUED, EXACT_RULES)["pass"]
    covered = []
    for seed in range(10):
        r = pass_probability(TWO_VALUED, EXACT_RULES, paths=2_000, seed=seed)
        assert r.ci_low < r.p_pass < r.ci_high
        covered.append(r.ci_low <= truth <= r.ci_high)
    assert sum(covered) >= 8  # 95 % each: 8 of 10 or more nearly always (P(fewer) < 1 %)


def test_wilson_interval_by_hand():
    low, high = wilson_interval(5, 10)  # p = 0.5, n = 10, z = 1.96
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)


def test_blocks_keep_consecutive_days_together():
    days = [0.03, -0.025, 0.03, -0.025, 0.03, -0.025]
    rules = ChallengeRules(profit_target_pct=0.05, max_drawdown_pct=0.5, max_daily_loss_pct=0.04, max_days=6)
    assert pass_probability(days, rules, paths=200, block=2).p_pass == 0.0  # +3, -2.5, ...: never 5 % up
    assert pass_probability(days, rules, paths=2000, block=1).p_pass > 0.1  # independent days can run up


def test_a_seed_gives_the_same_paths():
    days = np.random.default_rng(7).normal(0.001, 0.01, 120)
    rules = ChallengeRules(0.06, 0.1, 0.02, 0.5, max_days=60)
    assert pass_probability(days, rules, seed=3) == pass_probability(days, rules, seed=3)
    assert pass_probability(days, rules, seed=3) != pass_probability(days, rules, seed=4)


# -- the actual history ---------------------------------------------------------------------------

def test_rolling_pass_rate_by_hand():
    days = [0.03, 0.03, -0.05, 0.03, 0.03]
    rules = ChallengeRules(profit_target_pct=0.05, max_drawdown_pct=0.1, max_daily_loss_pct=0.04, max_days=2)
    # start 0: +3 +3 pass; 1: +3 -5 daily; 2: -5 daily; 3: +3 +3 pass; 4: one day left, not counted
    assert rolling_pass_rate(days, rules) == 0.5


def test_rolling_pass_rate_matches_the_plain_walker_from_every_start():
    days = list(np.random.default_rng(3).normal(0.002, 0.012, 300))
    for rules in (ChallengeRules(0.06, 0.08, 0.025, 0.5, min_trading_days=5, max_days=40),
                  ChallengeRules(0.04, 0.05, 0.02)):
        starts = range(len(days) - rules.max_days + 1) if rules.max_days else range(len(days))
        expected = np.mean([walk(days[s:s + (rules.max_days or len(days))], rules)[0] == "pass" for s in starts])
        assert rolling_pass_rate(days, rules) == pytest.approx(expected, abs=1e-12)


# -- rules and inputs -------------------------------------------------------------------------------

def test_rules_from_a_preset():
    rules = ChallengeRules.from_constraints(core.load_preset("moderate"), 0.06, max_days=60)
    assert (rules.max_drawdown_pct, rules.max_daily_loss_pct, rules.consistency_rule_pct) == (0.10, 0.02, 0.50)
    relaxed = ChallengeRules.from_constraints(core.load_preset("moderate"), 0.06, consistency=False)
    assert relaxed.consistency_rule_pct is None


@pytest.mark.parametrize("field, value", [("profit_target_pct", 0), ("max_drawdown_pct", 1.5),
                                          ("max_daily_loss_pct", math.nan), ("min_trading_days", -1),
                                          ("max_days", 0), ("consistency_rule_pct", "half")])
def test_bad_rules_name_the_field(field, value):
    rules = dict(profit_target_pct=0.06, max_drawdown_pct=0.1, max_daily_loss_pct=0.02)
    with pytest.raises(core.InvalidInput, match=field):
        ChallengeRules(**{**rules, field: value})


def test_bad_returns_name_the_day():
    rules = ChallengeRules(0.06, 0.1, 0.02)
    with pytest.raises(core.InvalidInput, match="day 2 is nan"):
        pass_probability([0.01, math.nan], rules)
    with pytest.raises(core.InvalidInput, match="block: 5 days is longer than the 2 days"):
        pass_probability([0.01, 0.02], rules, block=5)


def test_returns_from_a_csv_file(tmp_path):
    (tmp_path / "eq.csv").write_text("day,equity\n2024-01-02,100\n2024-01-03,110\n2024-01-04,99\n")
    assert list(read_returns(tmp_path / "eq.csv")) == pytest.approx([0.1, -0.1])
    (tmp_path / "r.csv").write_text("Return\n0.01\n-0.02\n")
    assert list(read_returns(tmp_path / "r.csv")) == [0.01, -0.02]
    (tmp_path / "bad.csv").write_text("a,b\nx,y\n")
    with pytest.raises(core.InvalidInput, match="needs a 'return' or 'equity' column"):
        read_returns(tmp_path / "bad.csv")


# -- the command line --------------------------------------------------------------------------------

def test_cli_challenge_from_a_returns_file(tmp_path, capsys):
    (tmp_path / "r.csv").write_text("return\n" + "0.01\n" * 20)
    assert main(["challenge", "--returns", str(tmp_path / "r.csv"), "--target", "0.05", "--paths", "200",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["result"]["p_pass"] == 1.0 and out["result"]["median_days_to_pass"] == 5.0
    assert out["rules"]["max_drawdown_pct"] == 0.10 and out["preset"] == "moderate"
    assert out["rolling_pass_rate"] == 0.8  # the last four start days run out of history before day 5


def test_cli_challenge_from_a_stored_backtest(tmp_path, capsys):
    db = str(tmp_path / "bt.db")
    assert main(["backtest", "--symbol", "MSFT", "--start", "2021-01-04", "--end", "2021-06-30", "--db", db,
                 "--offline", "--json"]) == 0
    run_key = json.loads(capsys.readouterr().out)["moderate"]["run_key"]
    assert main(["challenge", "--from-backtest", run_key, "--db", db, "--target", "0.03", "--paths", "500"]) == 0
    text = capsys.readouterr().out
    assert "pass probability" in text and "95 %" in text and run_key in text


def test_cli_challenge_bad_input_is_one_line(tmp_path, capsys):
    assert main(["challenge", "--returns", str(tmp_path / "missing.csv"), "--target", "0.05"]) == 3
    assert capsys.readouterr().err.startswith("error: returns: cannot read")
    assert main(["challenge", "--from-backtest", "bt-nope", "--db", str(tmp_path / "x.db"), "--target", "0.05"]) == 3
    assert "x.db: no such file" in capsys.readouterr().err  # reading never creates the file
    core.Store(tmp_path / "x.db")
    assert main(["challenge", "--from-backtest", "bt-nope", "--db", str(tmp_path / "x.db"), "--target", "0.05"]) == 3
    assert "no backtest 'bt-nope'" in capsys.readouterr().err


# -- static or trailing drawdown, named templates (issue 18 §5) ----------------------------------------

DISAGREE = [0.05, -0.07, 0.13]  # up 5 %, then 7 % down: 6.65 % below the peak, but only 2.35 % below the start


def test_static_and_trailing_drawdown_disagree_where_the_peak_moved():
    trailing = ChallengeRules(0.10, 0.06, None)
    static = ChallengeRules(0.10, 0.06, None, drawdown="static")
    # One path that is the series itself (a block as long as the series, from its only start).
    failed = pass_probability(DISAGREE, trailing, paths=1, block=3)
    passed = pass_probability(DISAGREE, static, paths=1, block=3)
    assert (failed.p_pass, failed.p_fail_drawdown) == (0.0, 1.0)
    assert (passed.p_pass, passed.median_days_to_pass) == (1.0, 3.0)
    # From each start: 0 passes only when static; 1 (-7 %) breaks both; 2 (+13 %) passes both.
    assert rolling_pass_rate(DISAGREE, trailing) == pytest.approx(1 / 3)
    assert rolling_pass_rate(DISAGREE, static) == pytest.approx(2 / 3)


def test_the_cli_follows_the_drawdown_rule(tmp_path, capsys):
    # conservative: 6 % drawdown, 1 % daily. Up 5 %, seven days of -0.9 % (6.2 % below the peak, 1.5 % below
    # the start), then +12 %: past a 10 % target.
    days = [0.05] + [-0.009] * 7 + [0.12]
    (tmp_path / "r.csv").write_text("return\n" + "".join(f"{r}\n" for r in days))
    shown = {}
    for rule in ("trailing", "static"):
        assert main(["challenge", "--returns", str(tmp_path / "r.csv"), "--target", "0.10", "--preset", "conservative",
                     "--drawdown", rule, "--block", "9", "--paths", "1", "--no-consistency", "--json"]) == 0
        shown[rule] = json.loads(capsys.readouterr().out)
    assert shown["trailing"]["rules"]["drawdown"] == "trailing" and shown["trailing"]["result"]["p_pass"] == 0.0
    assert shown["static"]["rules"]["drawdown"] == "static" and shown["static"]["result"]["p_pass"] == 1.0


def test_the_shipped_templates_as_a_trader_knows_them():
    from core.backtest.templates import list_challenges, load_challenge

    assert list_challenges() == ["one_step", "two_step"]
    one, two = load_challenge("one_step"), load_challenge("two_step")
    assert [(p.profit_target_pct, p.max_drawdown_pct, p.drawdown, p.max_daily_loss_pct) for p in one.phases] == \
        [(0.10, 0.06, "trailing", None)]
    assert [(p.profit_target_pct, p.max_drawdown_pct, p.drawdown, p.max_daily_loss_pct) for p in two.phases] == \
        [(0.08, 0.10, "static", 0.05), (0.05, 0.10, "static", 0.05)]
    with pytest.raises(core.InvalidInput, match="unknown challenge 'ftmo'"):
        load_challenge("ftmo")


def test_two_steps_pass_one_after_the_other_from_a_fresh_account():
    from core.backtest.templates import load_challenge

    days = [0.01] * 20  # phase 1 (8 %) on day 8, then phase 2 (5 %) on its day 5, from a fresh account
    two = load_challenge("two_step")
    assert pass_probability(days, two, paths=50).median_days_to_pass == 13.0
    assert pass_probability(days, load_challenge("one_step"), paths=50).median_days_to_pass == 10.0
    assert rolling_pass_rate(days, two) == pytest.approx(8 / 20)  # starts 0-7 have the 13 days both phases need
    # A start that passes phase 1 and then loses 5 % in a day fails the challenge; phase 1 alone it passed.
    crash = [0.01] * 8 + [-0.05] + [0.01] * 12
    assert rolling_pass_rate(crash, two) == 0.0
    assert rolling_pass_rate(crash, two.phases[0]) > 0


def test_the_cli_runs_a_template_and_refuses_rules_beside_it(tmp_path, capsys):
    (tmp_path / "r.csv").write_text("return\n" + "0.01\n" * 20)
    assert main(["challenge", "--returns", str(tmp_path / "r.csv"), "--template", "two_step", "--paths", "100",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["template"] == "two_step" and len(out["rules"]) == 2 and out["result"]["median_days_to_pass"] == 13.0
    assert main(["challenge", "--returns", str(tmp_path / "r.csv"), "--template", "two_step", "--target", "0.05"]) == 3
    assert "two_step sets its own rules; leave out --target" in capsys.readouterr().err
    assert main(["challenge", "--returns", str(tmp_path / "r.csv")]) == 3
    assert "--target: give a profit target, or --template (one_step, two_step)" in capsys.readouterr().err


# -- a bounded horizon and bounded memory (issue 21 items 6 and 7) -------------------------------------

@pytest.mark.parametrize("field", ["max_days", "min_trading_days"])
def test_the_horizon_is_capped_at_ten_years_of_trading_days(field):
    from core.backtest.challenge import MAX_HORIZON_DAYS

    assert MAX_HORIZON_DAYS == 2520
    ChallengeRules(0.06, 0.1, 0.02, **{field: MAX_HORIZON_DAYS})
    for huge in (MAX_HORIZON_DAYS + 1, 999_999_999, 10**30):
        with pytest.raises(core.InvalidInput, match=f"{field}: .* is more than the 2,520 \\(ten years"):
            ChallengeRules(0.06, 0.1, 0.02, **{field: huge})


@pytest.mark.parametrize("flag", ["--max-days", "--min-days"])
def test_the_cli_refuses_a_horizon_above_the_cap(tmp_path, capsys, flag):
    (tmp_path / "r.csv").write_text("return\n" + "0.000001\n-0.000001\n" * 125)
    with pytest.raises(SystemExit) as stopped:
        main(["challenge", "--returns", str(tmp_path / "r.csv"), "--target", "0.05", flag, "999999999"])
    assert stopped.value.code == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "from 0 to 2,520" in err or "from 1 to 2,520" in err


def test_sizes_above_the_stated_limits_are_refused_before_any_work(tmp_path, capsys):
    from core.backtest import challenge

    rules = ChallengeRules(0.06, 0.1, 0.02)
    with pytest.raises(core.InvalidInput, match="paths: 1,000,000,000 is more than the 100,000"):
        pass_probability([0.01, -0.01], rules, paths=10**9)
    with pytest.raises(core.InvalidInput, match="100,001 days is more than the 100,000"):
        rolling_pass_rate(np.zeros(challenge.MAX_RETURN_DAYS + 1), rules)
    big = tmp_path / "big.csv"
    with big.open("w") as out:
        out.write("return\n")
        out.truncate(challenge.MAX_RETURNS_FILE_BYTES + 1)
    assert main(["challenge", "--returns", str(big), "--target", "0.05"]) == 3
    assert "a returns file may be at most 32 MiB" in capsys.readouterr().err
    long = tmp_path / "long.csv"
    long.write_text("return\n" + "0.0\n" * (challenge.MAX_RETURN_DAYS + 5))
    with pytest.raises(core.InvalidInput, match="more than the 100,000 days"):
        read_returns(long)


def _peak_bytes(work) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_walk_holds_a_bounded_number_of_cells_whatever_the_number_of_starts_or_paths(monkeypatch):
    from core.backtest import challenge

    days = np.tile([1e-6, -1e-6], 2_000)  # never decides: every start walks to the end of the history
    rules = ChallengeRules(0.05, 0.1, 0.02)
    whole = rolling_pass_rate(days, rules)
    monkeypatch.setattr(challenge, "PATH_CELLS", 100 * challenge.CHUNK_DAYS)  # 100 starts a step
    peak = _peak_bytes(lambda: rolling_pass_rate(days, rules))
    assert rolling_pass_rate(days, rules) == whole  # the same walk, a batch at a time
    # 4,000 starts x 256 days at once would hold 8 MB an array; 100 at a time holds 0.2 MB an array.
    assert peak < 3_000_000
    peak = _peak_bytes(lambda: pass_probability(days, rules, paths=4_000))
    assert peak < 3_000_000
