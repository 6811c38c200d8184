"""Backtests: the engine that decides and simulates, the book, results, challenge odds, sweeps, jobs."""
