"""`make bench`: run every benchmark, print the figures, write bench/results.json."""

from __future__ import annotations

import importlib
import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

SUITES = ["bench.core_bench", "bench.claude_bench", "bench.backtest_bench", "bench.challenge_bench", "bench.ui_bench",
          "bench.mcp_bench", "bench.whatif_bench"]


def main() -> int:
    results = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}"}
    for name in SUITES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        print(f"== {name}", flush=True)
        figures = module.run()
        for key, value in figures.items():
            print(f"  {key}: {value}")
        results[name.split(".")[-1]] = figures
    out = Path(__file__).with_name("results.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
