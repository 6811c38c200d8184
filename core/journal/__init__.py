"""The journal: one SQLite file that records exchanges and backtests, and reads them back."""

from core.journal.record import record  # noqa: E402,F401  (core.journal.record(events, store): the function)
