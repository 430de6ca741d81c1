"""A host off the network allow-list, asked once per session: a real jail, its proxy, a server on loopback.

The person answers from another process (`shelljail approve` / `deny`), as in tests/test_approvals.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Jail
from model_server import echo_server

pytestmark = pytest.mark.jail

PROBE = """\
import subprocess, urllib.error, urllib.request
for path in ("/a", "/b"):
    r = subprocess.run(["/bin/bash", "-c", "curl -sS -m 20 http://other.test:PORT" + path], capture_output=True,
                       text=True)
    print(r.returncode, r.stdout.strip() or r.stderr.strip().replace(chr(10), " "))
try:  # not a command line: only the proxy decides, with what this session was granted
    print("urllib", urllib.request.urlopen("http://other.test:PORT/c", timeout=20).status)
except urllib.error.HTTPError as e:
    print("urllib", e.code)
"""


@pytest.fixture
def port() -> Iterator[int]:
    with echo_server() as number:
        yield number


def _start(jail: Jail, state: Path, port: int, ask: str) -> subprocess.Popen:
    if not shutil.which("curl"):
        pytest.skip("curl is not installed on this machine")
    profile = jail.root / "net.toml"
    profile.write_text('extends = "coding-agent"\n[network]\nmode = "proxy"\nallow_addresses = ["127.0.0.1/32"]\n'
                       '[network.hosts]\n"other.test" = "127.0.0.1"\n')
    (jail.workspace / "probe.py").write_text(PROBE.replace("PORT", str(port)))
    # A new session: no controlling terminal, so the question is answered only from another process.
    return subprocess.Popen([sys.executable, "-m", "jail.cli", "run", "-p", str(profile), "-w", str(jail.workspace),
                             "--ask", ask, "--", "/usr/bin/python3", "probe.py"],
                            env=jail.env(XDG_STATE_HOME=str(state)), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _cli(jail: Jail, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jail.cli", *args], env=jail.env(XDG_STATE_HOME=str(state)),
                          capture_output=True, text=True, timeout=30)


def _answer(jail: Jail, state: Path, verb: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = _cli(jail, state, "approvals").stdout
        if listed.split() and listed.split()[0] != "no":
            assert _cli(jail, state, verb, listed.split()[0]).returncode == 0
            return listed
        time.sleep(0.1)
    raise AssertionError("no question appeared")


def _events(state: Path, kind: str) -> list[dict]:
    (log,) = list((state / "shelljail" / "sessions").glob("*/audit.jsonl"))
    return [e for e in map(json.loads, log.read_text().splitlines()) if e["event"] == kind]


def test_a_yes_is_asked_once_and_lets_the_session_reach_the_host(tmp_path: Path, port: int) -> None:
    jail, state = Jail(tmp_path / "jail"), tmp_path / "state"
    run = _start(jail, state, port, "tty")
    listing = _answer(jail, state, "approve")
    assert f"let this session reach other.test:{port}?" in listing
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("0 ") and json.loads(lines[0][2:])["path"] == "/a", lines
    assert lines[1].startswith("0 ") and json.loads(lines[1][2:])["path"] == "/b", lines  # not asked again
    assert lines[2] == "urllib 200"  # the proxy lets the host through for the rest of the run
    assert len(_events(state, "approval-request")) == 1


def test_a_no_is_remembered_and_denied_without_asking_again(tmp_path: Path, port: int) -> None:
    jail, state = Jail(tmp_path / "jail"), tmp_path / "state"
    run = _start(jail, state, port, "tty")
    _answer(jail, state, "deny")
    out, err = run.communicate(timeout=60)
    lines = out.splitlines()
    assert lines[0].startswith("126 shelljail: denied: ") and f"other.test:{port}" in lines[0], lines
    assert lines[1].startswith("126 ") and "denied by " in lines[1] and "stays refused for this session" in lines[1]
    assert f"--allow other.test:{port}" in lines[1]
    assert lines[2] == "urllib 403"
    assert len(_events(state, "approval-request")) == 1


def test_headless_the_host_stays_denied_naming_the_run_flag(tmp_path: Path, port: int) -> None:
    jail, state = Jail(tmp_path / "jail"), tmp_path / "state"
    run = _start(jail, state, port, "deny")
    out, err = run.communicate(timeout=60)
    lines = out.splitlines()
    assert lines[0].startswith("126 ") and f"run with --allow other.test:{port} " in lines[0], lines
    assert lines[1].startswith("126 ") and lines[2] == "urllib 403", lines
    assert not _events(state, "approval-request")
