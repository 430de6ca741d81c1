"""A nested sandbox (Codex's bubblewrap, `unshare -U`) cannot start in the jail: seccomp denies the
namespace syscalls. `shelljail log` says so in one line per session, however many calls were denied."""

import json
from pathlib import Path

import pytest
from conftest import Jail

from jail.seccomp.notify import NESTED_SANDBOX, available

pytestmark = [pytest.mark.jail,
              pytest.mark.skipif(not available(), reason="the kernel lacks seccomp user notification (Linux 5.0+)")]

# Three ways in: unshare(1) twice (unshare(2) with CLONE_NEWUSER), unshare(2) from Python, and clone with
# CLONE_NEWUSER|SIGCHLD (what bubblewrap does), each refused with EPERM.
SCRIPT = """
unshare -Ur true; echo "unshare $?"
unshare -Ur true; echo "unshare $?"
python3 -c 'import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print("unshare(2)", libc.unshare(0x10000000 | 0x20000), ctypes.get_errno())'
python3 -c 'import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print("clone", libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0), ctypes.get_errno())'
"""


def _events(state: Path) -> list[dict]:
    (session,) = list((state / "shelljail" / "sessions").iterdir())
    return [json.loads(line) for line in (session / "audit.jsonl").read_text().splitlines()]


def test_a_nested_sandbox_is_one_line_in_the_log(jail: Jail, tmp_path: Path) -> None:
    env = jail.env(XDG_STATE_HOME=str(tmp_path / "state"))
    result = jail.sh(SCRIPT, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:4] == ["unshare 1", "unshare 1", "unshare(2) -1 1", "clone -1 1"]
    events = _events(tmp_path / "state")
    nested = [e for e in events if e["event"] == "nested-sandbox"]
    assert [(e["syscall"], e["message"]) for e in nested] == [("unshare", NESTED_SANDBOX)]
    (summary,) = [e for e in events if e["event"] == "seccomp-denials"]
    assert summary["counts"]["unshare"] == 3 and summary["counts"]["clone"] == 1

    shown = jail.cli("log", env={**env, "COLUMNS": "300"})  # rich wraps at 80 columns off a terminal
    assert shown.returncode == 0, shown.stderr
    lines = [line for line in shown.stdout.splitlines() if NESTED_SANDBOX in line]
    assert len(lines) == 1 and "unshare by unshare" in lines[0]


def test_a_plain_fork_is_no_nested_sandbox(jail: Jail, tmp_path: Path) -> None:
    """clone without namespace flags is allowed, and a denied syscall of another group says nothing of
    namespaces."""
    env = jail.env(XDG_STATE_HOME=str(tmp_path / "state"))
    script = ("python3 -c 'import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
              "libc.syscall(250, 0, 0, 0, 0, 0)\npid = os.fork()\nos._exit(0) if pid == 0 else os.waitpid(pid, 0)'")
    result = jail.sh(script, env=env)
    assert result.returncode == 0, result.stderr
    events = _events(tmp_path / "state")
    assert [e["syscall"] for e in events if e["event"] == "seccomp-denial"] == ["keyctl"]
    assert not [e for e in events if e["event"] == "nested-sandbox"]
    assert NESTED_SANDBOX not in jail.cli("log", env=env).stdout
