"""ConstraintDeriver against a hand computation on a seeded database."""

from __future__ import annotations

import uuid

import core
from tests.support.builders import entry, proposal


def seed_round(store, symbol: str, rr: float, approved: bool, strategy="s1"):
    """Store one single-round exchange whose only entry has the given R/R and decision."""
    e, s = 100.0, 98.0
    p = proposal(entry(symbol=symbol, e=e, s=s, t=e + rr * (e - s), size=0.01))
    verdict = core.check_proposal(p, core.Constraints(min_risk_reward=0.1, allowed_symbols=["AMZN", "MSFT", "TSLA", "AAPL"]))
    assert verdict.decision == "APPROVE"
    decision = "APPROVE" if approved else "REJECT"
    world = core.WorldState(symbol=symbol, as_of="2025-03-04 10:00", price=100, sma5=1, sma10=1)
    store.record({
        "run_id": str(uuid.uuid4()), "timestamp": "2025-03-04T15:00:00+00:00",
        "outcome": "APPROVE" if approved else "REJECT-MAX", "approved": approved, "rounds_taken": 1,
        "termination_reason": None, "total_tokens": 0, "usage": core.Usage().model_dump(),
        "rounds": [{"round": 1, "proposal": p.model_dump(mode="json"),
                    "evaluation": {**verdict.model_dump(mode="json"), "decision": decision,
                                   "coach_opinion": None, "disagrees": None},
                    "tokens": 0, "usage": core.Usage().model_dump(), "latency_ms": 0.0}],
        "constraint_snapshot": core.Constraints().model_dump(mode="json"),
        "portfolio_snapshot": core.Portfolio().model_dump(mode="json"),
        "world_state": world.model_dump(mode="json"), "strategy_id": strategy, "symbol": symbol,
        "agents": {"player": "seed", "coach": "seed", "model": None},
    })


def test_derives_the_25th_percentile_and_the_confident_symbols(store):
    # AMZN: 5 proposals, 4 approved (0.8) -> allowed. MSFT: 5 proposals, 2 approved (0.4) -> not.
    # TSLA: 3 proposals, 3 approved, but fewer than 5 -> not counted.
    amzn = [(1.5, True), (2.0, True), (2.5, True), (3.0, True), (1.2, False)]
    msft = [(1.8, True), (2.2, True), (1.0, False), (1.1, False), (0.9, False)]
    tsla = [(4.0, True), (5.0, True), (6.0, True)]
    for symbol, rows in (("AMZN", amzn), ("MSFT", msft), ("TSLA", tsla)):
        for rr, ok in rows:
            seed_round(store, symbol, rr, ok)
    seed_round(store, "AAPL", 9.0, True, strategy="other")  # another strategy's evidence does not count

    derived, evidence = core.derive_constraints(store, "s1", core.load_preset("moderate"))

    approved = sorted([1.5, 2.0, 2.5, 3.0, 1.8, 2.2, 4.0, 5.0, 6.0])  # 9 values
    # linear interpolation: position 0.25 * 8 = 2 -> the third smallest, exactly
    assert derived.min_risk_reward == approved[2] == 2.0
    assert derived.allowed_symbols == ["AMZN"]
    fields = evidence["fields"]
    assert fields["min_risk_reward"]["sample_size"] == 9
    assert fields["allowed_symbols"]["symbols"]["MSFT"] == {
        "proposed": 5, "approved": 2, "confidence": 0.4, "counted": True, "allowed": False}
    assert fields["allowed_symbols"]["symbols"]["TSLA"]["counted"] is False
    assert set(evidence["changed"]) == {"min_risk_reward", "allowed_symbols"}
    # other fields are copied from the current schema
    assert derived.max_position_pct == core.load_preset("moderate").max_position_pct


def test_thin_evidence_changes_nothing_and_says_so(store):
    seed_round(store, "AMZN", 2.0, True)
    current = core.load_preset("conservative")
    derived, evidence = core.derive_constraints(store, "s1", current)
    assert derived == current
    assert evidence["too_thin"] is True
    assert "needs at least 5" in evidence["fields"]["min_risk_reward"]["too_thin"]


def test_derives_from_house_exchanges(store):
    world = core.WorldState(symbol="MSFT", as_of="2025-03-04 10:00", price=400, sma5=402, sma10=398)
    for seed in range(10):
        core.run_exchange_sync(world, core.load_preset("moderate"), core.Portfolio(), core.HousePlayer(seed=seed),
                               core.HouseCoach(), store=store, strategy_id="house")
    derived, evidence = core.derive_constraints(store, "house")
    assert derived.allowed_symbols == ["MSFT"]
    assert derived.min_risk_reward >= 1.5


def test_the_25th_percentile_interpolates_between_two_approved_values(store):
    # 6 approved R/Rs: position 0.25 * 5 = 1.25 -> 1.6 + 0.25 * (2.0 - 1.6) = 1.7 (neither value itself)
    for rr in (3.0, 1.6, 1.2, 2.0, 2.4, 5.0):
        seed_round(store, "MSFT", rr, True)
    derived, evidence = core.derive_constraints(store, "s1", core.load_preset("moderate"))
    assert derived.min_risk_reward == 1.7
    assert evidence["fields"]["min_risk_reward"]["sample_size"] == 6
    assert derived.allowed_symbols == ["MSFT"]  # 6 of 6 approved


def test_rejected_entries_count_as_proposed_and_lower_the_confidence(store):
    # 6 proposed, 1 approved: confidence 1/6 < 0.6, so TSLA is not allowed.
    for _ in range(5):
        seed_round(store, "TSLA", 2.0, False)
    seed_round(store, "TSLA", 2.0, True)
    _, evidence = core.derive_constraints(store, "s1")
    tsla = evidence["fields"]["allowed_symbols"]["symbols"]["TSLA"]
    assert (tsla["proposed"], tsla["approved"], tsla["allowed"]) == (6, 1, False)
