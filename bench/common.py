"""What every benchmark shares: its command line, the machine it ran on, and where results go."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def arguments(description: str | None, name: str, runs: int, peers: bool = False) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("-n", "--runs", type=int, default=runs, help=f"repetitions (default: {runs})")
    parser.add_argument("-o", "--output", default=str(ROOT / "bench" / "results" / f"{name}.json"))
    if peers:
        parser.add_argument("--without-peers", action="store_true",
                            help="measure even when a peer (bwrap, firejail, sandbox-runtime) is missing; the "
                                 "results then say which were left out")
    return parser.parse_args()


def header(name: str, runs: int) -> dict[str, Any]:
    return {"benchmark": name, "runs": runs, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": f"{os.uname().release}, {os.cpu_count()} cores"}


def save(path: str, results: dict[str, Any]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(results, indent=2) + "\n")


def spread(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Each contender's median, min and max (seconds, rounded), as the results files record them."""
    import statistics

    return {"seconds": {name: round(statistics.median(v), 4) for name, v in samples.items()},
            "min": {name: round(min(v), 4) for name, v in samples.items()},
            "max": {name: round(max(v), 4) for name, v in samples.items()}}
