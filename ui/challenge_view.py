"""The Backtest page's challenge panel: would each preset's daily P&L pass a funded-account challenge?

A chooser picks a shipped challenge template (presets/challenges) or "each preset's own limits". For
the latter the common terms (target, time limit, minimum days, drawdown rule) are one row of inputs
and each preset's limits (drawdown, daily loss, consistency) default from that preset and can be
edited. The figures come from core.backtest.challenge; this module only lays them out.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

import core
from core.backtest.challenge import (DRAWDOWN_RULES, MAX_HORIZON_DAYS, MAX_PATHS, Challenge, ChallengeResult,
                                     ChallengeRules, pass_probability, rolling_pass_rate)
from core.backtest.templates import list_challenges, load_challenge
from ui import session
from ui.text import literal

LIMITS = (("max_drawdown_pct", "Max drawdown (%)"), ("max_daily_loss_pct", "Daily loss limit (%)"),
          ("consistency_rule_pct", "Consistency: best day ≤ (% of profit, 0 = off)"))
OWN_LIMITS = "Each preset's own limits"
MEANING = (f"**P(pass)** is the share of simulated paths that pass, each path drawn at random from this "
           f"backtest's own daily returns (in blocks of consecutive days): how often this P&L, reshuffled, would "
           f"pass, not a forecast of days it never saw. With a time limit of 0 (and in the templates) a path runs "
           f"at most {MAX_HORIZON_DAYS:,} trading days (ten years) and then counts as timed out. **From each start "
           f"day** walks the actual days from every day of the backtest in turn instead; it can differ from P(pass) "
           f"because it keeps the real order of the days (losing streaks stay together), it has only as many starts "
           f"as the backtest has days, and a start near the end runs out of days before a verdict, which counts "
           f"as not passed.")


def _percent(value: float | None) -> str:
    """A share in percent; two decimals under 1 % so a small interval does not read as 0.0 – 0.0."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.2%}" if 0 < value < 0.01 else f"{value:.1%}"


def _terms(own_limits: bool) -> dict:
    """The inputs shared by every preset (the paths and blocks only, for a template)."""
    row = st.columns(6 if own_limits else 2)
    sampling, terms = row[-2:], {}
    if own_limits:
        terms = {
            "target": row[0].number_input("Profit target (%)", key=session.BT_CH + "target", value=6.0,
                                          min_value=0.1, max_value=100.0, step=0.5) / 100,
            "max_days": int(row[1].number_input("Time limit (days, 0 = none)", key=session.BT_CH + "max_days",
                                                value=60, min_value=0, max_value=MAX_HORIZON_DAYS, step=5,
                                                help=f"0: no time limit (a path then runs at most "
                                                     f"{MAX_HORIZON_DAYS:,} trading days, ten years)")),
            "min_days": int(row[2].number_input("Minimum trading days", key=session.BT_CH + "min_days", value=0,
                                                min_value=0, max_value=MAX_HORIZON_DAYS, step=1)),
            "drawdown": row[3].selectbox("Drawdown rule", DRAWDOWN_RULES, key=session.BT_CH + "drawdown",
                                         help="trailing: the loss limit follows the highest equity reached; "
                                              "static: it stays at the starting balance"),
        }
    terms["paths"] = int(sampling[0].number_input("Paths", key=session.BT_CH + "paths", value=10_000, min_value=100,
                                                  max_value=MAX_PATHS, step=1_000))
    terms["block"] = int(sampling[1].number_input("Block (days)", key=session.BT_CH + "block", value=1,
                                                  min_value=1, max_value=20, step=1,
                                                  help="1 draws days independently; more keeps streaks of good "
                                                       "and bad days together"))
    return terms


def _chosen() -> Challenge | None:
    """The challenge template chosen, or None for each preset's own limits."""
    names = list_challenges()
    pick = st.selectbox("Challenge", [OWN_LIMITS, *names], key=session.BT_CH + "template",
                        format_func=lambda name: name if name == OWN_LIMITS else load_challenge(name).title,
                        help="A shipped challenge (presets/challenges), or a target with each preset's own "
                             "drawdown, daily loss and consistency limits.")
    if pick == OWN_LIMITS:
        return None
    template = load_challenge(pick)
    st.caption(template.about)
    return template


def _rules(name: str, constraints: core.Constraints, terms: dict) -> ChallengeRules:
    """A preset's challenge: its limits as the user left them, plus the shared terms."""
    name_column, *columns = st.columns([1, 2, 2, 2], vertical_alignment="bottom")
    name_column.markdown(f"**{literal(name)}**")
    values = {}
    for column, (field, label) in zip(columns, LIMITS):
        values[field] = column.number_input(label, key=f"{session.BT_CH}{name}.{field}", min_value=0.0,
                                            max_value=100.0, step=0.5,
                                            value=round(getattr(constraints, field) * 100, 4)) / 100
    return ChallengeRules(profit_target_pct=terms["target"], max_drawdown_pct=values["max_drawdown_pct"] or 1.0,
                          max_daily_loss_pct=values["max_daily_loss_pct"] or 1.0,
                          consistency_rule_pct=values["consistency_rule_pct"] or None,
                          min_trading_days=terms["min_days"], max_days=terms["max_days"] or None,
                          drawdown=terms["drawdown"])


@st.cache_data(show_spinner=False, max_entries=64)
def _odds(returns: pd.Series, rules: ChallengeRules | Challenge, paths: int,
          block: int) -> tuple[ChallengeResult, float]:
    """P(pass) and the pass rate from each start day of one backtest's returns, kept across the page's reruns (a
    toggle, a tab, Open): both are seeded, so the same inputs give the same figures, and without a time limit 10,000
    paths take 0.6-1.2 s a preset."""
    return pass_probability(returns, rules, paths=paths, block=block), rolling_pass_rate(returns, rules)


def render(results: dict, schemas: dict[str, core.Constraints]) -> None:
    """The panel for finished backtests `results` {label: BacktestResult}; `schemas` {preset: Constraints}."""
    st.subheader("Would it pass a challenge?")
    st.caption("Each backtest's daily returns are drawn at random (in blocks of consecutive days) into many "
               "paths that start at the account's size. A path fails on a day that loses the daily limit or "
               "a fall below the max drawdown (from the running peak when trailing, from the start when "
               "static); it passes on the first day it is up by the target with the minimum days traded and "
               "no single day above the consistency share of the profit; a template with two steps passes "
               "the second from a fresh account. A drawdown or daily limit of 0 is off.")
    template = _chosen()
    terms = _terms(template is None)
    rows = []
    for label, result in results.items():
        returns = result.equity.pct_change().iloc[1:]
        constraints = schemas.get(result.preset) or schemas.get(label) or core.Constraints()
        try:
            rules = template or _rules(label, constraints, terms)
        except core.InvalidInput as error:
            st.error(str(error))
            continue
        if not len(returns):
            rows.append({"preset": label, "P(pass)": "no days"})
            continue
        outcome, from_each_day = _odds(returns, rules, terms["paths"], min(terms["block"], len(returns)))
        rows.append({
            "preset": label, "P(pass)": _percent(outcome.p_pass),
            "95 % interval": f"{_percent(outcome.ci_low)} – {_percent(outcome.ci_high)}",
            "failed: drawdown": _percent(outcome.p_fail_drawdown),
            "failed: daily limit": _percent(outcome.p_fail_daily),
            "timed out": _percent(outcome.p_timeout),
            "median days to pass": "—" if outcome.median_days_to_pass is None else f"{outcome.median_days_to_pass:g}",
            "from each start day": _percent(from_each_day),
        })
    if rows:
        st.markdown("**Pass probability**")  # a short line: the table's toolbar sits over it, never over an input
        st.dataframe(pd.DataFrame(rows).set_index("preset"), width="stretch")
        st.caption("“From each start day”: the share of the backtest's own days from which its actual sequence "
                   "passes (with a time limit, only start days with that many days after them count).")
        st.caption(MEANING)
