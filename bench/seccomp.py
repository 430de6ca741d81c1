"""The cost of the default seccomp filter (and Landlock) on syscall-heavy work inside the jail.

Workloads: `find` over most of /usr (getdents, stat), a Python start that imports
many modules, and a loop of three million getppid() calls. Each runs in the
jail with the default policy and with `seccomp.enabled = false` (and with
Landlock off too), interleaved, median of N runs; the ratio is the cost.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
from common import arguments, header, save  # noqa: E402

SHELLJAIL = str(Path(sys.executable).parent / "shelljail")
WORKLOADS = {
    "find /usr -type f, x5": ["/bin/sh", "-c", "for i in 1 2 3 4 5; do find /usr/lib /usr/include /usr/bin "
                                                "/usr/share/doc /usr/share/locale -type f; done"],
    "python imports, x5": ["/bin/sh", "-c", "for i in 1 2 3 4 5; do /usr/bin/python3 -I -c 'import json, "
                                            "email.parser, http.client, asyncio, unittest, xml.dom.minidom, sqlite3, "
                                            "decimal, argparse, logging'; done"],
    "3M getppid (worst case)": ["/usr/bin/python3", "-c", "import os\nfor _ in range(3000000): os.getppid()"],
}


def main() -> int:
    args = arguments(__doc__, "seccomp", 10)
    workspace = tempfile.mkdtemp(prefix="shelljail-bench-")
    profiles = {"default": "coding-agent"}
    for name, text in (("seccomp off", "[seccomp]\nenabled = false\n"),
                       ("seccomp and landlock off", "[seccomp]\nenabled = false\n[landlock]\nmode = \"off\"\n")):
        path = Path(workspace) / f"{name.replace(' ', '-')}.toml"
        path.write_text(f'extends = "coding-agent"\n{text}')
        profiles[name] = str(path)
    results: dict = {**header("seccomp", args.runs), "workloads": {}}
    for workload, command in WORKLOADS.items():
        samples: dict[str, list[float]] = {name: [] for name in profiles}
        for _ in range(args.runs):
            for name, profile in profiles.items():
                started = time.perf_counter()
                subprocess.run([SHELLJAIL, "run", "-p", profile, "-w", workspace, "--interposer", "off", "--",
                                *command], check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
                samples[name].append(time.perf_counter() - started)
        medians = {name: statistics.median(values) for name, values in samples.items()}
        results["workloads"][workload] = {
            "seconds": {name: round(value, 4) for name, value in medians.items()},
            "default / seccomp off": round(medians["default"] / medians["seccomp off"], 3),
            "default / both off": round(medians["default"] / medians["seccomp and landlock off"], 3),
        }
    shutil.rmtree(workspace, ignore_errors=True)
    print(f"seccomp and landlock cost, median of {args.runs} interleaved runs")
    for workload, figures in results["workloads"].items():
        print(f"  {workload:24} default {figures['seconds']['default']:.3f} s, "
              f"x{figures['default / seccomp off']:.3f} of seccomp off, "
              f"x{figures['default / both off']:.3f} of both off")
    save(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
