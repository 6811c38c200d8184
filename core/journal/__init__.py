"""The journal: one SQLite file that records exchanges and backtests, and reads them back."""
