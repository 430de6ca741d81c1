"""The decision service against a hostile jail: what a jailed program plants or sends it.

Each attack is planted or run from inside a real jail (behind the namespace guard); the host
side only reads the test's own canary folders, the run's output and its audit log.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import SHELLJAIL, Jail, guarded

pytestmark = pytest.mark.jail

LAUNCHERS = {
    "c": Path(__file__).resolve().parents[1] / "interposer" / "shelljail-launcher",
    "python": Path(__file__).resolve().parents[1] / "interposer" / "launcher.py",
}


@pytest.fixture(params=["c", "python"])
def launcher(request: pytest.FixtureRequest) -> str:
    if not LAUNCHERS[request.param].exists():
        pytest.fail(f"{LAUNCHERS[request.param]} is missing: run make setup")
    return request.param


def run(jail: Jail, launcher: str, *command: str) -> subprocess.CompletedProcess[str]:
    env = jail.env(SHELLJAIL_PYTHON_LAUNCHER="1" if launcher == "python" else "0")
    return jail.run(*command, interposer=True, env=env)


def audit_text(state: Path) -> str:
    """Every session log under a state home, as text."""
    return "".join(p.read_text(errors="replace") for p in state.glob("shelljail/sessions/*/audit.jsonl"))


def audit_events(state: Path) -> list[dict]:
    return [json.loads(line) for line in audit_text(state).splitlines()]


def canary(tmp_path: Path, text: str) -> tuple[Path, str]:
    """A host folder the jail cannot see, holding secret.sh, whose text names a unique token."""
    token = "canary" + os.urandom(6).hex()
    folder = tmp_path / "canary"
    folder.mkdir()
    (folder / "secret.sh").write_text(text.format(token=token))
    return folder, token


def plant(jail: Jail, script: str) -> None:
    """Run `script` in the jail (interposer off, behind the guard); it must print `planted`."""
    result = jail.sh(script + " && echo planted")
    assert result.returncode == 0 and "planted" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("how", ["symlink", "directory-symlink"])
def test_a_script_symlinked_to_a_host_file_is_read_as_the_jail_sees_it(jail: Jail, launcher: str, tmp_path: Path,
                                                                        how: str) -> None:
    folder, token = canary(tmp_path, "rm -rf /etc/{token}\n")
    # The canary is not in the jail's view: a symlink to it must resolve in the jail, to nothing.
    if how == "symlink":
        plant(jail, f"[ ! -e {folder}/secret.sh ] && ln -s {folder}/secret.sh s.sh")
        script = "s.sh"
    else:
        plant(jail, f"[ ! -e {folder} ] && ln -s {folder} d")
        script = "d/secret.sh"
    result = run(jail, launcher, "sh", script)
    assert result.returncode == 126, result.stdout + result.stderr
    assert "cannot read the script" in result.stderr and "No such file" in result.stderr
    assert token not in result.stdout + result.stderr  # the host file was not read
    log = audit_text(jail.home / ".local" / "state")
    assert "unreadable-script" in log and token not in log


def test_as_an_ordinary_user_the_service_reads_as_the_jail_sees_it_too(nobody_jail: Jail) -> None:
    # The supervisor runs as nobody: it opens the jail's root and reads its launcher's exe all the same.
    # The canary is one nobody can read on the host (beside the jail's folders, not in its view).
    folder, token = canary(nobody_jail.root, "rm -rf /etc/{token}\n")
    plant(nobody_jail, f"[ ! -e {folder}/secret.sh ] && ln -s {folder}/secret.sh s.sh && echo 'echo ok' > ok.sh")
    result = run(nobody_jail, "c", "sh", "s.sh")
    assert result.returncode == 126 and "cannot read the script" in result.stderr, result.stderr
    assert token not in result.stdout + result.stderr
    result = run(nobody_jail, "c", "sh", "ok.sh")  # a script that is there is read, judged and run
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr


def test_a_script_that_is_a_fifo_is_never_opened_and_is_judged_as_unread(jail: Jail, launcher: str) -> None:
    plant(jail, "mkfifo f.sh")
    result = run(jail, launcher, "sh", "f.sh")  # was: a service thread in open() for ever, the shell too
    assert result.returncode == 126, result.stdout + result.stderr
    assert "shelljail: denied:" in result.stderr and "is a fifo" in result.stderr
    (event,) = [e for e in audit_events(jail.home / ".local" / "state") if e["event"] == "decision"]
    assert event["rule"] == "opaque" and event["decision"] == "deny"


def test_a_command_line_over_the_services_bound_fails_closed_in_both_launchers(jail: Jail, launcher: str) -> None:
    # 11 words of 100,000 bytes: over the 1 MiB a request may have, under the kernel's argv limits.
    result = run(jail, launcher, "sh", "-c", "echo should-not-run", *(["x" * 100_000] * 11))
    assert result.returncode == 126 and "should-not-run" not in result.stdout
    assert "shelljail: denied: the interposer cannot judge this command (command line too long" in result.stderr


@pytest.mark.parametrize("planted", ["symlink", "fifo"])
def test_a_preview_reads_the_old_content_as_the_jail_sees_it(jail: Jail, tmp_path: Path, planted: str) -> None:
    folder, token = canary(tmp_path, "{token}\n")
    if planted == "symlink":
        plant(jail, f"[ ! -e {folder}/secret.sh ] && ln -s {folder}/secret.sh data.txt")
    else:
        plant(jail, "mkfifo data.txt")
    state = tmp_path / "state"
    env = jail.env(XDG_STATE_HOME=str(state))
    # truncate asks a person (without the timeline, which would make it undoable and so unasked); with
    # no terminal the question waits for `shelljail approvals`.
    no_timeline = tmp_path / "no-timeline.toml"
    no_timeline.write_text('extends = "coding-agent"\n[timeline]\nenabled = false\n')
    process = subprocess.Popen([*SHELLJAIL, "run", "-p", str(no_timeline), "-w", str(jail.workspace), "--",
                                "/bin/bash", "-c", "truncate -s 0 data.txt"], env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        listing, request = "", ""
        deadline = time.monotonic() + 60  # a hang guard: a preview that blocks never asks
        while not request and time.monotonic() < deadline and process.poll() is None:
            listing = subprocess.run([*SHELLJAIL, "approvals"], env=env, capture_output=True, text=True,
                                     timeout=30).stdout
            words = listing.split()
            request = words[0] if words and words[0] != "no" else ""
            time.sleep(0.1)
        assert request, "no question appeared"
        subprocess.run([*SHELLJAIL, "deny", request], env=env, capture_output=True, text=True, timeout=30)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 126, out + err
    assert token not in listing and token not in out + err and token not in audit_text(state)
    if planted == "fifo":
        assert "data.txt: a fifo (not read)" in listing


# A jailed Python program in phases: it writes ready-N and waits for go-N between them, so the
# host counts the supervisor's threads at known points. `shell` runs /bin/sh with its arguments,
# a top-level shell here (the program replaced the shell that started it), so it is judged.
PROGRAM = """
import os, select, socket, struct, subprocess, sys, time
SOCKET = "/run/shelljail/decide.sock"
phase = 0

def shell(*args):
    r = subprocess.run(["/bin/sh", *args], capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout.strip(), r.stderr.strip()

def judged(line):
    return shell("-c", line)

def pause(report=""):
    global phase
    phase += 1
    with open(f"ready-{phase}.tmp", "w") as f:
        f.write(report)
    os.rename(f"ready-{phase}.tmp", f"ready-{phase}")
    deadline = time.monotonic() + 120
    while not os.path.exists(f"go-{phase}") and time.monotonic() < deadline:
        time.sleep(0.05)

"""


def held(jail: Jail, program: str, phases: int) -> tuple[list[int], list[str], subprocess.CompletedProcess[str]]:
    """Run PROGRAM + `program` in a jail; the supervisor's thread count and the report at each pause."""
    (jail.workspace / "attack.py").write_text(PROGRAM + program)
    process = subprocess.Popen([*SHELLJAIL, "run", "-w", str(jail.workspace), "--interposer", "on", "--ask", "deny",
                                "--", "/bin/sh", "-c", guarded("exec /usr/bin/python3 attack.py")], env=jail.env(),
                               cwd=jail.workspace, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    threads, reports = [], []
    try:
        for phase in range(1, phases + 1):
            ready = jail.workspace / f"ready-{phase}"
            deadline = time.monotonic() + 120  # a hang guard, not a measure
            while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if not ready.exists():
                process.kill()
                raise AssertionError(f"phase {phase} never came: {process.communicate()}")
            threads.append(len(os.listdir(f"/proc/{process.pid}/task")))  # this process is the supervisor
            reports.append(ready.read_text())
            (jail.workspace / f"go-{phase}").touch()
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return threads, reports, subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_fifo_scripts_leave_no_supervisor_thread_behind(jail: Jail) -> None:
    threads, _, result = held(jail, """
pause()
os.mkfifo("f.sh")
results = [shell("f.sh") for _ in range(8)]
pause()
print(results[0][0], sum(r[0] == 126 and "is a fifo" in r[2] for r in results))
print(*judged("echo still-judged")[:2])
print(*judged("rm -rf /etc")[::2])
""", phases=2)
    assert result.returncode == 0, result.stdout + result.stderr
    first, blocked, normal = result.stdout.splitlines()[:3]
    assert first == "126 8"  # each was denied at once, none hung on the FIFO
    assert threads[1] <= threads[0], threads  # no service thread is left in open()
    assert blocked == "0 still-judged" and normal.startswith("126 shelljail: denied: deletes /etc")


def test_idle_connections_neither_exhaust_the_supervisor_nor_lock_the_shells_out(jail: Jail) -> None:
    from interposer.service import CLOSING, MAX_CONNECTIONS

    threads, reports, result = held(jail, f"""
pause()
idle = []
for _ in range({MAX_CONNECTIONS + 200}):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(SOCKET)
    idle.append(s)
# Accepted after every idle one (the listen queue is in order): when it is answered, all were seen.
print(*judged("echo still-judged")[:2])
closed = sum(bool(select.select([s], [], [], 0)[0]) for s in idle)
pause(str(closed))
print(*judged("rm -rf /etc")[::2])
""", phases=2)
    assert result.returncode == 0, result.stdout + result.stderr
    normal, destructive = result.stdout.splitlines()[:2]
    assert normal == "0 still-judged"  # a shell's connection makes room: it is judged, not refused
    assert destructive.startswith("126 shelljail: denied: deletes /etc")
    # One thread per connection, 456 connections held: the supervisor kept at most the cap's worth.
    assert threads[1] - threads[0] <= MAX_CONNECTIONS + CLOSING, threads
    assert int(reports[1]) >= 200  # the oldest idle connections were closed by the service, for newer ones
    refused = [e for e in audit_events(jail.home / ".local" / "state") if e["event"] == "service-refused"]
    assert refused and len(refused) <= 20  # logged, counted: not one event per connection
    assert max(e["count"] for e in refused) >= 200
    assert all("connections at once" in e["reason"] for e in refused)


def test_a_trickled_request_is_cut_off_by_one_deadline(jail: Jail) -> None:
    _, _, result = held(jail, """
payload = b"".join(f.encode() + b"\\0" for f in ("1", "/", "sh", "-c", "echo trickled-through-the-service"))
request = struct.pack("=I", len(payload)) + payload
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(SOCKET)
sent = 0
for byte in request:  # one byte every half second: each recv's own wait would never run out
    if select.select([s], [], [], 0)[0]:
        break
    try:
        s.send(bytes([byte]))
    except OSError:
        break
    sent += 1
    time.sleep(0.5)
s.settimeout(60)
answer = s.recv(65536)
print(sent < len(request), answer[:1].decode(), "not sent within" in answer.decode(errors="replace"))
big = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
big.connect(SOCKET)
big.send(struct.pack("=I", 2 << 20))  # a request of 2 MiB announced, nothing sent
big.settimeout(60)
print(big.recv(65536).decode(errors="replace").strip())
print(*judged("echo still-judged")[:2])
""", phases=0)
    assert result.returncode == 0, result.stdout + result.stderr
    trickle, big, normal = result.stdout.splitlines()[:3]
    assert trickle == "True D True"  # refused before the last byte, with the reason
    assert big.startswith("Dshelljail: denied: a request of 2097152 bytes, more than the 1048576")
    assert normal == "0 still-judged"
    reasons = {e["reason"] for e in audit_events(jail.home / ".local" / "state") if e["event"] == "service-refused"}
    assert any("not sent within" in r for r in reasons) and any("2097152 bytes" in r for r in reasons)


def test_every_command_is_denied_once_the_audit_log_is_full(tmp_path: Path) -> None:
    """In-process, over the service's real socket: a log that says it is full stops everything."""
    import socket
    import struct

    from interposer.service import SOCKET_NAME, DecisionService

    class FullLog:
        full = True

    decided: list[dict] = []
    directory = tmp_path / "service"
    directory.mkdir()
    service = DecisionService(None, str(directory), True, decided.append, None, False, FullLog())
    service.start()
    try:
        for fields in (("1", "/", "sh", "-c", "true"), ("t", "/", "rm", "rm", "x")):
            payload = b"".join(f.encode() + b"\0" for f in fields)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(30)
                s.connect(str(directory / SOCKET_NAME))
                s.sendall(struct.pack("=I", len(payload)) + payload)
                answer, fds, _, _ = socket.recv_fds(s, 65536, 8)
            assert not fds and answer.startswith(b"Dshelljail: denied: the session's audit log is full")
    finally:
        service.close()
    assert decided == []  # nothing judged, nothing logged into a full log



def test_a_program_speaking_the_protocol_itself_gets_no_real_shell(jail: Jail) -> None:
    # With the real shell's fd, a program could have it run a line other than the one judged.
    _, _, result = held(jail, """
payload = b"".join(f.encode() + b"\\0" for f in ("1", "/", "sh", "-c", "true"))
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(SOCKET)
s.sendall(struct.pack("=I", len(payload)) + payload)
s.settimeout(60)
answer, fds, _, _ = socket.recv_fds(s, 65536, 8)
print(len(fds), answer[:80].decode(errors="replace"))
print(*judged("echo still-judged")[:2])
""", phases=0)
    assert result.returncode == 0, result.stdout + result.stderr
    forged, normal = result.stdout.splitlines()[:2]
    assert forged.startswith("0 Dshelljail: denied: this request did not come from the shell launcher")
    assert normal == "0 still-judged"  # the launcher itself still asks
    refused = [e for e in audit_events(jail.home / ".local" / "state") if e["event"] == "service-refused"]
    assert [e["reason"] for e in refused] == ["a request from a program that is not the shell launcher"]


def test_a_waiting_launchers_memory_cannot_be_rewritten_from_the_jail(jail: Jail) -> None:
    # Its stderr a full pipe: the launcher waits on its answer, then on writing its denial, its argv
    # and answer in memory. Written through /proc/PID/mem (ptrace itself is refused by seccomp), the
    # launcher would run another line than the one judged; Landlock refuses the write (a guard: this
    # holds without any change here, and must go on holding).
    _, _, result = held(jail, """
read_end, write_end = os.pipe()
os.set_blocking(write_end, False)
try:
    while True:
        os.write(write_end, b"x" * 65536)
except BlockingIOError:
    pass
os.set_blocking(write_end, True)
child = subprocess.Popen(["/bin/sh", "-c", "rm -rf /etc"], stderr=write_end)  # returns once it is exec'd
deadline = time.monotonic() + 60
state = ""
while time.monotonic() < deadline:  # asleep: on its answer, or on writing its denial to the full pipe
    with open(f"/proc/{child.pid}/status") as f:
        state = next(line.split()[1] for line in f if line.startswith("State:"))
    if state == "S":
        break
    time.sleep(0.01)
try:
    with open(f"/proc/{child.pid}/mem", "r+b"):
        opened = "opened"
except PermissionError:
    opened = "refused"
os.set_blocking(read_end, False)
while child.poll() is None:
    try:
        os.read(read_end, 1 << 20)
    except BlockingIOError:
        time.sleep(0.01)
print(state, opened, child.returncode)
""", phases=0)
    assert result.returncode == 0, result.stdout + result.stderr
    state, opened, status = result.stdout.split()
    assert state == "S" and status == "126"  # the launcher, waiting, then denied
    assert opened == "refused"


def test_a_long_rewritten_line_runs_whole(jail: Jail, launcher: str) -> None:
    # The rewrite (find -delete becomes find -exec rm) is handed back as the shell's argv: 70 kB
    # arrived in parts, and the launchers ran what the first part held: a cut line, not the one logged.
    tail = "START" + "a" * 70_000 + "END"
    result = run(jail, launcher, "sh", "-c", f"find . -name nothing-here -delete; echo {tail}")
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout == tail + "\n"
    (event,) = [e for e in audit_events(jail.home / ".local" / "state") if e["event"] == "decision"]
    # (The log cuts a field this long, naming its length: jail/supervisor/audit.py's FIELD_CHARS.)
    assert event["decision"] == "rewrite" and event["rewritten"].startswith("find . -depth -name nothing-here")


def test_a_tool_argv_of_thousands_of_words_is_handed_back_whole(jail: Jail, launcher: str) -> None:
    # rm in a shell nobody judged goes back to the real rm with its argv: 5,000 words, of which the
    # C launcher kept 4,095 and rm, exiting 0, left the rest in place.
    names = [f"f{i}" for i in range(5000)]
    for name in names:
        (jail.workspace / name).write_text("")
    (jail.workspace / "wipe.sh").write_text("rm " + " ".join(names) + "\necho status=$?\n")
    result = run(jail, launcher, "sh", "-c", "sh wipe.sh")
    assert "status=0" in result.stdout, result.stdout + result.stderr[-500:]
    assert [n for n in names if (jail.workspace / n).exists()] == []


def test_a_preview_is_bounded_in_files_and_characters(tmp_path: Path) -> None:
    """In-process, on real files: a line naming many files, or one long line, cannot make it unbounded."""
    from interposer.preview import MAX_FILES, MAX_TEXT, preview, reader

    read = reader(str(tmp_path))  # tmp_path stands for the jail's root
    (tmp_path / "w").mkdir()
    many = "; ".join(f"echo x > f{i}" for i in range(MAX_FILES + 40))
    text = preview(many, "/w", {}, read)
    assert text.count("+++ b/w/f") == MAX_FILES and "... and 40 more files written" in text
    (tmp_path / "w" / "long").write_text("y" * 200_000)  # one line: the line bound alone would keep it
    text = preview("echo z >> long", "/w", {}, read)
    assert len(text) <= MAX_TEXT + 100 and "more characters" in text
    (tmp_path / "w" / "small").write_text("inside\n")
    os.symlink("/w/small", tmp_path / "w" / "up")  # absolute: it resolves in the root given, not the host's
    assert "-inside" in preview("echo z > up", "/w", {}, read)
