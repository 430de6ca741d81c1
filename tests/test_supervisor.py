"""The supervisor: the audit log, sessions, and the stop button, with real processes."""

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import Jail, sleepers

pytestmark = pytest.mark.jail


@pytest.fixture
def jail(tmp_path: Path) -> Jail:
    return Jail(tmp_path / "jail")


def env_for(jail: Jail, state: Path) -> dict[str, str]:
    return jail.env(XDG_STATE_HOME=str(state))


def events(state: Path) -> list[dict]:
    (session,) = list((state / "shelljail" / "sessions").iterdir())
    return [json.loads(line) for line in (session / "audit.jsonl").read_text().splitlines()]


def wait_for(condition, seconds: float = 10) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_decisions_appear_in_order_with_the_contract_fields(jail: Jail, tmp_path: Path) -> None:
    script = jail.workspace / "agent.py"
    script.write_text("import subprocess\nfor i in range(5):\n"
                      "    subprocess.run(['/bin/bash', '-c', f'echo step{i}'])\n"
                      "subprocess.run(['/bin/bash', '-c', 'rm -rf /etc'])\n")
    result = jail.run("/usr/bin/python3", "agent.py", interposer=True, env=env_for(jail, tmp_path / "state"))
    assert result.returncode == 0, result.stderr
    log = events(tmp_path / "state")
    assert [e["event"] for e in log][0] == "session-start" and log[-1]["event"] == "exit"
    decisions = [e for e in log if e["event"] == "decision"]
    assert [d["command"] for d in decisions] == [f"echo step{i}" for i in range(5)] + ["rm -rf /etc"]
    assert [d["decision"] for d in decisions] == ["allow"] * 5 + ["deny"]
    assert decisions[-1]["rule"] == "delete-outside-workspace" and decisions[-1]["reason"]
    for event in log:
        assert {"ts", "session", "event"} <= set(event)
    start = log[0]
    assert start["features"]["seccomp"] and start["features"]["interposer"]
    assert any(m["target"] == str(jail.workspace) for m in start["mounts"])
    assert log[-1]["status"] == 0 and "cpu_user" in log[-1] and "peak_memory_kib" in log[-1]


def test_a_jailed_process_cannot_forge_an_event(jail: Jail, tmp_path: Path) -> None:
    state = tmp_path / "state"
    forged = json.dumps({"ts": 0, "session": "x", "event": "decision", "decision": "allow", "command": "FORGED"})
    target = state / "shelljail" / "sessions"
    script = (f"for f in {target}/*/audit.jsonl {jail.home}/.local/state/shelljail/x ./audit.jsonl /tmp/audit.jsonl; "
              f"do mkdir -p $(dirname $f) 2>/dev/null; echo '{forged}' >> $f 2>/dev/null; done; true")
    result = jail.run("/bin/sh", "-c", script, env=env_for(jail, state))
    assert result.returncode == 0
    log = events(state)
    assert not [e for e in log if e.get("command") == "FORGED" or e.get("session") == "x"]
    assert [e["event"] for e in log] == ["session-start", "exit"]


def test_stop_kills_every_process_and_is_logged(jail: Jail, tmp_path: Path) -> None:
    state = tmp_path / "state"
    marker = str(uuid.uuid4().int % 10**6 + 4 * 10**6)
    run = subprocess.Popen([sys.executable, "-m", "jail.cli", "run", "-w", str(jail.workspace), "--interposer", "off",
                            "--", "/bin/sh", "-c", f"setsid sleep {marker} & sleep {marker}"],
                           env=env_for(jail, state), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: len(sleepers(marker)) == 2)
    stop = subprocess.run([sys.executable, "-m", "jail.cli", "stop"], env=env_for(jail, state),
                          capture_output=True, text=True, timeout=30)
    assert stop.returncode == 0, stop.stderr
    _, stderr = run.communicate(timeout=30)
    assert run.returncode == 137 and "stopped: shelljail stop by" in stderr
    assert wait_for(lambda: not sleepers(marker), 5)
    log = events(state)
    assert [e["event"] for e in log][-2:] == ["stop", "exit"] and log[-1]["status"] == 137
    (session,) = [json.loads(p.read_text()) for p in (state / "shelljail" / "sessions").glob("*/session.json")]
    assert session["state"] == "stopped" and session["exit_status"] == 137


def test_ctrl_c_on_run_is_the_stop_button(jail: Jail, tmp_path: Path) -> None:
    state = tmp_path / "state"
    marker = str(uuid.uuid4().int % 10**6 + 5 * 10**6)
    run = subprocess.Popen([sys.executable, "-m", "jail.cli", "run", "-w", str(jail.workspace), "--interposer", "off",
                            "--", "/bin/sh", "-c", f"trap '' INT; setsid sleep {marker} & sleep {marker}"],
                           env=env_for(jail, state), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: len(sleepers(marker)) == 2)
    run.send_signal(signal.SIGINT)
    run.communicate(timeout=30)
    assert run.returncode == 137
    assert wait_for(lambda: not sleepers(marker), 5)
    assert events(state)[-2]["by"] == "Ctrl-C on run"


def test_a_killed_supervisor_leaves_a_readable_log_and_no_jail(jail: Jail, tmp_path: Path) -> None:
    state = tmp_path / "state"
    marker = str(uuid.uuid4().int % 10**6 + 6 * 10**6)
    script = jail.workspace / "agent.py"
    script.write_text("import subprocess\nfor i in range(3):\n    subprocess.run(['/bin/bash', '-c', f'echo {i}'])\n"
                      f"subprocess.run(['sleep', '{marker}'])\n")
    run = subprocess.Popen([sys.executable, "-m", "jail.cli", "run", "-w", str(jail.workspace), "--",
                            "/usr/bin/python3", "agent.py"], env=env_for(jail, state), stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: len(sleepers(marker)) == 1)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert wait_for(lambda: not sleepers(marker), 5)
    log = events(state)
    assert [e.get("command") for e in log if e["event"] == "decision"] == ["echo 0", "echo 1", "echo 2"]
    env = env_for(jail, state)
    listed = subprocess.run([sys.executable, "-m", "jail.cli", "sessions", "--json"], env=env, capture_output=True,
                            text=True, timeout=30)
    assert json.loads(listed.stdout.splitlines()[0])["state"] == "lost"


def test_fifty_concurrent_decisions_are_all_logged(jail: Jail, tmp_path: Path) -> None:
    state = tmp_path / "state"
    script = jail.workspace / "burst.py"
    script.write_text("import subprocess\n"
                      "procs = [subprocess.Popen(['/bin/bash', '-c', f'echo burst{i}'], stdout=subprocess.DEVNULL)"
                      " for i in range(50)]\n"
                      "print(sum(p.wait() == 0 for p in procs))\n")
    result = jail.run("/usr/bin/python3", "burst.py", interposer=True, env=env_for(jail, state))
    assert result.stdout.strip() == "50", result.stderr
    commands = sorted(e["command"] for e in events(state) if e["event"] == "decision")
    assert commands == sorted(f"echo burst{i}" for i in range(50))


def test_log_renders_for_a_person_and_as_json(jail: Jail, tmp_path: Path) -> None:
    state = tmp_path / "state"
    jail.run("/bin/bash", "-c", "rm -rf /etc", interposer=True, env=env_for(jail, state))
    env = env_for(jail, state)
    person = subprocess.run([sys.executable, "-m", "jail.cli", "log"], env=env, capture_output=True, text=True)
    assert "deny" in person.stdout and "delete-outside-workspace" in person.stdout
    raw = subprocess.run([sys.executable, "-m", "jail.cli", "log", "--json"], env=env, capture_output=True, text=True)
    assert [json.loads(line)["event"] for line in raw.stdout.splitlines()] == ["session-start", "decision", "exit"]


def test_old_sessions_are_pruned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jail.supervisor import audit

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    import os

    alive = {"supervisor_pid": os.getpid(), "supervisor_start": audit.process_start(os.getpid())}
    lost = {"supervisor_pid": 2 ** 22 + 7, "supervisor_start": 1}  # no such process
    for index in range(6):
        log = audit.AuditLog(session=f"2026010{index}-000000-aaaaaa")
        if index == 0:
            log.state(state="running", **alive)
        elif index == 1:
            log.state(state="running", **lost)
        elif index == 2:
            log.state(state="exited", overlay="pending")
        else:
            log.state(state="exited")
        log.close()
    audit.prune(keep=2)
    left = sorted(p.name for p in (tmp_path / "shelljail" / "sessions").iterdir())
    # Kept: the running one, the overlay not yet reviewed, and the newest two. The lost one goes.
    assert left == ["20260100-000000-aaaaaa", "20260102-000000-aaaaaa", "20260104-000000-aaaaaa",
                    "20260105-000000-aaaaaa"]


def test_a_run_prunes_the_oldest_ended_session_before_it_ends(jail: Jail, tmp_path: Path) -> None:
    """A real run with KEEP_SESSIONS ended sessions already kept: the oldest is gone when `run` returns (the
    pruning runs after the jail's fork, and the run waits for it); the newer ones and the run's own stay."""
    from jail.supervisor.audit import KEEP_SESSIONS, STATE_NAME

    sessions = tmp_path / "state" / "shelljail" / "sessions"
    for index in range(KEEP_SESSIONS):
        old = sessions / f"2000{index:04d}-000000-aaaaaa"
        (old / "timeline").mkdir(parents=True)
        (old / STATE_NAME).write_text('{"state": "exited"}')
        (old / "timeline" / "points.jsonl").write_text("{}\n")
    result = jail.cli("run", "-w", str(jail.workspace), "--", "/bin/true", env=env_for(jail, tmp_path / "state"))
    assert result.returncode == 0, result.stderr
    left = sorted(p.name for p in sessions.iterdir())
    assert len(left) == KEEP_SESSIONS and left[0] == "20000001-000000-aaaaaa"
    assert not left[-1].startswith("2000")  # the run's own session


def test_seccomp_denials_are_counted_in_the_log(jail: Jail, tmp_path: Path) -> None:
    state = tmp_path / "state"
    script = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
              "for _ in range(3): libc.syscall(250, 0, 0, 0, 0, 0)  # keyctl\n"
              "libc.syscall(272, 0x10000000)  # unshare(CLONE_NEWUSER)\n"
              "print(ctypes.get_errno())\n")
    (jail.workspace / "deny.py").write_text(script)
    result = jail.run("/usr/bin/python3", "deny.py", env=env_for(jail, state))
    assert result.stdout.strip() == "1"  # the program still sees EPERM
    log = events(state)
    first = [e["syscall"] for e in log if e["event"] == "seccomp-denial"]
    assert first == ["keyctl", "unshare"]
    (summary,) = [e for e in log if e["event"] == "seccomp-denials"]
    assert summary["counts"] == {"keyctl": 3, "unshare": 1}


def test_a_limit_hit_is_logged(jail: Jail, tmp_path: Path) -> None:
    state = tmp_path / "state"
    profile = tmp_path / "p.toml"
    profile.write_text('extends = "base"\n[limits]\ncpu_seconds = 1\n')
    result = jail.run("/usr/bin/python3", "-c", "while True: pass", options=("-p", str(profile)),
                      env=env_for(jail, state))
    assert result.returncode == 128 + signal.SIGXCPU
    (limit,) = [e for e in events(state) if e["event"] == "limit"]
    assert limit["limit"] == "cpu_seconds" and limit["signal"] == "SIGXCPU"


def test_output_is_capped_with_a_marker(jail: Jail, tmp_path: Path) -> None:
    state = tmp_path / "state"
    profile = tmp_path / "p.toml"
    profile.write_text('extends = "base"\n[limits]\noutput_bytes = "100k"\n')
    result = subprocess.run([sys.executable, "-m", "jail.cli", "run", "-p", str(profile), "-w", str(jail.workspace),
                             "--interposer", "off", "--", "/bin/sh", "-c",
                             "head -c 5000000 /dev/zero | tr '\\0' x; echo tail >&2; echo done=$? >&2"],
                            env=env_for(jail, state), capture_output=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.count(b"x") + result.stderr.count(b"x") <= 100 * 1024
    assert b"[shelljail: output truncated after 102400 bytes" in result.stdout
    assert b"done=0" not in result.stderr  # over the cap: discarded, and the command was not blocked
    (limit,) = [e for e in events(state) if e["event"] == "limit"]
    assert limit["limit"] == "output_bytes"


def test_output_under_the_cap_is_untouched(jail: Jail, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "jail.cli", "run", "-w", str(jail.workspace), "--interposer",
                             "off", "--", "/bin/sh", "-c", "seq 1 20000; echo err >&2"],
                            env=env_for(jail, tmp_path / "state"), capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == [str(i) for i in range(1, 20001)] and result.stderr == "err\n"


def test_dry_run_runs_reads_and_reports_the_rest(jail: Jail, tmp_path: Path) -> None:
    state = tmp_path / "state"
    (jail.workspace / "keep.txt").write_text("keep\n")
    (jail.workspace / "agent.py").write_text(
        "import subprocess\n"
        "for line in ['cat keep.txt', 'rm -f keep.txt', 'echo new > made.txt', 'git push --force']:\n"
        "    r = subprocess.run(['/bin/bash', '-c', line], capture_output=True, text=True)\n"
        "    print(r.returncode, (r.stdout + r.stderr).strip())\n"
        "open('direct.txt', 'w')\n")
    result = subprocess.run([sys.executable, "-m", "jail.cli", "run", "--dry-run", "-w", str(jail.workspace), "--",
                             "/usr/bin/python3", "agent.py"], env=env_for(jail, state), capture_output=True,
                            text=True, timeout=60)
    lines = result.stdout.splitlines()
    assert lines[0] == "0 keep"
    assert lines[1].startswith("126 shelljail: dry run: would run rm; delete ") and "keep.txt" in lines[1]
    assert lines[2].startswith("126 shelljail: dry run: would run echo; write ") and "made.txt" in lines[2]
    assert lines[3].startswith("126 shelljail: dry run: would run git (rewrite, rule git-push-force)")
    assert "Read-only file system" in result.stderr  # even the agent's own writes: the workspace is read-only
    assert (jail.workspace / "keep.txt").exists() and not (jail.workspace / "made.txt").exists()
    reports = [e.get("dry_run") for e in events(state) if e["event"] == "decision"]
    assert reports[0] == "ran: it only reads" and all(r.startswith("would") for r in reports[1:])


def test_an_unwritable_state_directory_refuses_the_run_clearly(nobody_jail: Jail) -> None:
    locked = nobody_jail.root / "locked"
    locked.mkdir(mode=0o555)
    result = nobody_jail.cli("run", "-w", str(nobody_jail.workspace), "--", "true",
                             env=nobody_jail.env(XDG_STATE_HOME=str(locked / "state")))
    assert result.returncode == 125
    assert result.stderr.startswith("shelljail: cannot write the audit log under") and "XDG_STATE_HOME" in result.stderr
