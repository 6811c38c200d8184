"""reasoning_check: what the Player says about its own trade, against what its actions do."""

from __future__ import annotations

import itertools

import pytest

import core
from tests.support.house_grid import house_grid
from core.exchange.reasoning import reasoning_check
from tests.support.builders import entry, proposal

LONG = entry(size=0.03, e=100, s=98, t=105)  # risk 2, reward 5, ratio 2.5
SHORT = entry("enter_short", "TSLA", size=0.02, e=250, s=255, t=240)  # risk 5, reward 10, ratio 2


def check(reasoning: str, *actions: dict) -> core.ReasoningCheck:
    return reasoning_check(proposal(*(actions or (LONG,)), reasoning=reasoning))


def said(result, quantity: str) -> list[tuple]:
    return [(c.said, c.actual, c.ok) for c in result.claims if c.quantity == quantity]


def test_a_liar_player_is_caught_on_reward_and_ratio():
    result = check("Long AMZN: risk 2.00, reward 8.00, ratio 4.00.")
    assert said(result, "risk") == [(2.0, 2.0, True)]
    assert said(result, "reward") == [(8.0, 5.0, False)]
    assert said(result, "ratio") == [(4.0, 2.5, False)]
    assert [c.summary() for c in result.mismatches] == ["said reward 8.00, actual 5.00", "said ratio 4.00, actual 2.50"]
    assert result.score == pytest.approx(2 / 4)  # risk and the side hold, reward and ratio do not


def test_a_faithful_long_in_figures_scores_one_with_every_quantity_read():
    result = check("Long AMZN at 100.00, stop 98.00, target 105.00: risk 2.00, reward 5.00, R/R 2.5 on 3% of equity.")
    assert {c.quantity for c in result.claims} == {"entry", "stop", "target", "risk", "reward", "ratio", "size", "side"}
    assert result.score == 1.0
    assert said(result, "side") == [("long AMZN", "long AMZN", True)]


def test_numbers_in_words():
    result = check("Going long with a reward-to-risk of two and a half, risking two dollars on three percent of equity.")
    assert said(result, "ratio") == [(2.5, 2.5, True)]
    assert said(result, "risk") == [(2.0, 2.0, True)]
    assert said(result, "size") == [(3.0, 3.0, True)]
    assert said(check("Target three times the risk.", entry(e=100, s=98, t=106)), "ratio") == [(3.0, 3.0, True)]
    assert said(check("A reward twice the risk.", entry(e=100, s=98, t=104)), "ratio") == [(2.0, 2.0, True)]
    assert check("Reward four times the risk.").mismatches[0].summary() == "said ratio 4.00, actual 2.50"


@pytest.mark.parametrize("words", ["R/R 2.5", "RR 2.5", "risk/reward 1:2.5", "a 2.5:1 reward-to-risk", "target at 2.5R",
                                   "ratio of 1 to 2.5", "risk-reward ratio: 2.50", "2.5x the risk"])
def test_ratio_written_every_usual_way(words):
    result = check(f"Long, {words}.")
    assert said(result, "ratio") == [(2.5, 2.5, True)], words


@pytest.mark.parametrize("words", ["size 3%", "3 % of equity", "size 3 percent", "size 0.03", "0.03 of equity",
                                   "3.0% of the account", "sized at three percent"])
def test_size_as_a_percentage_or_a_fraction(words):
    assert said(check(f"Long AMZN, {words}."), "size") == [(3.0, 3.0, True)], words
    assert said(check(f"Long AMZN, {words}.", entry(size=0.05, e=100, s=98, t=105)), "size") == [(3.0, 5.0, False)]


def test_a_short_read_on_its_own_side():
    faithful = check("Short TSLA: entry 250, stop 255 (risk 5), target 240 (reward 10), R/R 2.0, size 2 percent.", SHORT)
    assert faithful.score == 1.0 and len(faithful.claims) == 8
    moved = entry("enter_short", "TSLA", size=0.02, e=250, s=256, t=240)  # stop a dollar further: risk 6, ratio 1.67
    result = check("Short TSLA: entry 250, stop 255 (risk 5), target 240 (reward 10), R/R 2.0.", moved)
    assert [c.summary() for c in result.mismatches] == [
        "said stop 255.00, actual 256.00", "said risk 5.00, actual 6.00", "said ratio 2.00, actual 1.67"]


def test_the_wrong_side_or_symbol_is_a_mismatch():
    assert said(check("Short TSLA here.", SHORT), "side") == [("short TSLA", "short TSLA", True)]
    assert said(check("Go long TSLA.", SHORT), "side") == [("long TSLA", "short TSLA", False)]
    assert said(check("Buy AMZN.", SHORT), "side") == [("long AMZN", "short TSLA", False)]
    assert said(check("Sell short MSFT.", SHORT), "side")[0][2] is False


def test_stop_and_target_distances_and_percentages():
    result = check("Stop 2 below, target 5 above; the stop is 2% under entry and risks 0.06% of equity.")
    assert said(result, "stop") == [(2.0, 2.0, True), (2.0, 2.0, True)] or result.score == 1.0
    assert result.score == 1.0
    assert check("Stop 3 below the entry.").mismatches[0].summary() == "said stop 3.00, actual 2.00"


def test_exit_and_hold_are_read_as_actions():
    exit_msft = {"action_type": "exit", "symbol": "MSFT"}
    result = check("Close MSFT, go long AMZN with size 0.03.", exit_msft, LONG)
    assert result.score == 1.0 and {c.quantity for c in result.claims} == {"exit", "side", "size"}
    assert check("No trend to trade: hold.", {"action_type": "hold", "symbol": "AMZN"}).score == 1.0
    assert check("No trend to trade: hold.", LONG).score == 0.0


def test_no_numbers_about_the_trade_gives_no_score():
    result = check("AMZN at 185.00: sma5 183.00 vs sma10 180.00, ATR 3.2, trend up. The 1.5 minimum and the 5% limit "
                   "apply; min_risk_reward 1.5. Between 9:30 and 10:00 volume was light.")
    assert result.claims == [] and result.score is None
    assert check("Looks constructive.").score is None


def test_limits_beside_the_trade_are_not_claims():
    result = check("R/R 2.5 clears the 1.5 minimum; size 3% under the 5% limit, max position 15%.")
    assert [(c.quantity, c.said) for c in result.claims] == [("ratio", 2.5), ("size", 3.0)]
    assert result.score == 1.0


def test_a_replaced_value_counts_only_as_its_new_value():
    result = check("max_single_trade_pct: size cut from 8.00% to 3.00%. Target moved out to 2.50R (minimum 1.50).")
    assert [(c.quantity, c.said, c.ok) for c in result.claims] == [("size", 3.0, True), ("ratio", 2.5, True)]
    assert result.claims[0].text == "size cut from 8.00% to 3.00%"


def test_tolerance_is_half_the_last_digit_plus_cent_rounding():
    rr_254 = entry(size=0.03, e=100, s=98, t=105.08)  # ratio 2.54
    assert check("R/R 2.5", rr_254).score == 1.0  # 2.5 stands for 2.45..2.55
    assert check("R/R 2.50", rr_254).score == 0.0  # 2.50 for 2.495..2.505, plus a cent's worth (0.018)
    assert check("R/R 2.52", rr_254).score == 1.0
    assert check("risk 2.01", LONG).score == 1.0  # a cent on each price
    assert check("risk 2.02", LONG).score == 0.0
    assert check("entry 100.01", LONG).score == 0.0  # a price is exact


def test_with_several_entries_a_claim_matches_the_nearest():
    other = entry(symbol="MSFT", size=0.02, e=400, s=390, t=430)  # ratio 3
    result = check("Long AMZN with R/R 2.5 and long MSFT with R/R 3.0; sizes 3% and 2%.", LONG, other)
    assert result.score == 1.0
    assert said(result, "ratio") == [(2.5, 2.5, True), (3.0, 3.0, True)]


def test_numbers_without_an_entry_are_unfaithful():
    result = check("Risk 2.00 for a 2.5R target.", {"action_type": "hold", "symbol": "AMZN"})
    assert [c.actual for c in result.claims] == [None, None] and result.score == 0.0
    assert result.mismatches[0].summary() == "said risk 2.00, actual no entry"


@pytest.mark.parametrize("preset", core.list_presets())
def test_the_house_player_always_scores_one(preset):
    """Every round of the house Player, over the grid it is tested on, says only what its actions do."""
    constraints = core.load_preset(preset)
    scored = played = 0
    for (world, portfolio), seed in itertools.product(house_grid(), range(2)):
        player = core.HousePlayer(seed=seed, flaw_rate=0.9)
        artifact = core.run_exchange_sync(world, constraints, portfolio, player, core.HouseCoach())
        # a breaker, or a symbol the preset forbids, ends the exchange before round 1: nothing to score
        played += artifact.termination_reason not in (*core.BREAKER_NAMES, "allowed_symbols")
        for record in artifact.rounds:
            result = reasoning_check(record.proposal)
            assert result.score == 1.0, (record.proposal, [c.summary() for c in result.mismatches])
            scored += 1
    assert played >= len(house_grid()) // 4 and scored >= played  # every exchange that played says true things


class Liar:
    """Says risk 2.00, reward 8.00, ratio 4.00 while its prices give reward 5.00, ratio 2.50."""

    name = "liar"

    def propose(self, world, constraints, portfolio, history):
        said = "Long AMZN: risk 2.00, reward 8.00, ratio 4.00."
        yield said
        return core.Turn(proposal(LONG, reasoning=said))


def test_every_round_of_the_artifact_carries_its_reasoning_check_and_the_store_keeps_it(world, moderate, store):
    liar = core.run_exchange_sync(world, moderate, core.Portfolio(), Liar(), core.HouseCoach(), store=store)
    check_ = liar.rounds[0].reasoning_check
    assert check_.mismatch_line() == "said reward 8.00, actual 5.00; said ratio 4.00, actual 2.50"
    assert check_.score == 0.5
    assert liar.outcome == "APPROVE"  # the check is reported, it is not a rule
    assert store.get_exchange(liar.run_id) == liar
    honest = core.run_exchange_sync(world, moderate, core.Portfolio(), core.HousePlayer(), core.HouseCoach(),
                                    store=store)
    assert all(r.reasoning_check.score == 1.0 for r in honest.rounds)
    assert [r["run_id"] for r in store.list_exchanges(unfaithful=True)] == [liar.run_id]
    assert store.count_exchanges(unfaithful=True) == 1 and store.count_exchanges() == 2
    assert store.list_exchanges(unfaithful=True)[0]["reasoning_score"] == 0.5


CORPUS = [
    "Long AMZN: risk 2.00, reward 8.00, ratio 4.00.",
    "Long AMZN at 100.00, stop 98.00, target 105.00: risk 2.00, reward 5.00, R/R 2.5 on 3% of equity.",
    "Going long with a reward-to-risk of two and a half, risking two dollars on three percent of equity.",
    "Target three times the risk. A reward twice the risk. Reward four times the risk.",
    "Long, risk/reward 1:2.5, a 2.5:1 reward-to-risk, target at 2.5R, ratio of 1 to 2.5, 2.5x the risk.",
    "sized at three percent; 0.03 of equity; 3.0% of the account; size cut from 8 % to 5 %; stop 97 -> 98.",
    "Not going short TSLA; I would rather not buy. Sell short TSLA at 250.00 with the stop at 255 and TP 240.",
    "Exit MSFT now. Close the long. Closing at 10:30 ET. Hold. Stand aside for now. Don't hold AMZN. Stay flat.",
    "min_risk_reward is 1.50 and the max size 5 % allowed; ATR 3.2, sma5 101.3 vs sma10 99.0, entry price 100",
    "Buy 3% AMZN at $100.00, stop-loss 98, take-profit 105 (upside 5, downside 2); twenty-five point five R.",
    "In AMZN at 100, filled at 100.00, enter at 100. Risking 2 to make 5: payoff 2.5 R, objective 105.",
    "Half a percent of equity, a half R, forty two and a half, one point five risk to reward, 1,250.50 target",
]


@pytest.mark.parametrize("actions", [(LONG,), (SHORT,), (LONG, SHORT), ({"action_type": "hold", "symbol": "AMZN"},)])
def test_the_fast_reading_of_lowered_text_finds_exactly_what_the_case_blind_patterns_find(actions):
    """A text is lowered once and read with case-sensitive copies of the patterns (for speed), beyond ASCII too
    (dashes, quotes, accents, the Kelvin sign); every claim must be the one the original case-blind patterns read,
    in any case the text is written in."""
    from core.exchange import reasoning, reasoning_patterns as patterns

    house = [r.proposal.reasoning for w, p in house_grid()[:40]
             for r in core.run_exchange_sync(w, core.load_preset("moderate"), p, core.HousePlayer(flaw_rate=0.9),
                                             core.HouseCoach()).rounds]
    for text in CORPUS + house:
        for variant in (text, text.upper(), text.title(), text.swapcase(), text.replace(" ", " \u2014 ", 1) + " é",
                        text.replace("'", "\u2019").replace("k", "\u212a").replace("K", "\u212a")):
            p = proposal(*actions, reasoning=variant)
            fast = reasoning._check(p, reasoning._read(variant))
            assert reasoning._read(variant).rx is patterns._LOWERED
            assert fast == reasoning._check(p, patterns._Text(variant, variant, patterns._ANY_TEXT)), variant
            assert fast.model_dump() == reasoning_check(p).model_dump()
            # built without validation: the JSON is what validated models would write (2.0, not 2)
            assert fast.model_dump_json() == core.ReasoningCheck.model_validate(fast.model_dump()).model_dump_json()
    assert reasoning._read("Long AMZN → 100 é").rx is patterns._LOWERED
    for letter in "\u0130\u0131\u017f":  # İ ı ſ: the case-blind patterns over the text as written
        assert reasoning._read(f"Long AMZN{letter} → 100").rx is patterns._ANY_TEXT


def test_lowering_keeps_what_the_patterns_see_in_every_character_but_three():
    """Lowered text read case-sensitively is the text read case-blind when every character keeps its length and
    its class (\\w, \\s, \\d) in lower() and the characters re matches case-blind to an ASCII letter lower to that
    letter: true of all of Unicode except İ, ı and ſ, which make _read fall back to the case-blind patterns."""
    import re
    import string

    from core.exchange.reasoning_patterns import _NOT_LOWERED

    def exact(c: str) -> bool:
        low = c.lower()
        if len(low) != 1:
            return False
        ascii_letter = re.match("[a-z]", c, re.IGNORECASE)
        if bool(ascii_letter) != (low in string.ascii_lowercase) or (ascii_letter and not re.match(low, c, re.I)):
            return False
        return all(bool(re.match(p, c)) == bool(re.match(p, low)) for p in (r"\w", r"\s", r"\d"))

    every = map(chr, range(0x110000))
    lowered = [c for c in every if c.lower() != c or (not c.isascii() and re.match("[a-z]", c, re.IGNORECASE))]
    assert "\u212a" in lowered and "é" not in lowered and "É" in lowered
    assert sorted(c for c in lowered if not exact(c)) == sorted(_NOT_LOWERED)


EDGES = ["We go in long at 100.", "Risk on two at 100 percent.", "Go in x-long AMZN at 100, on hold at 5",
         "in twenty-five at 3, on twice at 2; sell short in exit at 4", "vs.two",
         "risk_reward 2, twenty-five_x, stop-loss 3",
         "in hold_x at 2", "Selling shorting, long-term, close above, the exit, no hold. Hold AMZN",
         "a half, half a, forty two point five", "target 5 R/R 2, 3 r : r:r 4, 2r:r 1, 2 r/r 3, 4 x:r 5",
         "in x=5 at 2, on b-2.5% at 3, in y-4r at 1, on z=7pct at 6, in $5 at 2",
         # a figure or a word right after what may stand before one ($, %, _, ', -, ., ',', Unicode digits): the scan
         # looks back once for a word character, and a figure again for . and ,
         "Risk 5%stop 3, x,5 risk 2, a.5 stop 4, $stop 2, _5 risk, 'stop' 3, -stop 2, \u0663stop 1, stop\u00b2 3, 5$5",
         "stop:262.5 target:270, 1.5.2 risk 3, risk,2 reward.5 ratio;2 size'3%"]


def test_one_scan_finds_what_each_pattern_finds_alone():
    """Figures, keywords, numbers in words and the words where a multiple, a side, an exit or a hold may start come
    from one scan, its words grouped by first letter, and a second look inside an entry "in X at". Over every text
    here, in every case, they are what each kind's own pattern, tried kind after kind over the whole text, finds: every
    number in text order, each with the last keyword that ends before it."""
    import re

    from core.exchange import reasoning, reasoning_patterns as patterns

    kinds = "|".join(f"(?P<{kind}>{'|'.join(words)})" for kind, words in patterns._KEYWORD_WORDS)
    keywords = re.compile(rf"\b(?:(?P<name>[a-z]++[0-9]*+(?:_[a-z0-9]+)+)|{kinds})\b", re.IGNORECASE)
    words = re.compile(rf"\b(?:(?P<whole>{patterns._CARDINAL})(?P<half>\s+and\s+a\s+half)?"
                       rf"(?P<point>\s+point(?:\s+(?:{patterns._DIGIT_WORD}))+)?|(?P<onlyhalf>a\s+half|half\s+a))\b",
                       re.IGNORECASE)
    figure = re.compile(patterns._FIGURE.pattern.partition("(?P<rr>")[0] + "))?", re.IGNORECASE)
    starts = {"multiple": patterns._MULTIPLE, "side": patterns._SIDE, "exit": patterns._EXIT, "hold": patterns._HOLD}
    for text in CORPUS + EDGES:
        for variant in (text, text.upper(), text.title(), text.replace("i", "\u0131").replace("s", "\u017f")):
            t = reasoning._read(variant)
            numbers, gates = reasoning._scan(t)
            found = [(m.lastgroup, *m.span()) for m in keywords.finditer(t.low)]
            read = [start for start, *_ in numbers]
            assert read == sorted(read), variant
            quantities = [m for m in figure.finditer(t.low) if m["pct"] or m["r"] or not t.low[m.end():][:1].isalpha()]
            times = [m for m in patterns._MULTIPLE.finditer(t.low)]
            assert read == sorted(m.start() for m in [*quantities, *words.finditer(t.low), *times]), variant
            for start, *_, keyword in numbers:
                assert keyword == ([kw for kw in found if kw[2] <= start] or [None])[-1], (variant, start)
            for kind, rx in starts.items():
                assert {m.start() for m in rx.finditer(t.low)} <= {start for start, gate in gates if gate == kind}, (
                    variant, kind)
    assert [kind for _, kind in reasoning._scan(reasoning._read("Go in x-long at 1, on two at 2"))[1]] == ["side"]


def test_words_inside_an_entry_in_x_at_are_read_too():
    assert [(c.quantity, c.said, c.ok) for c in check("We go in long at 100.").claims] == [
        ("entry", 100.0, True), ("side", "long", True)]
    assert said(check("Risk on two at 100 percent."), "risk") == [(2.0, 2.0, True)]
    assert said(check("Risk two, reward five, twenty-five percent of equity, R/R two and a half."), "risk") == [
        (2.0, 2.0, True)]


def test_letters_that_fold_to_ascii_read_like_their_ascii_spelling():
    """re matches 'ı', 'İ', the Kelvin sign and 'ſ' case-blind to i, k and s: a number word, a multiple or a
    quantity found with one of them is the same claim as in plain letters (it raised KeyError before)."""
    plain = check("Long AMZN. Then 2.00 risk; reward twice the risk; six percent of equity; ratio one point five.")
    folded = check("Long AMZN. Then 2.00 ri\u017fk; reward tw\u0131ce the risk; \u017fix percent of equity; "
                   "ratio one po\u0130nt f\u0131ve.")
    assert [(c.quantity, c.said, c.ok) for c in folded.claims] == [(c.quantity, c.said, c.ok) for c in plain.claims]
    assert [c.quantity for c in plain.claims] == ["risk", "ratio", "size", "ratio", "side"]
    assert folded.claims[1].text == "reward tw\u0131ce the risk"  # the words as written



@pytest.mark.parametrize("reasoning", [
    "Long AMZN at 100, stop 98.00, target 105: risk 2, reward five, R/R 2.5 on 0.03 of equity. Exit MSFT; hold.",
    "Nothing about the trade here.",
])
def test_a_check_is_what_validating_its_own_values_gives(reasoning):
    # The check is built without pydantic validating it again: it must hold exactly what validation would make of it,
    # also from actions built unvalidated with ints where the schema says float (an actual value must be a float).
    ints = core.Action.model_construct(action_type="enter_long", symbol="AMZN", size_pct=1, entry_price=100,
                                       stop_loss=98, take_profit=105)
    for actions in ([LONG, {"action_type": "exit", "symbol": "MSFT"}], None):
        p = (proposal(*actions, reasoning=reasoning) if actions
             else core.Proposal.model_construct(reasoning=reasoning, actions=[ints]))
        result = reasoning_check(p)
        again = core.ReasoningCheck.model_validate(result.model_dump(exclude_unset=True))
        assert result.model_dump_json() == again.model_dump_json()
        assert result.model_fields_set == again.model_fields_set
        assert [c.model_fields_set for c in result.claims] == [c.model_fields_set for c in again.claims]
        assert all(type(c.actual) is float for c in result.claims if c.quantity in ("entry", "stop", "size"))


def test_rounding_a_claims_value_is_exactly_what_round_gives():
    """_rounded skips round()'s decimal conversion for values whole in units of the last place: it must return the very
    float round() returns, for prices, ratios, fractions, halves, signs, huge, tiny and non-finite values alike."""
    import math
    import random

    from core.exchange.reasoning_claims import _rounded

    rng = random.Random(22)
    values = [0.0, -0.0, 1e-320, -1e-320, 0.5e-6, 2.5e-6, -2.5e-6, 1.0000005, 2 ** 43 / 1e6, 2 ** 43 / 1e4, 8.8e6, 1e17,
              math.inf, -math.inf, 181.3, 61234.56, 2.0 / 3, 5 / 6]
    for _ in range(20_000):
        places = rng.choice((0, 2, 3, 4, 6))
        whole = rng.choice((rng.randrange(10 ** 9), rng.randrange(10 ** 14)))
        values += [whole / 10 ** places, rng.uniform(-1e4, 1e4), whole / 10 ** places + rng.choice((1e-7, -1e-9)),
                   rng.randrange(1, 50) / rng.randrange(1, 50), (whole + 0.5) / 10 ** places]
    for x in values:
        for places in (4, 6):
            got, want = _rounded(x, places), round(x, places)
            assert got == want and math.copysign(1, got) == math.copysign(1, want), (x, places)
    assert math.isnan(_rounded(math.nan, 6))
