"""Overlay workspaces: start-up against a bound workspace, and `diff` of a session that changed 100 files
in a 20,000-file workspace (the issue's target: under a second).

Start-up: `shelljail run -- /bin/true` with `--workspace-mode overlay` and `read-write`, interleaved,
median of N. Diff: one session changes 100 files (and adds and deletes a few), then `shelljail diff`
(with the unified text) and `shelljail diff --names` are timed N times each.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import arguments, header, save, spread

SHELLJAIL = str(Path(sys.executable).parent / "shelljail")
FILES = 20_000


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    args = arguments(__doc__, "overlay", 10)
    workspace = Path(tempfile.mkdtemp(prefix="shelljail-bench-"))
    state = Path(tempfile.mkdtemp(prefix="shelljail-bench-state-"))
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    for index in range(FILES):
        directory = workspace / f"pkg{index // 200:03d}"
        if index % 200 == 0:
            directory.mkdir()
        (directory / f"module{index}.py").write_text(f"VALUE = {index}\n" * 20)
    run = [SHELLJAIL, "run", "-w", str(workspace), "--ask", "deny"]
    startup: dict[str, list[float]] = {"overlay": [], "read-write": []}
    for _ in range(args.runs):
        for mode in startup:
            startup[mode].append(timed([*run, "--workspace-mode", mode, "--", "/bin/true"], env))
    change = ("for i in $(seq 0 98); do d=pkg$(printf %03d $i); echo 'VALUE = -1' >> $d/module$((i * 200)).py; "
              "done; rm -r pkg099; echo new > added.txt")
    subprocess.run([*run, "--workspace-mode", "overlay", "--", "/bin/sh", "-c", change], check=True, env=env,
                   stdin=subprocess.DEVNULL)
    session = sorted(os.listdir(state / "shelljail" / "sessions"))[-1]
    diff = {"diff": [timed([SHELLJAIL, "diff", session], env) for _ in range(args.runs)],
            "diff --names": [timed([SHELLJAIL, "diff", "--names", session], env) for _ in range(args.runs)]}
    listed = subprocess.run([SHELLJAIL, "diff", "--names", session], capture_output=True, text=True, env=env).stdout
    medians = {name: statistics.median(v) for name, v in {**startup, **diff}.items()}
    results = {**header("overlay", args.runs), "files": FILES, "changes listed": len(listed.splitlines()),
               **spread({**startup, **diff}),
               "overlay / read-write start-up": round(medians["overlay"] / medians["read-write"], 3)}
    shutil.rmtree(workspace, ignore_errors=True)
    subprocess.run(["rm", "-rf", str(state)], check=False)
    print(f"overlay workspace of {FILES} files, median of {args.runs} runs")
    print(f"  start-up: overlay {medians['overlay'] * 1000:.1f} ms, read-write {medians['read-write'] * 1000:.1f} ms "
          f"(x{results['overlay / read-write start-up']:.2f})")
    print(f"  diff of {results['changes listed']} changes: {medians['diff'] * 1000:.0f} ms with the text, "
          f"{medians['diff --names'] * 1000:.0f} ms names only")
    save(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
