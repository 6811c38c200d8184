"""`--dask ADDRESS`: a Dask scheduler to run a sweep's (or an attribution's) backtests on, reached
within a stated time or refused in one line (exit 3).

Dask's own `timeout` does not bound its handshake: a listener that accepts and never answers keeps
`Client(...)` waiting for ever, and a port that answers something else (HTTP, garbage) fails deep in
its deserialiser. So the client is made on a helper thread that the command waits for at most
`timeout` seconds (plus a little), and anything it raises means the same thing: no scheduler there.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import threading

from core.exchange.errors import InvalidInput

DASK_TIMEOUT_S = 10.0
"""How long --dask waits for the scheduler by default."""
MAX_DASK_TIMEOUT_S = 600.0
_ADDRESS = re.compile(r"(tcp|tls)://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):(\d{1,5})")
GRACE_S = 1.0  # past the timeout, for Dask to give up on its own and say why


def dask_address(text: str) -> str:
    """An argparse type: tcp://HOST:PORT or tls://HOST:PORT, else a usage error (exit 3)."""
    match = _ADDRESS.fullmatch(text.strip())
    if not match or not 0 < int(match[3]) < 65536:
        raise argparse.ArgumentTypeError(f"need a scheduler address as tcp://HOST:PORT (or tls://), got {text[:80]!r}")
    return text.strip()


def dask_timeout(text: str) -> float:
    """An argparse type: seconds above 0 and at most MAX_DASK_TIMEOUT_S."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= MAX_DASK_TIMEOUT_S:  # NaN fails here too
        raise argparse.ArgumentTypeError(f"need seconds above 0 and at most {MAX_DASK_TIMEOUT_S:g}, got {text[:40]!r}")
    return seconds


def add_dask_options(p: argparse.ArgumentParser) -> None:
    """--dask and --dask-timeout, with the default stated."""
    p.add_argument("--dask", metavar="ADDRESS", type=dask_address,
                   help="run on a Dask scheduler, e.g. tcp://scheduler:8786")
    p.add_argument("--dask-timeout", type=dask_timeout, default=DASK_TIMEOUT_S, metavar="SECONDS",
                   help=f"how long to wait for the scheduler to answer (default {DASK_TIMEOUT_S:g}, "
                        f"at most {MAX_DASK_TIMEOUT_S:g}); no answer is exit 3")


def connect_dask(address: str, timeout: float = DASK_TIMEOUT_S):
    """A Dask client for `address`, or InvalidInput within about `timeout` seconds saying why not."""
    address = dask_address_or_error(address)
    if not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_DASK_TIMEOUT_S:
        raise InvalidInput(f"--dask-timeout: need seconds above 0 and at most {MAX_DASK_TIMEOUT_S:g}, got {timeout!r}")
    try:
        from dask.distributed import Client
    except ImportError:
        raise InvalidInput("--dask: needs dask[distributed] (pip install -r requirements-dev.txt)") from None
    made: dict = {}

    def connect() -> None:
        try:
            made["client"] = Client(address, timeout=timeout, set_as_default=False)
        except BaseException as error:  # whatever a stranger's port makes Dask raise: no scheduler there
            made["error"] = type(error).__name__  # the name only: the error holds the half-made client

    _quiet_half_made_clients()

    worker = threading.Thread(target=connect, name="dask-connect", daemon=True)
    worker.start()
    worker.join(timeout + GRACE_S)
    if worker.is_alive():
        raise InvalidInput(f"--dask: no answer from a scheduler at {address} within {timeout:g} s")
    if "error" in made:
        raise InvalidInput(f"--dask: no Dask scheduler answered at {address} ({made['error']}, within {timeout:g} s)")
    return made["client"]


def _quiet_half_made_clients() -> None:
    """A client whose handshake failed tries to close itself when collected, times out and prints a
    traceback ("Exception ignored in Client.__del__") after our one line: that report alone is dropped."""
    previous = sys.unraisablehook
    if getattr(previous, "quiets_dask", False):
        return

    def hook(unraisable) -> None:
        if getattr(unraisable.object, "__qualname__", "") != "Client.__del__":
            previous(unraisable)

    hook.quiets_dask = True
    sys.unraisablehook = hook


def dask_address_or_error(address: object) -> str:
    if not isinstance(address, str):
        raise InvalidInput(f"--dask: need a scheduler address as tcp://HOST:PORT, got {address!r}")
    try:
        return dask_address(address)
    except argparse.ArgumentTypeError as error:
        raise InvalidInput(f"--dask: {error}") from None
