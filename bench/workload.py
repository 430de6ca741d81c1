"""Workload overhead: real work inside the jail against the same work outside it.

Workloads: `python -m compileall -f` over a copy of a large package (the standard library's
`email`, `json`, `xml`, `asyncio`, `unittest` and `http`, every file compiled each run), and `git status`
then `git log` on a repository of 10,000 files. Inside: `shelljail run` with the default profile
(everything on), its start-up included; outside: the same command line. Interleaved, median of N.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from common import arguments, header, save, spread

SHELLJAIL = str(Path(sys.executable).parent / "shelljail")
PACKAGES = ("email", "json", "xml", "asyncio", "unittest", "http")


def prepare(workspace: Path) -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in PACKAGES:
        shutil.copytree(stdlib / name, workspace / "lib" / name, ignore=shutil.ignore_patterns("__pycache__"))
    repo = workspace / "repo"
    for index in range(10_000):
        directory = repo / f"d{index // 250:02d}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{index}.txt").write_text(f"{index}\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workspace), "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@e",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@e"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "many files"]):
        subprocess.run(["git", *args], cwd=repo, check=True, env=env, capture_output=True)


WORKLOADS = {
    "compileall (6 stdlib packages)": "/usr/bin/python3 -m compileall -q -f lib",  # -f: every file, every run
    "git status + log (10,000 files)": "cd repo && git status --porcelain && git log --oneline -n 50",
}


def main() -> int:
    args = arguments(__doc__, "workload", 7)
    workspace = Path(tempfile.mkdtemp(prefix="shelljail-bench-"))
    home = Path(tempfile.mkdtemp(prefix="shelljail-bench-home-"))  # not the workspace: that is refused
    prepare(workspace)
    results = {**header("workload", args.runs), "workloads": {}}
    for name, line in WORKLOADS.items():
        samples: dict[str, list[float]] = {"outside": [], "jailed": [], "start-up": []}
        jail = [SHELLJAIL, "run", "-w", str(workspace), "--ask", "deny", "--"]
        commands = {"outside": ["/bin/sh", "-c", line], "jailed": [*jail, "/bin/sh", "-c", line],
                    "start-up": [*jail, "/bin/true"]}
        for _ in range(args.runs):
            for where, argv in commands.items():
                started = time.perf_counter()
                subprocess.run(argv, cwd=workspace, check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                               env={**os.environ, "HOME": str(home)})
                samples[where].append(time.perf_counter() - started)
        medians = {where: statistics.median(v) for where, v in samples.items()}
        results["workloads"][name] = {**spread(samples),
                                      "jailed / outside": round(medians["jailed"] / medians["outside"], 3),
                                      "jailed without start-up / outside": round(
                                          (medians["jailed"] - medians["start-up"]) / medians["outside"], 3)}
    subprocess.run(["rm", "-rf", str(workspace), str(home)], check=False)
    print(f"workload overhead, median of {args.runs} interleaved runs (jail start-up included)")
    for name, figures in results["workloads"].items():
        print(f"  {name:34} outside {figures['seconds']['outside']:.3f} s, jailed {figures['seconds']['jailed']:.3f} s,"
              f" x{figures['jailed / outside']:.3f}; without the start-up "
              f"x{figures['jailed without start-up / outside']:.3f}")
    save(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
