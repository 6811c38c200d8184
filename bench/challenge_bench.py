"""Speed of the pass probability (10,000 paths x 60 days) and of a sweep over the sp500-2009
universe with one preset on every core; the speed-up over one core and a 2-worker Dask LocalCluster
on its first 100 symbols (the whole universe three times took most of `make bench`)."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

import core
from bench.backtest_bench import _timed
from core import market
from core.backtest import sweeps

PRESET = "moderate"
SUBSET = 100  # symbols of the speed-up and Dask figures: the ratio needs no full universe three times


def _sweep_s(executor, symbols) -> tuple[float, int]:
    start = time.perf_counter()
    frame = core.sweep(symbols, [PRESET], *market.universe_range("sp500-2009"), executor=executor, online=False)
    return time.perf_counter() - start, int((frame["error"] == "").sum())


def _dask_sweep_s(symbols) -> float | str:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        return "dask not installed"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        return _sweep_s(client.get_executor(), symbols)[0]


def run() -> dict:
    os.environ[market.OFFLINE_ENV] = "1"  # a benchmark never waits on the network
    returns = np.random.default_rng(0).normal(0.001, 0.01, 250)
    rules = core.ChallengeRules(0.06, 0.10, 0.02, 0.5, max_days=60)
    core.pass_probability(returns, rules)
    pass_s = _timed(lambda: core.pass_probability(returns, rules, paths=10_000), 7)

    members = market.universe_symbols("sp500-2009")  # the file read once here: forked workers inherit its rows
    cores = sweeps.cores()
    every_core, ran = _sweep_s(None, members)  # the whole universe, one preset: the figure
    subset = members[:SUBSET]
    with ProcessPoolExecutor(1) as one:
        one_core, _ = _sweep_s(one, subset)
    subset_every_core, _ = _sweep_s(None, subset)
    dask_s = _dask_sweep_s(subset)
    return {
        "pass_probability_10k_paths_60_days_s_best": round(pass_s, 4),
        "pass_probability_goal_s": 0.1,
        "sweep": f"sp500-2009: {len(members)} symbols x {PRESET}, one year each, house agents",
        "sweep_backtests_run": ran,
        "sweep_all_cores_s": round(every_core, 2),
        "sweep_all_cores_goal_s": 20,
        "sweep_cores": cores,
        "sweep_subset": f"the first {len(subset)} symbols, {PRESET}",
        "sweep_subset_one_core_s": round(one_core, 2),
        "sweep_subset_all_cores_s": round(subset_every_core, 2),
        "sweep_speed_up": round(one_core / subset_every_core, 2),
        "sweep_speed_up_goal_x": 1.8,
        "sweep_subset_dask_local_cluster_2_workers_s": round(dask_s, 2) if isinstance(dask_s, float) else dask_s,
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key}: {value}")
