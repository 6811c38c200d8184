"""Derive a constraint schema from what the Coach has seen a strategy do (SPEC §6)."""

from __future__ import annotations

import numpy as np

from core.exchange.schema import ENTRY_TYPES, Constraints

MIN_PROPOSALS = 5  # a symbol needs this many proposed entries before its confidence counts
MIN_CONFIDENCE = 0.6
MIN_APPROVED_FOR_RR = 5  # fewer approved entries than this is too thin to set min_risk_reward


def derive_constraints(store, strategy_id: str, current: Constraints | None = None) -> tuple[Constraints, dict]:
    """The schema the evidence supports, and the evidence behind each changed field.

    min_risk_reward = 25th percentile (linear interpolation) of the R/R of approved entries;
    allowed_symbols = symbols with approved/proposed entries >= 0.6 over at least 5 proposals.
    Every other field is copied from `current` (default: the moderate defaults). A field whose
    evidence is too thin is left unchanged, and the evidence says why.
    """
    current = current or Constraints()
    entries = _entries(store, strategy_id)
    evidence: dict = {"strategy_id": strategy_id, "entries": len(entries), "fields": {}}
    changes: dict = {}
    for field, derive in (("min_risk_reward", _risk_reward), ("allowed_symbols", _symbols)):
        value, evidence["fields"][field] = derive(entries)
        if value is not None:
            changes[field] = value
    derived = current.model_copy(update=changes)
    evidence["changed"] = [f for f in changes if getattr(current, f) != getattr(derived, f)]
    evidence["too_thin"] = not changes
    return Constraints.model_validate(derived.model_dump()), evidence


def _entries(store, strategy_id: str) -> list[dict]:
    """Each entry action the strategy proposed (one per round and action): its symbol, whether the
    exchange was approved, and its R/R when the Coach computed one."""
    entries: dict[tuple, dict] = {}
    for row in store.coach_memory(strategy_id):
        if row["action_type"] not in ENTRY_TYPES:
            continue
        key = (row["run_id"], row["round"], row["action"])
        entry = entries.setdefault(key, {"symbol": row["symbol"], "approved": row["outcome"] == "APPROVE", "rr": None})
        if row["rr"] is not None:
            entry["rr"] = row["rr"]
    return list(entries.values())


def _risk_reward(entries: list[dict]) -> tuple[float | None, dict]:
    """min_risk_reward from the approved entries' R/R (None: too few), and its evidence."""
    rrs = sorted(e["rr"] for e in entries if e["approved"] and e["rr"] is not None)
    evidence = {"rule": "25th percentile of the R/R of approved entries", "sample_size": len(rrs)}
    if len(rrs) < MIN_APPROVED_FOR_RR:
        return None, evidence | {"too_thin": f"needs at least {MIN_APPROVED_FOR_RR} approved entries, has {len(rrs)}"}
    value = round(float(np.percentile(rrs, 25)), 4)
    return value, evidence | {"percentile_25": value, "min": rrs[0], "median": float(np.median(rrs)), "max": rrs[-1]}


def _symbols(entries: list[dict]) -> tuple[list[str] | None, dict]:
    """allowed_symbols from each symbol's share of approved entries (None: no symbol qualifies), and its evidence."""
    per_symbol: dict[str, list[int]] = {}
    for e in entries:
        counts = per_symbol.setdefault(e["symbol"], [0, 0])
        counts[0] += 1
        counts[1] += e["approved"]
    confidence = {
        s: {"proposed": n, "approved": ok, "confidence": round(ok / n, 4), "counted": n >= MIN_PROPOSALS,
            "allowed": n >= MIN_PROPOSALS and ok / n >= MIN_CONFIDENCE}
        for s, (n, ok) in sorted(per_symbol.items())
    }
    allowed = [s for s, c in confidence.items() if c["allowed"]]
    evidence = {"rule": f"confidence = approved/proposed entries >= {MIN_CONFIDENCE}, over at least {MIN_PROPOSALS} "
                        "proposals", "symbols": confidence}
    if not allowed:
        return None, evidence | {"too_thin": "no symbol has enough proposals with enough approvals"}
    return allowed, evidence
