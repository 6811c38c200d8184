"""Backtest's "What each rule costs": for a stored run, what relaxing each limit would have changed, how
the results move with one limit, and the rule sets on the (return, P(pass)) front. Each is computed on
request (a progress bar, Cancel), stored with the run and reopened with it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import streamlit as st

import core
from core.backtest.job import stored_spec
from core.backtest.templates import list_challenges
from core.backtest.whatif import LIMITS, attribution, frontier, frontier_preset, sensitivity
from ui import charts, session
from ui.text import literal

NO_CHALLENGE = "(none)"
SWEPT = ("max_single_trade_pct", "max_position_pct", "max_leverage", "min_risk_reward", "max_daily_loss_pct",
         "max_drawdown_pct", "max_open_positions")
"""The limits a sensitivity or a frontier varies: the ones with a number to move."""
FACTORS = (0.5, 0.75, 1.0, 1.5, 2.0)  # a sensitivity's values: the preset's value scaled


def _workers() -> ThreadPoolExecutor:
    # Threads, not processes: forking the app's server (its threads, its sockets) for a worker is unsafe.
    return ThreadPoolExecutor(2)


def _computed(label: str, key: str, work):
    """Run `work(progress)` under a progress bar with Cancel beside it; a click on Cancel reruns the page,
    which stops the work where it stands (nothing is stored)."""
    bar = st.progress(0.0, text=f"{label}: starting…")
    st.button("Cancel", key=f"{session.BT_WHATIF_CANCEL}.{key}", icon=":material/stop_circle:")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=f"{label}: {done} of {total} backtests")

    return work(progress)


def _values(constraints: core.Constraints, limit: str) -> list:
    """Values of a limit around the preset's, within what the schema takes."""
    current = getattr(constraints, limit)
    bound = next((m.le for m in core.Constraints.model_fields[limit].metadata if hasattr(m, "le")), None)
    values = sorted({min(bound or v, v) for v in (current * f for f in FACTORS)})
    return [max(1, round(v)) for v in values] if isinstance(current, int) else [round(v, 4) for v in values]


def section(store: core.Store, run_key: str) -> None:
    """The section for one stored run."""
    studies = store.what_ifs(run_key)
    row = store.get_backtest(run_key)
    spec = stored_spec(row)
    st.markdown("**What each rule costs**: the same backtest re-run with one limit relaxed at a time (same days, "
                "agents and seed). It sees what the counts above cannot: entries the Player held back on its own.")
    if row["player"] != core.HousePlayer.name:
        st.info(f"These are {literal(row['player'])}'s runs: each study is {len(LIMITS) + 1} backtests of them (paid "
                "ones with Claude). Run it from Python or the command line (`python -m core attribution`), where "
                "the agents, an estimate and the spend guard come first.", icon=":material/payments:")
        return
    agents = (core.HousePlayer(seed=spec.seed), core.HouseCoach())
    template = st.selectbox("Challenge, for P(pass)", [NO_CHALLENGE, *list_challenges()],
                            key=f"{session.BT_WHATIF_CHALLENGE}.{run_key}",
                            help="P(pass) is drawn from each re-run's own daily returns (see the challenge above).")
    challenge = None if template == NO_CHALLENGE else template
    _attribution(store, run_key, spec, agents, challenge, studies.get("attribution"))
    _sensitivity(store, run_key, spec, agents, challenge, studies)
    _frontier(store, run_key, spec, agents, challenge, studies.get("frontier"))


def _attribution(store, run_key, spec, agents, challenge, stored) -> None:
    if st.button(f"Compute what each rule costs ({len(LIMITS) + 1} backtests)", key=f"{session.BT_WHATIF_RUN}.{run_key}",
                 icon=":material/query_stats:"):
        table = _computed("What each rule costs", run_key, lambda progress: attribution(
            spec, challenge=challenge, agents=agents, executor=_workers(), progress=progress))
        store.save_what_if(run_key, "attribution", table.to_dict("records"), {**table.attrs, "challenge": challenge})
        st.rerun()
    if stored:
        notes = stored["notes"]
        st.plotly_chart(charts.rule_costs(stored["rows"]), width="stretch", config=charts.CONFIG)
        st.caption(f"Ranked by the return relaxing each limit would have added (red: the limit cost return). "
                   f"Noise: {notes.get('noise', '')}. Challenge: {literal(str(notes.get('challenge') or 'none'))}.")


def _sensitivity(store, run_key, spec, agents, challenge, studies) -> None:
    limit = st.selectbox("How the results move with one limit", SWEPT, key=f"{session.BT_SENS_LIMIT}.{run_key}")
    values = _values(spec.preset.constraints, limit)
    if st.button(f"Vary {limit} over {', '.join(map(str, values))}", key=f"{session.BT_SENS_RUN}.{run_key}"):
        table = _computed(f"Sensitivity of {limit}", run_key, lambda progress: sensitivity(
            spec, limit, values, challenge=challenge, agents=agents, executor=_workers(), progress=progress))
        store.save_what_if(run_key, f"sensitivity {limit}", table.to_dict("records"), {"challenge": challenge})
        st.rerun()
    stored = studies.get(f"sensitivity {limit}")
    if stored and stored["rows"]:
        st.plotly_chart(charts.sensitivity_lines(stored["rows"], limit), width="stretch", config=charts.CONFIG)


def _frontier(store, run_key, spec, agents, challenge, stored) -> None:
    limits = st.multiselect("The loosest rule set that still passes: a grid of", SWEPT, max_selections=3,
                            default=["max_single_trade_pct", "max_leverage"], key=f"{session.BT_FRONTIER_LIMITS}.{run_key}")
    grid = {limit: _values(spec.preset.constraints, limit)[1:4] for limit in limits}  # three values around the preset's
    runs = 1
    for values in grid.values():
        runs *= len(values)
    if st.button(f"Find the front ({runs} backtests)", key=f"{session.BT_FRONTIER_RUN}.{run_key}",
                 disabled=challenge is None or not grid, help="Needs a challenge: P(pass) is one of the two axes."):
        table = _computed("Frontier", run_key, lambda progress: frontier(
            spec, grid, challenge, agents=agents, executor=_workers(), progress=progress))
        store.save_what_if(run_key, "frontier", table.to_dict("records"), {"challenge": challenge, "limits": limits})
        st.rerun()
    if not stored or not stored["rows"]:
        return
    rows, on = stored["rows"], stored["notes"]["limits"]
    st.plotly_chart(charts.frontier_scatter(rows, on), width="stretch", config=charts.CONFIG)
    labels = [", ".join(f"{k}={row[k]}" for k in on) + (" · passes" if row.get("passes") else "") for row in rows]
    pick = st.selectbox("A rule set of the front", range(len(rows)), format_func=labels.__getitem__,
                        key=f"{session.BT_FRONTIER_PICK}.{run_key}")
    name = st.text_input("Save it as the preset", key=f"{session.BT_FRONTIER_NAME}.{run_key}",
                         placeholder="e.g. survives one_step")
    if st.button("Save preset", key=f"{session.BT_FRONTIER_SAVE}.{run_key}", disabled=not name.strip()):
        constraints, evidence = frontier_preset(spec, rows[pick], stored["notes"]["challenge"])
        try:
            store.save_preset(name, constraints, evidence)
        except core.InvalidInput as error:
            st.error(literal(str(error)))
        else:
            st.success(f"Saved as the preset {literal(name.strip())}, with the spec, challenge and figures behind it.")
