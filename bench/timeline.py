"""The cost of the workspace timeline: a checkpoint per agent command, its disk, and undo.

1. The checkpoint itself (the supervisor's work before a command runs), on a workspace of 10,000
   and of 100,000 files (1 KiB each, 100 per directory) with 10 files changed per command: the median
   over the commands, and the full walk (taken every 16th point, and when inotify cannot say what
   changed) for comparison. Disk: the store's bytes per command against the bytes of the changed
   files (a content-addressed store keeps whole files).
2. End to end: one session of 50 commands (each `bash -c` editing 10 files of the 10,000) in the
   jail, with the timeline on and off (`timeline.enabled = false`), interleaved, and sessions of one
   command each way: their difference is the first point (the first command waits for it), the rest
   divided by 49 the cost per further command; then `shelljail undo --to 1` of the 50-command session.
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

from common import ROOT, arguments, header, save, spread

sys.path.insert(0, str(ROOT))
from jail.recovery.timeline import FULL_EVERY, Timeline  # noqa: E402

SHELLJAIL = str(Path(sys.executable).parent / "shelljail")
CHANGED = 10
COMMANDS = 50
DRIVER = """\
import subprocess, sys
for line in sys.argv[1:]:
    subprocess.run(["/bin/bash", "-c", line], check=True)
"""


def build(workspace: Path, files: int) -> None:
    for index in range(files):
        directory = workspace / f"d{index // 100:04d}"
        if index % 100 == 0:
            directory.mkdir(parents=True)
        (directory / f"f{index}.txt").write_bytes(f"line {index} ".encode() * 80 + os.urandom(64).hex().encode())


def checkpoints(files: int, commands: int) -> dict[str, float]:
    base = Path(tempfile.mkdtemp(prefix="shelljail-bench-timeline-"))
    try:
        workspace = base / "ws"
        build(workspace, files)
        timeline = Timeline(str(base / "timeline"), str(workspace), (), 1 << 40, 64 << 20)
        started = time.perf_counter()
        timeline.start()
        timeline.baseline.join()
        first = time.perf_counter() - started
        fast, full, changed_bytes = [], [], 0
        store_before = _store_bytes(base / "timeline")
        for command in range(commands):
            for index in range(CHANGED):
                path = workspace / f"d{index:04d}" / f"f{index * 100 + command % 100}.txt"
                with open(path, "ab") as f:
                    f.write(b"edited\n")
                changed_bytes += path.stat().st_size
            started = time.perf_counter()
            timeline.checkpoint(f"command {command}")
            elapsed = time.perf_counter() - started
            (full if timeline.points % FULL_EVERY == 1 else fast).append(elapsed)
        stored = _store_bytes(base / "timeline") - store_before
        timeline.finish()
        return {"first point (s)": round(first, 3), "checkpoint median (ms)": round(statistics.median(fast) * 1000, 2),
                "full walk median (ms)": round(statistics.median(full) * 1000, 2) if full else None,
                "store bytes / changed bytes": round(stored / changed_bytes, 3)}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _store_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def end_to_end(runs: int) -> dict[str, object]:
    base = Path(tempfile.mkdtemp(prefix="shelljail-bench-timeline-run-"))
    try:
        workspace, state = base / "ws", base / "state"
        build(workspace, 10_000)
        state.mkdir()
        env = {**os.environ, "XDG_STATE_HOME": str(state)}
        off = base / "no-timeline.toml"
        off.write_text('extends = "coding-agent"\n[timeline]\nenabled = false\n')
        lines = [" && ".join(f"echo edit >> d{i:04d}/f{i * 100 + c % 100}.txt" for i in range(CHANGED))
                 for c in range(COMMANDS)]
        samples: dict[str, list[float]] = {"timeline on": [], "timeline off": [], "one command, on": [],
                                           "one command, off": [], "undo --to 1": []}
        runs_of = (("one command, on", "coding-agent", lines[:1]), ("one command, off", str(off), lines[:1]),
                   ("timeline on", "coding-agent", lines), ("timeline off", str(off), lines))
        for _ in range(runs):
            for name, profile, commands in runs_of:
                started = time.perf_counter()
                subprocess.run([SHELLJAIL, "run", "-p", profile, "-w", str(workspace), "--ask", "deny", "--",
                                "/usr/bin/python3", "-c", DRIVER, *commands], check=True, env=env,
                               stdin=subprocess.DEVNULL, cwd=workspace)
                samples[name].append(time.perf_counter() - started)
                if name == "timeline on":
                    started = time.perf_counter()
                    subprocess.run([SHELLJAIL, "undo", "--to", "1"], check=True, env=env, cwd=workspace,
                                   stdout=subprocess.DEVNULL)
                    samples["undo --to 1"].append(time.perf_counter() - started)
        m = {name: statistics.median(values) for name, values in samples.items()}
        fixed = m["one command, on"] - m["one command, off"]  # the first point, which the first command waits for
        return {**spread(samples), "session start, on - off (s)": round(fixed, 3),
                "per further command, on - off (ms)":
                round(((m["timeline on"] - m["timeline off"]) - fixed) / (COMMANDS - 1) * 1000, 2)}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> int:
    args = arguments(__doc__, "timeline", 3)
    small = checkpoints(10_000, 40)
    large = checkpoints(100_000, 20)
    run = end_to_end(args.runs)
    results = {**header("timeline", args.runs), "10,000 files": small, "100,000 files": large,
               f"session of {COMMANDS} commands on 10,000 files": run}
    print(f"checkpoint, {CHANGED} files changed per command: 10,000 files {small['checkpoint median (ms)']} ms "
          f"(full walk {small['full walk median (ms)']} ms), 100,000 files {large['checkpoint median (ms)']} ms "
          f"(full walk {large['full walk median (ms)']} ms); store/changed bytes "
          f"{small['store bytes / changed bytes']}")
    print(f"{COMMANDS} commands in the jail: on {run['seconds']['timeline on']} s, off {run['seconds']['timeline off']}"
          f" s: the first point {run['session start, on - off (s)']} s, then "
          f"{run['per further command, on - off (ms)']} ms per command; undo to the first point "
          f"{run['seconds']['undo --to 1']} s")
    save(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
