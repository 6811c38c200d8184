"""Backtest: replay the Player–Coach loop over real daily bars, one symbol or a portfolio in one book;
one or two presets on the same days."""

import uuid
from functools import partial

import streamlit as st

from ui import shell

shell.require_app()

import pandas as pd  # noqa: E402  after require_app: a fresh process's first URL runs this file alone, before app.py
import core  # noqa: E402
from core import market, prices
from core.backtest import engine as backtest
from core.backtest import result as metrics  # noqa: E402
from core import exports  # noqa: E402
from core.exports import safe_csv  # noqa: E402
from core.backtest.feed import Feed  # noqa: E402
from core.backtest.job import StoredRun, ends_in_first_slice, past_runs, reopen_backtest, slice_days  # noqa: E402
from core.backtest.spec import BacktestSpec, Costs  # noqa: E402
from ui import after_paint, backtest_form, backtest_view, challenge_view, charts, market_defaults, rule_costs_view, session  # noqa: E402
from ui.exchange_view import literal  # noqa: E402
from ui.session import sticky  # noqa: E402

HOUSE, CLAUDE = backtest_view.AGENTS["house"], backtest_view.AGENTS["claude"]
state = st.session_state
store = session.store()


@st.cache_resource(show_spinner=False, max_entries=8)
def feed_for(symbols: tuple[str, ...], start, end) -> Feed:
    """A book's bars with the warm-up before `start` (cache, yfinance, then the snapshot), laid out once for
    every slice, preset and later run of the same book; the engine only reads a Feed, so runs share it."""
    return Feed.load(list(symbols), start, end)


def agents_for(spec: BacktestSpec):
    """The Player and Coach a spec names: house, claude, or an installed agent by its entry point name."""
    if spec.agents == "house":
        return core.HousePlayer(seed=spec.seed), core.HouseCoach()
    return session.agents(spec.seed, choice=None if spec.agents == "claude" else spec.agents)


def result_of(run_key: str) -> backtest.BacktestResult:
    results = state.setdefault(session.BT_RESULTS, {})
    if run_key not in results:
        results[run_key] = reopen_backtest(store, run_key)
    return results[run_key]


st.title("Backtest")
st.caption("Each trading day the Player proposes on the previous close, the Coach checks, approved entries fill at "
           "the next open after a re-check at the fill price; stops and targets trigger on the day's high/low "
           "(stop first), fees and slippage come off every fill. No future bar reaches a decision.")

# -- inputs ----------------------------------------------------------------------------------
backtest_form.restore(state.pop(session.BT_RESTORE, None) or {})  # Open, Resume: the past run's form

symbols = market_defaults.symbols()
top = st.columns([1, 1, 2])
symbol = sticky(top[0].selectbox, "Symbol", key=session.BT_SYMBOL, options=symbols,
                index=symbols.index("MSFT") if "MSFT" in symbols else 0)
more = sticky(top[1].multiselect, "With (one book)", key=session.BT_MORE, options=symbols,
              default=[], help="Backtest a portfolio: each day one exchange per symbol, in this order, sharing one "
                               "equity, so max_open_positions, max_leverage and the daily loss bind across symbols.")
book = [symbol, *(s for s in more if s != symbol)]
days = market_defaults.shared_days(book)
if len(days) < 2:
    spans = "; ".join(f"{s} {d[0]:%d %b %Y} to {d[-1]:%d %b %Y}" if (d := market_defaults.dates(s)) else f"{s} none"
                      for s in book)
    st.error(f"{', '.join(book)} have no trading days in common in the local data ({spans}).")
    st.stop()
start, end = backtest_form.date_inputs(days, top[2], book)

choices = session.schemas()
labels = list(choices)
row = st.columns(4)
first = sticky(row[0].selectbox, "Preset", key=session.BT_PRESET, options=labels,
               index=labels.index("moderate") if "moderate" in labels else 0)
second = sticky(row[1].selectbox, "Compare with", key=session.BT_COMPARE, options=["(none)", *labels],
                index=labels.index("strict") + 1 if "strict" in labels else 0)
agent_options = ([HOUSE, CLAUDE] if session.has_key() else [HOUSE]) + [a.name for a in session.own_agents()]
agent_label = sticky(row[2].radio, "Agents", key=session.BT_AGENTS, options=agent_options, index=0,
                     help=None if session.has_key() else "Add a key on Settings to backtest with Claude.")
DEFAULT = BacktestSpec.model_fields  # the form starts from the spec's own defaults: one definition
depth = sticky(row[3].radio, "Depth", key=session.BT_DEPTH, options=list(backtest.DEPTHS),
               index=backtest.DEPTHS.index(DEFAULT["depth"].default),
               format_func=lambda d: "fast (one round)" if d == "fast" else "standard (up to max_rounds)")
row = st.columns(4)
DEFAULT_COSTS = Costs()
capital = sticky(row[0].number_input, "Capital ($)", key=session.BT_CAPITAL, value=DEFAULT["capital"].default,
                 min_value=1_000.0, step=10_000.0)
fee_bps = sticky(row[1].number_input, "Fees (bp per fill)", key=session.BT_FEE, value=DEFAULT_COSTS.fee_bps,
                 min_value=0.0, step=0.5)
slippage_bps = sticky(row[2].number_input, "Slippage (bp per fill)", key=session.BT_SLIPPAGE,
                      value=DEFAULT_COSTS.slippage_bps, min_value=0.0, step=0.5)
max_hold = sticky(row[3].number_input, "Holding limit (days)", key=session.BT_HOLD, value=DEFAULT_COSTS.max_hold_days,
                  min_value=1, step=1)

schemas = [(first, choices[first])] + ([(second, choices[second])] if second not in ("(none)", first) else [])
kind = {CLAUDE: "claude", HOUSE: "house"}.get(agent_label, agent_label)
n_days = len({d for s in book for d in market_defaults.dates(s) if start <= d <= end})  # the union calendar
job = state.get(session.BT_JOB)
try:  # the form as what Run will run: one definition of a backtest, checked as the CLI checks it
    spec = BacktestSpec(symbols=book, start=start, end=end, presets=schemas, agents=kind, depth=depth,
                        capital=capital, costs=Costs(fee_bps, slippage_bps, int(max_hold)))
except core.InvalidInput as error:
    st.error(literal(error))
    spec = None
else:
    spec = backtest_form.allow_book(spec)

# -- the cost of a paid run, confirmed before it starts -------------------------------------------
confirmed = spec is not None
if kind == "claude" and confirmed:
    model = state.get(session.MODEL)
    estimate = [prices.estimate_cost(n_days * len(book), c, depth, model) for _, c in schemas]  # exchanges
    span = f" × {len(book)} symbols" if len(book) > 1 else ""
    calls = sum(e["calls_typical"] for e in estimate)
    worst_calls = sum(e["calls_worst"] for e in estimate)
    dollars = sum(e["dollars_typical"] for e in estimate)
    worst = sum(e["dollars_worst"] for e in estimate)
    basis = estimate[0]["cost_basis"]
    if basis == "unknown":  # a model nothing prices: the calls are known, the dollars are not (never "$0")
        st.warning(f"Claude ({model}) on {n_days} days{span} × {len(schemas)} preset(s): "
                   f"about **{calls:,} calls** (at "
                   f"most {worst_calls:,}); the cost is unknown: {model} is not in the price table. The spend "
                   "guard's calls-per-hour limit still applies.", icon=":material/payments:")
        confirmed = st.checkbox(f"I accept up to {worst_calls:,} calls at an unknown price", key=session.BT_CONFIRM)
    else:
        about = "≈" if basis == "estimated" else ""
        st.warning(f"Claude ({model}) on {n_days} days{span} × {len(schemas)} preset(s): "
                   f"about **{calls:,} calls, "
                   f"{about}${dollars:,.2f}** (at most {worst_calls:,} calls, {about}${worst:,.2f})"
                   + (", estimated" if about else "")
                   + (f", counting about {estimate[0]['thinking_per_call']:,} thinking tokens a call (billed as "
                      "output: this model cannot stop thinking)" if estimate[0]["thinking_per_call"] else "")
                   + ". The spend guard on Settings still applies.", icon=":material/payments:")
        confirmed = st.checkbox(f"I accept a cost of up to {about}${worst:,.2f}", key=session.BT_CONFIRM)

resuming = state.pop(session.BT_AUTORUN, False)
if resuming and not confirmed:
    st.info("Confirm the cost above, then press Run backtest: the run resumes from its stored days.")
if (st.button("Run backtest", key=session.BT_RUN, type="primary", disabled=bool(job) or not confirmed)
        or (resuming and confirmed and not job)):
    # one stored entry however many presets it compares; Open and Resume put its spec back into the widgets
    state[session.BT_JOB] = job = {"spec": spec, "index": 0, "keys": [], "job_key": uuid.uuid4().hex}
    state[session.BT_SHOWN] = []


# -- a running job: one slice per run, progress and Cancel in between ------------------------------
def advance() -> None:
    job = state.get(session.BT_JOB)
    if not job or job.get("finished"):  # a timer's run asked for before the page's run that ends the job
        return
    spec = job["spec"]
    one = spec.one(job["index"])
    st.markdown(f"**Running {literal(one.preset.name)}** ({job['index'] + 1} of {len(spec.presets)}) on "
                f"{', '.join(spec.symbols)}")
    progress = backtest_view.progress(st.progress(0.0, text="starting…"))
    if st.button("Cancel", key=session.BT_CANCEL, icon=":material/stop_circle:"):
        finish(job, cancelled=True)
        return
    if spec.agents == "claude" and not session.has_key():
        st.error("The API key was cleared: the backtest stopped. Days already decided are kept.")
        finish(job, cancelled=True)
        return

    try:
        # The preset's first slice: its stored days are read once, and its state and agents kept for the next
        # slices (one run, one model; Settings' spend guard is shared; a cleared key stops it above)
        if "run" not in job:
            feed = feed_for(tuple(spec.symbols), spec.start, spec.end)
            job["run"] = StoredRun(backtest.Backtest(one, *agents_for(spec), feed=feed), store)
            job["current"] = job["run"].test.run_key
            store.save_backtest_job(job["job_key"], spec.model_dump(mode="json"), [*job["keys"], job["current"]])
        result = job["run"].advance(progress, stop_after=slice_days(spec.agents, len(spec.symbols)))
    except (market.MarketDataError, ValueError) as error:
        st.error(str(error))
        state.pop(session.BT_JOB, None)
        return
    if result is None:
        return  # paused: the next run (the fragment's timer, or any rerun) carries on where this slice stopped
    del job["run"]
    state.setdefault(session.BT_RESULTS, {})[result.run_key] = result
    job["keys"].append(result.run_key)
    job["index"] += 1
    if job["index"] == len(spec.presets):
        job["finished"] = "figures"  # its figures come next, and the rest on the run after that: below
        state[session.BT_SHOWN] = job["keys"]
        if not in_page_run:  # a run of the fragment alone: the figures need a run of the page
            st.rerun(scope="app")


def close(job: dict, cancelled: bool = False) -> None:
    key = job.get("current")
    if cancelled and key and key not in job["keys"]:
        store.set_backtest_status(key, "cancelled")
        state.get(session.BT_RESULTS, {}).pop(key, None)
        job["keys"].append(key)
    state[session.BT_SHOWN] = job["keys"]
    state[session.BT_PICK] = job["job_key"]  # Past runs shows the run just made
    state.pop(session.BT_JOB, None)


def finish(job: dict, cancelled: bool = False) -> None:
    close(job, cancelled)
    st.rerun(scope="app")


# Where a running job shows; there with none too, so that the results below keep their places from the run that ends
# the job to the next (chromium showed both drawings' tabs for a moment when they moved)
running_here = st.empty()
in_page_run = False  # True while the page's own run advances the job (the fragment's timer runs advance alone)
ending = job.get("finished") if job else None
if ending == "figures":
    # Its figures alone, and the rest on the page's next run, which the browser asks for once it shows them (below).
    # The job stays until then, so that Open and Resume wait for it, and a script that reruns the page to the end of
    # a job (AppTest) gets the rest too
    job["finished"] = "details"
elif ending == "details":
    close(job)
elif job:
    # The browser asks for the next slice on this timer; asks made while a slice runs are merged into one, so a
    # slice longer than the interval is followed at once by the next. Each ask costs the browser a message
    # (chromium spent about 5 ms of a loaded core building each): at 0.05 s, twenty a second while the server decides;
    # at 0.1 s the next preset of a comparison still starts within 0.1 s of the last one's end.
    # A job that ends in this run needs no timer: its asks would rerun the fragment (and a full gc.collect after
    # each) while the browser draws the figures, until the page's next run drops it.
    try:
        fresh, ran = "run" not in job and not job["index"], job["spec"]
        timer = None if fresh and ends_in_first_slice(ran, feed_for(tuple(ran.symbols), ran.start, ran.end)) else 0.1
    except (market.MarketDataError, ValueError):
        timer = 0.1  # advance says what is wrong
    with running_here:
        in_page_run = True
        try:
            st.fragment(advance, run_every=timer)()
        finally:
            in_page_run = False
    if job.get("finished") == "figures":
        # It ended in this run (a four-symbol year is one slice): its figures come below in this run, not after a
        # rerun of the page's form (0.05-0.15 s, and a full gc.collect before it)
        running_here.empty()
        ending, job["finished"] = "figures", "details"


# -- results ----------------------------------------------------------------------------------------
def draw_figures(results: dict[str, backtest.BacktestResult]) -> None:
    """Where the data came from, runs that stopped early, and the lead preset's five figures."""
    lead = next(iter(results.values()))
    (st.warning if lead.fallback else st.caption)(backtest_view.data_note(lead))
    for name, r in results.items():
        if r.status != "finished":
            done = backtest_view.days_done(r.days["day"].nunique(), store.get_backtest(r.run_key)["days_total"])
            st.warning(f"**{literal(name)}** was {r.status} after {done}: the figures cover "
                       f"{r.days['day'].iloc[0]:%d %b %Y} to {r.days['day'].iloc[-1]:%d %b %Y}." if len(r.days)
                       else f"**{literal(name)}** was {r.status} before its first day.", icon=":material/pause_circle:")

    figures = st.columns(5)
    lead_name = next(iter(results))
    for col, metric in zip(figures, ("total_return_pct", "sharpe", "max_drawdown_pct", "win_rate", "trades")):
        idle = int(lead.metrics["trades"]) == 0 and metric in metrics.NEEDS_TRADES
        col.metric(f"{metrics.METRIC_LABELS[metric]} · {literal(lead_name)}",
                   "no trades" if idle else backtest_view.metric_text(metric, lead.metrics[metric]))


def draw_details(results: dict[str, backtest.BacktestResult], later: charts.DrawnLast) -> None:
    """The figures side by side, the files, the curves, the challenge and a tab per preset (charts kept in `later`)."""
    lead = next(iter(results.values()))
    st.subheader("Metrics side by side" if len(results) > 1 else "Metrics")
    if different := backtest_view.different_books(results):
        st.warning(different, icon=":material/compare_arrows:")
    st.dataframe(backtest_view.metrics_table(results), width="stretch", column_config=backtest_view.METRICS)
    files = st.columns([1, 1, 2])
    files[0].download_button("Metrics CSV", lambda: safe_csv(exports.backtest_metrics(results)),
                             file_name="backtest_metrics.csv", mime="text/csv", key="bt.metrics_csv",
                             icon=":material/download:", help="The figures above side by side, numbers as numbers.")
    files[1].download_button("Whole run JSON", lambda: exports.backtest_json(results), file_name="backtest.json",
                             mime="application/json", key="bt.run_json", icon=":material/download:",
                             help="Each run's spec (constraints included), figures, trades, daily equity and "
                                  "positions, and every exchange it decided.")

    left, right = st.columns(2)
    with_bench = left.toggle("Show buy & hold (on its own scale, right)", key=session.BT_BUY_HOLD, value=False,
                             help=f"Buy & hold of the same capital: {lead.metrics['buy_hold_return_pct']:+.2f} % "
                                  "over these days.")
    later.add(left, partial(charts.returns_curves, {n: r.equity for n, r in results.items()}, lead.settings["capital"],
                            lead.buy_hold if with_bench and len(lead.prices) else None))
    later.add(right, partial(charts.drawdowns, {n: r.drawdown for n, r in results.items()}))
    challenge_view.render(results, choices)

    for tab, (name, r) in zip(st.tabs([literal(name) for name in results]), results.items()):
        with tab:
            draw_run(name, r, later)


def draw_run(name: str, r: backtest.BacktestResult, later: charts.DrawnLast) -> None:
    """One preset's tab: its prices with its trades, the limits that bound, what each rule cost, its trades and
    days, walk-forward and regimes."""
    if not len(r.trades):
        st.info(backtest_view.why_no_trades(r), icon=":material/block:")
    for sym, prices_of in r.bars.items():
        if len(r.symbols) > 1 and not (r.trades["symbol"] == sym).any():  # one symbol: said above
            st.caption(backtest_view.why_idle(r, sym))
        later.add(st, partial(charts.price_with_trades, prices_of, r.trades[r.trades["symbol"] == sym],
                              f"{sym} with the trades of {name}"))
    if len(r.symbols) > 1:
        st.markdown("**By symbol**")
        st.dataframe(r.by_symbol, width="stretch", column_config=backtest_view.BY_SYMBOL)
        later.add(st, partial(charts.positions, r.positions))
    st.markdown("**Limits that bound**: proposals each rejected or aborted, approved entries refused at "
                "the fill, and the days each kept an entry out of the book")
    if len(r.limits):
        st.dataframe(r.limits, width="stretch", column_config=backtest_view.LIMITS,
                     column_order=backtest_view.LIMIT_COUNTS)
    else:
        st.caption("None: no rule or breaker stopped a proposal.")
    rule_costs_view.section(store, r.run_key)
    st.markdown(f"**Trades** ({len(r.trades):,d})")
    st.dataframe(r.trades, width="stretch", hide_index=True, column_config=backtest_view.TRADES)
    slug = "".join(ch if ch.isalnum() else "-" for ch in name)
    files = st.columns([1, 1, 2])
    files[0].download_button("Export trades CSV", safe_csv(r.trades), file_name=f"trades_{slug}.csv",
                             mime="text/csv", key=f"bt.trades_csv.{name}", icon=":material/download:")
    files[1].download_button("Export daily CSV", lambda: safe_csv(exports.backtest_daily(r)),
                             file_name=f"daily_{slug}.csv", mime="text/csv", key=f"bt.daily_csv.{name}",
                             icon=":material/download:",
                             help="Each day's equity, return, drawdown and positions (% of equity).")
    st.markdown("**Aborted, skipped and unfilled days**")
    exceptions = r.exceptions
    if len(exceptions):
        st.dataframe(exceptions, width="stretch", hide_index=True, column_config=backtest_view.EXCEPTIONS)
    else:
        st.caption("None: every day ran and every approved entry filled.")
    wf, regimes = st.columns(2)
    wf.markdown("**Walk-forward** (in-sample / out-of-sample Sharpe)")
    wf.dataframe(pd.DataFrame({k: v for k, v in r.walk_forward.items() if isinstance(v, dict)}).T.round(2),
                 width="stretch")
    regimes.markdown("**By volatility regime** (known before each day)")
    regimes.dataframe(r.by_regime.round(2), width="stretch")


shown = [k for k in state.get(session.BT_SHOWN) or []]
running = None if ending else state.get(session.BT_JOB)
if shown and not running:
    results = {}
    for key in shown:
        r = result_of(key)
        results[r.preset if r.preset not in results else f"{r.preset} ({key[-4:]})"] = r
    draw_figures(results)
    if ending == "figures":
        # A run that has just ended: the rest of its results come on the run the browser asks for once it shows the
        # figures. Chromium showed no element of an update until it had drawn all of them and loaded the
        # code of each kind (the tables' 0.5 MB, plotly's 4.7 MB): the figures waited 0.5-3 s behind the tables and
        # charts on a loaded machine
        after_paint.rerun_once_drawn('[data-testid="stMetric"]', key=session.BT_DETAILS_CUE)
    else:
        later = charts.DrawnLast()  # the metrics and tables first: see DrawnLast
        draw_details(results, later)
        later.draw()

# -- past runs ----------------------------------------------------------------------------------------
st.divider()
st.subheader("Past runs")
live = {running["job_key"], *running["keys"], running.get("current")} if running else set()
past = {entry.key: entry for entry in past_runs(store, live=live, now=session.now())}
if not past:
    st.caption("No stored backtests yet.")
else:
    if (new := state.pop(session.BT_PICK, None)) in past:
        state[session.BT_PAST] = new
    pick = st.selectbox("A stored backtest (a comparison of two presets is one)", list(past),
                        format_func=lambda key: backtest_view.past_label(past[key]), key=session.BT_PAST)
    entry = past[pick]
    buttons = st.columns([1, 1, 4])
    missing = backtest_form.missing_presets(entry.spec, labels)
    if missing:
        buttons[2].caption(f"Its preset {literal(', '.join(missing))} no longer exists: it can be shown, not resumed.")
    if buttons[0].button("Open", key=session.BT_OPEN, disabled=session.BT_JOB in state or not entry.runs,
                         help="Show its results and put its symbols, dates, presets and costs back into the form."):
        for key in entry.run_keys:
            state.get(session.BT_RESULTS, {}).pop(key, None)
        state[session.BT_SHOWN] = entry.run_keys
        if not missing:
            state[session.BT_RESTORE] = backtest_form.restored_form(entry.spec, agent_options)
        st.rerun()
    if entry.state in ("interrupted", "cancelled") and not missing:
        if buttons[1].button("Resume", key=session.BT_RESUME, disabled=session.BT_JOB in state, type="primary",
                             help="Run it again with the same form: the days it decided are replayed from the "
                                  "store, no agent is asked twice."):
            state[session.BT_RESTORE] = backtest_form.restored_form(entry.spec, agent_options)
            state[session.BT_AUTORUN] = True
            st.rerun()
        buttons[2].caption("Stopped before its last day: Resume carries on from the days it decided."
                           if entry.state == "interrupted" else "Cancelled: Resume carries on from the days it decided.")

# Chromium loads an element's code the first time a run draws one: a run's five figures waited for theirs (and for
# this component's own, which after_paint draws beside them) 0.1-0.2 s. Loaded here, at the foot of the page, they are
# ready long before Run is clicked
after_paint.load_code(("Metric",), key=session.BT_LOAD_CODE)
