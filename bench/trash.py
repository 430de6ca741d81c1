"""The cost of the trash: `rm -rf` of a tree of small files, moved aside against really deleted.

Both runs are the same jail and the same shell line (`rm -rf tree`, judged by
the interposer); one with the default profile (the trash: the supervisor
measures the tree, for the cap, and renames it), one with `trash.enabled =
false` (the real rm unlinks every file). Interleaved, median of N runs, the
tree rebuilt before each. Also timed: `trash restore` of the whole tree.
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
FILES = 50_000


def build(tree: Path) -> None:
    for index in range(FILES):
        directory = tree / f"d{index // 500:03d}"
        if index % 500 == 0:
            directory.mkdir(parents=True)
        (directory / f"f{index}.rs").write_bytes(b"fn x() {}\n")


def main() -> int:
    args = arguments(__doc__, "trash", 5)
    workspace = Path(tempfile.mkdtemp(prefix="shelljail-bench-"))
    state = Path(tempfile.mkdtemp(prefix="shelljail-bench-state-", dir=workspace.parent))
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    no_trash = state / "no-trash.toml"
    no_trash.write_text('extends = "coding-agent"\n[trash]\nenabled = false\n')
    samples: dict[str, list[float]] = {"trash": [], "real rm": [], "restore": []}
    for _ in range(args.runs):
        for name, profile in (("trash", "coding-agent"), ("real rm", str(no_trash))):
            build(workspace / "tree")
            started = time.perf_counter()
            subprocess.run([SHELLJAIL, "run", "-p", profile, "-w", str(workspace), "--ask", "deny", "--",
                            "/bin/sh", "-c", "rm -rf tree"], check=True, env=env, stdin=subprocess.DEVNULL)
            samples[name].append(time.perf_counter() - started)
            assert not (workspace / "tree").exists()
            if name == "trash":
                started = time.perf_counter()
                subprocess.run([SHELLJAIL, "trash", "restore", str(workspace / "tree")], check=True, env=env,
                               stdout=subprocess.DEVNULL)
                samples["restore"].append(time.perf_counter() - started)
                shutil.rmtree(workspace / "tree")
    medians = {name: statistics.median(values) for name, values in samples.items()}
    results = {**header("trash", args.runs), "files": FILES,
               **spread(samples),
               "trash / real rm": round(medians["trash"] / medians["real rm"], 3)}
    shutil.rmtree(workspace, ignore_errors=True)
    shutil.rmtree(state, ignore_errors=True)
    print(f"rm -rf of {FILES} files in the jail, median of {args.runs} interleaved runs (jail start-up included)")
    print(f"  to the trash  {medians['trash']:.3f} s   really deleted  {medians['real rm']:.3f} s   "
          f"ratio x{results['trash / real rm']:.2f}   trash restore {medians['restore']:.3f} s")
    save(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
