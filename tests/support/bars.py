"""Hand-made daily bars for the market and backtest tests."""

import numpy as np
import pandas as pd


def frame(closes, start="2024-01-02", **columns) -> pd.DataFrame:
    """Hand-made daily bars on business days: open = close unless given, high/low 1 around."""
    closes = np.asarray(closes, dtype=float)
    index = pd.bdate_range(start, periods=len(closes))
    return pd.DataFrame({
        "Open": columns.get("Open", closes), "High": columns.get("High", closes + 1),
        "Low": columns.get("Low", closes - 1), "Close": closes, "Volume": columns.get("Volume", np.full(len(closes), 1000.0)),
    }, index=index)
