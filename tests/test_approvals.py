"""Approvals: an `ask` waits for a person, who answers from another process, or not at all."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ASKS, Jail

ASKING = "truncate -s 0 data.txt; echo finished=$?"  # truncate is an `ask` in the default rules


@pytest.fixture
def jail(tmp_path: Path) -> Jail:
    jail = Jail(tmp_path / "jail")
    (jail.workspace / "data.txt").write_text("precious\n")
    return jail


def start(jail: Jail, state: Path, *options: str) -> subprocess.Popen:
    # A new session: no controlling terminal, so nobody is asked on a tty by accident.
    return subprocess.Popen([sys.executable, "-m", "jail.cli", "run", "-p", ASKS, "-w", str(jail.workspace), *options,
                             "--",
                             "/bin/bash", "-c", ASKING], env=jail.env(XDG_STATE_HOME=str(state)),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def cli(jail: Jail, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jail.cli", *args], env=jail.env(XDG_STATE_HOME=str(state)),
                          capture_output=True, text=True, timeout=30)


def waiting_id(jail: Jail, state: Path) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listed = cli(jail, state, "approvals").stdout.split()
        if listed and listed[0] != "no":
            return listed[0]
        time.sleep(0.1)
    raise AssertionError("no question appeared")


def events(state: Path) -> list[dict]:
    (log,) = list((state / "shelljail" / "sessions").glob("*/audit.jsonl"))
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_an_approval_from_another_process_unblocks_the_command(jail: Jail, tmp_path: Path) -> None:
    state = tmp_path / "state"
    run = start(jail, state)
    request = waiting_id(jail, state)
    assert (jail.workspace / "data.txt").read_text() == "precious\n"  # nothing ran while waiting
    listing = cli(jail, state, "approvals").stdout  # the person sees what would change: a diff
    assert f"--- a{jail.workspace}/data.txt" in listing and "-precious" in listing
    assert cli(jail, state, "approve", request).returncode == 0
    out, err = run.communicate(timeout=30)
    assert run.returncode == 0, err
    assert "finished=0" in out and (jail.workspace / "data.txt").read_text() == ""
    kinds = [e["event"] for e in events(state)]
    assert kinds == ["session-start", "approval-request", "approval", "decision", "exit"]
    approval = events(state)[2]
    assert approval["answer"] == "once" and "with shelljail" in approval["by"]


def test_a_denial_from_another_process_gives_126(jail: Jail, tmp_path: Path) -> None:
    state = tmp_path / "state"
    run = start(jail, state)
    request_id = waiting_id(jail, state)
    assert cli(jail, state, "deny", request_id).returncode == 0
    _, err = run.communicate(timeout=30)
    assert run.returncode == 126
    waiting, reason, denied = err.splitlines()[:3]  # no terminal: the caller is told who can answer, and how
    assert waiting == "shelljail: waiting for a person: truncate -s 0 data.txt; echo finished=$?"
    assert f"shelljail approve {request_id}" in reason and "--ask deny" in reason
    assert denied.startswith("shelljail: denied: truncate destroys file contents") and "denied by" in denied
    assert (jail.workspace / "data.txt").read_text() == "precious\n"


def test_an_unanswered_question_is_denied_after_the_timeout(jail: Jail, tmp_path: Path) -> None:
    state = tmp_path / "state"
    profile = tmp_path / "p.toml"
    profile.write_text(f'extends = "{ASKS}"\n[interposer]\nask_timeout = 1\n')
    started = time.monotonic()
    run = start(jail, state, "-p", str(profile))
    _, err = run.communicate(timeout=30)
    assert run.returncode == 126 and "no person answered within 1 s" in err
    assert time.monotonic() - started < 20


def test_ask_deny_refuses_at_once(jail: Jail, tmp_path: Path) -> None:
    state = tmp_path / "state"
    run = start(jail, state, "--ask", "deny")
    _, err = run.communicate(timeout=30)
    assert run.returncode == 126 and "--ask deny" in err


def test_unknown_request_ids_are_refused(jail: Jail, tmp_path: Path) -> None:
    result = cli(jail, tmp_path / "state", "approve", "nope")
    assert result.returncode == 1 and "no pending request" in result.stderr


def test_previews_show_the_new_content_where_it_is_known(tmp_path: Path) -> None:
    from interposer.preview import preview, reader

    (tmp_path / "hooks").mkdir()
    (tmp_path / "hooks" / "pre-commit").write_text("#!/bin/sh\nexit 0\n")
    cwd = str(tmp_path)
    read = reader("")
    text = preview("echo 'make test' >> hooks/pre-commit", cwd, {}, read)
    assert f"--- a{tmp_path}/hooks/pre-commit" in text and "+make test" in text and " exit 0" in text
    text = preview("cat > notes.md <<'EOF'\n# Plan\nstep one\nEOF", cwd, {}, read)
    assert "--- /dev/null" in text and "+# Plan" in text and "+step one" in text
    text = preview("curl -o hooks/pre-commit https://x.test/h", cwd, {}, read)
    assert text == ""  # a download's target is not a redirect: nothing claimed
    text = preview("./gen.sh > hooks/pre-commit", cwd, {}, read)
    assert text == f"{tmp_path}/hooks/pre-commit: changed (its new content is only known when it runs)\n"


def test_the_person_at_the_terminal_answers_with_the_preview_in_view(jail: Jail, tmp_path: Path) -> None:
    """Through a pty that is the run's controlling terminal (the agent's stdin is not asked)."""
    from conftest import answer_on_a_terminal

    argv = [sys.executable, "-m", "jail.cli", "run", "-p", ASKS, "-w", str(jail.workspace), "--", "/bin/bash", "-c",
            ASKING]
    status, seen = answer_on_a_terminal(argv, jail.env(XDG_STATE_HOME=str(tmp_path / "state")), b"[d]eny?", b"o\n")
    assert b"-precious" in seen and b"shelljail: approve?" in seen  # the diff, then the question
    assert status == 0 and b"finished=0" in seen, seen.decode(errors="replace")
    assert (jail.workspace / "data.txt").read_text() == ""


def _on_a_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, int]:
    import pty

    pid, fd = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, env)
    return pid, fd


def _ended(pid: int, seconds: float = 20) -> int:
    """The run's wait status; killed (status -9) if it has not ended within `seconds` (a jail left stopped)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.05)
    os.kill(pid, 9)
    return os.waitpid(pid, 0)[1]


def _read_until(fd: int, wanted: bytes, seen: bytes = b"", seconds: float = 60) -> bytes:
    import select

    deadline = time.monotonic() + seconds
    while wanted not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_an_answer_from_elsewhere_closes_the_question_on_the_terminal(jail: Jail, tmp_path: Path) -> None:
    """The jail is paused while the terminal is asked: approved with `shelljail approve` instead, the
    terminal stops waiting for a line, the jail goes on, and nobody has to press Enter."""
    state = tmp_path / "state"
    argv = [sys.executable, "-m", "jail.cli", "run", "-p", ASKS, "-w", str(jail.workspace), "--", "/bin/bash", "-c",
            ASKING]
    pid, fd = _on_a_terminal(argv, jail.env(XDG_STATE_HOME=str(state)))
    try:
        seen = _read_until(fd, b"[d]eny? ")
        assert b"[d]eny? " in seen, seen
        assert cli(jail, state, "approve", waiting_id(jail, state)).returncode == 0
        seen = _read_until(fd, b"finished=0", seen)
    finally:
        status = _ended(pid)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert b"(answered elsewhere)" in seen and b"finished=0" in seen
    assert (jail.workspace / "data.txt").read_text() == ""


def test_an_unanswered_question_on_the_terminal_is_denied_and_the_jail_goes_on(jail: Jail, tmp_path: Path) -> None:
    state = tmp_path / "state"
    profile = tmp_path / "p.toml"
    profile.write_text(f'extends = "{ASKS}"\n[interposer]\nask_timeout = 2\n')
    argv = [sys.executable, "-m", "jail.cli", "run", "-p", str(profile), "-w", str(jail.workspace), "--",
            "/bin/bash", "-c", ASKING]
    pid, fd = _on_a_terminal(argv, jail.env(XDG_STATE_HOME=str(state)))
    try:
        seen = _read_until(fd, b"no person answered")  # then the end: the jail was not left stopped
        seen = _read_until(fd, b"never printed", seen, seconds=30)
    finally:
        status = _ended(pid)
        os.close(fd)
    assert b"no person answered within 2 s" in seen, seen
    assert os.waitstatus_to_exitcode(status) == 126
    assert (jail.workspace / "data.txt").read_text() == "precious\n"
