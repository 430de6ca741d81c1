"""What `shelljail run` has imported when it forks the jail (#27): the modules that only the timeline's
thread, a copied agent config or a help text need are not on the start-up path.

The real `run` of the real CLI, in a real jail; the test only records `sys.modules` at the first fork.
"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import Jail

# Imported after the fork or not at all by a plain run: each cost 2-15 ms before it (docs/results.md).
LATE = ("jail.kernel.inotify", "ctypes.util", "hashlib", "shutil", "bz2", "lzma", "subprocess", "tempfile", "ipaddress",
        "jail.policy.hostpatterns", "interposer.words", "interposer.programs.options")

RECORD = '''
import json, os, sys
real_fork, seen = os.fork, []
def fork():
    if not seen:
        seen.append(sorted(sys.modules))
        sys.stderr.write("MODULES " + json.dumps(seen[0]) + "\\n")
    return real_fork()
os.fork = fork
sys.argv = ["shelljail", *sys.argv[1:]]
from jail.cli import main
sys.exit(main())
'''


def test_a_run_forks_the_jail_before_the_timeline_and_digest_imports(jail: Jail) -> None:
    """A second run: the first fills the caches (profile, seccomp BPF), whose misses import more."""
    first = jail.cli("run", "-w", str(jail.workspace), "--", "/bin/true")
    assert first.returncode == 0, first.stderr
    result = subprocess.run([sys.executable, "-c", RECORD, "run", "-w", str(jail.workspace), "--", "/bin/true"],
                            capture_output=True, text=True, timeout=60, env=jail.env(), cwd=jail.workspace)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stderr.splitlines() if line.startswith("MODULES "))
    loaded = set(json.loads(line.removeprefix("MODULES ")))
    assert "jail.recovery.timeline" in loaded  # the interposed run's timeline is set up, only its imports wait
    assert [name for name in LATE if name in loaded] == []


def test_help_is_as_wide_as_columns_says(jail: Jail) -> None:
    """The formatter gets the width itself (argparse would import shutil for it): $COLUMNS still holds for
    the option help argparse wraps (the description and epilog are shown as written)."""
    for columns in (50, 120):
        result = jail.cli("run", "--help", env=jail.env(COLUMNS=str(columns)))
        assert result.returncode == 0, result.stderr
        wrapped = [len(line) for line in result.stdout.splitlines() if line.startswith(" " * 24) and "[" not in line]
        assert wrapped and max(wrapped) <= columns - 2 and max(wrapped) > columns - 20, (columns, max(wrapped))
