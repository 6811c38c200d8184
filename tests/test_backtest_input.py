"""Bad input to backtests, sweeps and their command line is refused where it is read (issue 21 items 5,
9 and 10): exit 3 and one line on stderr, or an error naming the field, before any case runs."""

from __future__ import annotations

import math
import socket
import threading

import numpy as np
import pytest

import core
from core import market
from core.__main__ import main as cli
from tests.support.bars import frame

START, END = "2024-01-02", "2024-03-29"
MODERATE = core.load_preset("moderate").model_copy(update={"allowed_symbols": ["TEST", "XYZ"]})


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv(market.OFFLINE_ENV, "1")


def one_line_error(capsys, argv) -> str:
    """Run the CLI; it must exit 3 with exactly one line on stderr and no traceback."""
    try:
        code = cli(argv)
    except SystemExit as stop:  # argparse's usage errors leave through SystemExit(3)
        code = stop.code
    err = capsys.readouterr().err
    assert code == 3, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# -- item 5: a Dask address that never answers, answers garbage, or is not an address -----------------------------

SWEEP = ["sweep", "--symbols", "MSFT", "--start", "2021-01-04", "--end", "2021-02-26", "--offline"]


@pytest.fixture
def listener():
    """A TCP port on 127.0.0.1 that accepts and then says nothing, or `reply` bytes."""
    servers = []

    def make(reply: bytes | None = None) -> str:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        servers.append(server)

        def serve():
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                servers.append(conn)
                if reply:
                    conn.sendall(reply)

        threading.Thread(target=serve, daemon=True).start()
        return f"tcp://127.0.0.1:{server.getsockname()[1]}"

    yield make
    for s in servers:
        s.close()


@pytest.mark.parametrize("reply", [None, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", b"\xff" * 64 + b"garbage" * 50],
                         ids=["silent", "http", "garbage"])
def test_a_dask_address_that_does_not_answer_as_a_scheduler_is_exit_3_within_the_timeout(capsys, listener, reply):
    pytest.importorskip("dask.distributed")
    err = one_line_error(capsys, [*SWEEP, "--dask", listener(reply), "--dask-timeout", "1"])
    assert "--dask:" in err and "scheduler" in err


@pytest.mark.parametrize("option,value", [("--dask", ""), ("--dask", "garbage"), ("--dask", "udp://127.0.0.1:9"),
                                          ("--dask", "tcp://127.0.0.1:99999"), ("--dask-timeout", "-1"),
                                          ("--dask-timeout", "nan"), ("--dask-timeout", "601")])
def test_a_bad_dask_address_or_timeout_is_refused_where_it_is_read(capsys, option, value):
    argv = [*SWEEP, "--dask", "tcp://127.0.0.1:9", option, value] if option != "--dask" else [*SWEEP, option, value]
    assert option in one_line_error(capsys, argv)


def test_the_dask_timeout_default_is_stated_in_help(capsys):
    with pytest.raises(SystemExit):
        cli(["sweep", "--help"])
    assert "default 10" in " ".join(capsys.readouterr().out.split())


# -- item 9: values checked where the arguments are parsed; a sweep that cannot run is refused first ------------

@pytest.mark.parametrize("argv,named", [
    (["sweep", "--symbols", "MSFT", "--seeds=-1", "--start", "2021-01-04", "--end", "2021-02-26"], "--seeds"),
    (["sweep", "--symbols", "MSFT", "--start", "0001-06-01", "--end", "2021-02-26"], "--start"),
    (["backtest", "--symbol", "MSFT", "--start", "0001-06-01", "--end", "2021-02-26"], "--start"),
    (["backtest", "--symbol", "MSFT", "--start", "2021-03-01garbage", "--end", "2021-04-30"], "--start"),
    (["prune", "--older-than", "99999999999d"], "--older-than"),
    (["sweep", "--universe", ""], "--universe"),
    (["sweep", "--symbols", "MSFT", "--start", "2021-01-04", "--end", "2021-02-26", "--out", "/nonexistent/x.csv"],
     "--out"),
    (["check", "/dev/zero"], "larger than"),
    (["backtest", "--symbol", "MSFT", "--start", "2021-03-01", "--end", "2021-04-30", "--fee-bps", "1e308"], "fee_bps"),
    (["sweep", "--symbols", "MSFT", "--start", "2021-03-01", "--end", "2021-02-01"], "start 2021-03-01 is after end"),
    (["sweep", "--symbols", "NOPE", "--start", "2021-01-04", "--end", "2021-02-26", "--offline"], "NOPE"),
    (["sweep", "--symbols", "", "--start", "2021-01-04", "--end", "2021-02-26"], "--symbols"),
    (["sweep", "--symbols", "MSFT", "--presets", "", "--start", "2021-01-04", "--end", "2021-02-26"], "--presets"),
    (["sweep", "--universe", "sp500-2009", "--start", "2001-01-02", "--end", "2001-03-01"], "outside sp500-2009"),
])
def test_bad_values_are_exit_3_with_one_line_naming_them(capsys, argv, named):
    assert named in one_line_error(capsys, argv)


def test_a_sweep_refused_never_starts_a_case(monkeypatch, capsys):
    from core.backtest import sweeps

    monkeypatch.setattr(sweeps, "run_symbol", lambda cases: pytest.fail("a case ran"))
    one_line_error(capsys, ["sweep", "--symbols", "MSFT,NOPE", "--presets", "moderate,nope", "--start", "2021-01-04",
                            "--end", "2021-02-26"])


def test_a_sweep_error_row_quotes_the_dates_asked_not_the_warm_up():
    rows = core.sweep(["MSFT", "ZZZZ"], ["moderate"], "2021-01-04", "2021-02-26", online=False)
    error = rows.loc[rows["symbol"] == "ZZZZ", "error"].iloc[0]
    assert error and "2019" not in error


# -- item 10: bars and costs through the API ------------------------------------------------------------------

def run(bars, symbol="TEST", **options):
    return core.run_backtest(symbol, START, END, MODERATE, core.HousePlayer(), core.HouseCoach(), bars=bars, **options)


def test_bars_whose_open_or_close_is_outside_the_days_range_are_refused_naming_the_day():
    closes = np.linspace(100, 110, 70)
    above = frame(closes, Open=closes + 5)  # the open above the high
    with pytest.raises(core.MarketDataError, match="TEST: Open .* on 2024-01-02 is outside that day's Low"):
        run(above)
    below = frame(closes)
    below.iloc[3, below.columns.get_loc("Close")] = 10.0
    with pytest.raises(core.MarketDataError, match="TEST: Close 10 on 2024-01-05 is outside"):
        run(below)


def test_prices_above_the_largest_price_are_refused_before_the_run():
    with pytest.raises(core.MarketDataError, match="TEST: Open 2e\\+09 on 2024-01-02 is above the largest price"):
        run(frame(np.full(70, 2e9)))


def test_symbols_given_with_bars_are_normalised_and_checked():
    bars = frame(np.linspace(100, 110, 70))
    result = run({"xyz": bars}, symbol="xyz")
    assert result.symbols == ["XYZ"]
    for bad in ("", "X Y"):
        with pytest.raises(core.InvalidInput, match="symbols: .*not a ticker"):
            run({bad: bars}, symbol=bad)


@pytest.mark.parametrize("costs,field", [({"max_hold_days": math.nan}, "max_hold_days"),
                                         ({"fee_bps": None}, "fee_bps"), ({"slippage_bps": -1}, "slippage_bps")])
def test_bad_costs_are_invalid_input_naming_the_field(costs, field):
    with pytest.raises(core.InvalidInput, match=field):
        core.Costs(**costs)
    with pytest.raises(core.InvalidInput, match=field):
        run(frame(np.linspace(100, 110, 70)), **costs)


@pytest.mark.parametrize("split", [math.nan, 5, -1, 0, 1])
def test_the_walk_forward_split_is_a_share_of_the_days(split):
    with pytest.raises(core.InvalidInput, match="walk_forward_split"):
        run(frame(np.linspace(100, 110, 70)), walk_forward_split=split)


def test_returns_too_large_to_compound_are_refused_naming_the_day():
    rules = core.ChallengeRules.from_constraints(core.load_preset("moderate"), 0.06)
    with pytest.raises(core.InvalidInput, match="daily_returns: day 2 is 1e\\+308"):
        core.pass_probability([0.01, 1e308, 0.01], rules)


def test_bars_the_loader_validated_are_not_validated_again_and_bars_built_by_hand_are(monkeypatch):
    from core.backtest import feed as feeds

    loaded = market.load_bars("MSFT", "2020-01-02", "2020-12-31", online=False)
    assert loaded.validated
    with pytest.raises(TypeError):
        market.Bars("TEST", loaded.frame, "given", validated=True)  # only the code that validated them marks them
    by_hand = market.Bars("TEST", frame(np.linspace(100, 110, 70)), "given")
    assert not by_hand.validated
    checked = feeds.backtest_bars("TEST", START, END, by_hand)
    assert checked.validated and checked is not by_hand

    def refuse(*_, **__):
        raise AssertionError("validated again")

    monkeypatch.setattr(feeds, "validate_bars", refuse)
    assert feeds.backtest_bars("MSFT", START, END, loaded) is loaded
    assert core.run_backtest("MSFT", "2020-06-01", "2020-06-30", core.load_preset("moderate"), core.HousePlayer(),
                             core.HouseCoach(), bars=loaded).metrics["days"] == 22
    with pytest.raises(AssertionError, match="validated again"):
        feeds.backtest_bars("TEST", START, END, by_hand)


def test_bars_built_by_hand_are_checked_before_a_feed_reads_them():
    from core.backtest.feed import SymbolFeed

    bad = frame(np.linspace(100, 110, 70))
    bad.iloc[5, bad.columns.get_loc("Low")] = math.nan
    with pytest.raises(core.MarketDataError, match="TEST: NaN in Low on 2024-01-09"):
        SymbolFeed.of("TEST", market.Bars("TEST", bad, "given"), market.as_day(START), market.as_day(END))
