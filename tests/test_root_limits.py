"""`limits.processes` holds for root too (issue #22, item 8).

The kernel exempts the host's uid 0 from RLIMIT_NPROC, and root's jail runs
as the host's uid 0: with the rlimit alone, `processes = 64` let a jail start
200. Each test runs a bounded fork loop inside a real jail (behind
`guarded()`) and counts what it got; the children die with the jail.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading

import pytest
from conftest import SHELLJAIL, Jail, guarded, sleepers

from jail.sandbox.limits import PidsCgroup, make_pids_cgroup, pids_cgroup_parent

LIMIT = 64
SLEEP = "613.25"  # marks this test's children among the host's processes

# Forks up to 200 children that sleep; prints how many forks succeeded and the jail's pids cgroup.
FORK_LOOP = f'''
import json, os
got = 0
for _ in range(200):
    try:
        pid = os.fork()
    except BlockingIOError:
        break
    if pid == 0:
        os.execv("/bin/sleep", ["sleep", "{SLEEP}"])
    got += 1
cgroup = [line.split(":", 2)[2] for line in open("/proc/self/cgroup").read().splitlines() if ":pids:" in line]
print(json.dumps({{"forked": got, "cgroup": cgroup[0] if cgroup else None}}))
'''


def limited(jail: Jail) -> str:
    path = jail.root / "limits.toml"
    path.write_text(f'extends = "base"\n[limits]\nprocesses = {LIMIT}\n')
    (jail.workspace / "fork.py").write_text(FORK_LOOP)
    return str(path)


def fork_loop(jail: Jail, **env: str) -> dict[str, object]:
    result = jail.sh(f"/usr/bin/python3 {jail.workspace}/fork.py", options=("-p", limited(jail)),
                     env=jail.env(**env))
    assert result.returncode == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_fork_loop_as_root_stops_at_the_limit(jail: Jail) -> None:
    """Root's jail runs in a pids cgroup of its own, removed when the run ends; the refusals are logged."""
    state = jail.root / "state"
    outcome = fork_loop(jail, XDG_STATE_HOME=str(state))
    assert 0 < outcome["forked"] < LIMIT  # the holder, pid 1 and the command count too
    cgroup = outcome["cgroup"]
    assert isinstance(cgroup, str) and os.path.basename(cgroup).startswith("shelljail-")
    assert not os.path.exists(f"/sys/fs/cgroup/pids{cgroup}")
    assert sleepers(SLEEP) == []
    (session,) = list((state / "shelljail" / "sessions").iterdir())
    log = [json.loads(line) for line in (session / "audit.jsonl").read_text().splitlines()]
    (limit,) = [event for event in log if event["event"] == "limit"]
    assert limit["limit"] == "processes" and limit["refused_forks"] >= 1


def test_a_fork_loop_as_an_ordinary_user_stops_at_the_limit(nobody_jail: Jail) -> None:
    """For any other uid RLIMIT_NPROC holds, counted in the jail's user namespace."""
    outcome = fork_loop(nobody_jail)
    assert 0 < outcome["forked"] < LIMIT
    assert sleepers(SLEEP) == []


def test_root_is_refused_where_no_pids_cgroup_can_be_made(jail: Jail) -> None:
    """Without a pids controller (unmounted in a private mount namespace of the test's own), root's run
    fails closed: exit 125, one line naming the cause, and the command never starts."""
    profile = limited(jail)
    marker = jail.workspace / "started"
    run = [*SHELLJAIL, "run", "-p", profile, "-w", str(jail.workspace), "--interposer", "off", "--",
           "/bin/sh", "-c", guarded(f"touch {marker}")]
    script = 'umount /sys/fs/cgroup/pids && exec "$@"'
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *run],
                            capture_output=True, text=True, timeout=60, env=jail.env(), cwd=jail.workspace)
    assert result.returncode == 125, (result.stdout, result.stderr)
    assert "limits.processes cannot hold for root here" in result.stderr
    assert "no pids cgroup controller is mounted" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not marker.exists()


def test_doctor_names_the_mechanism(any_jail: Jail) -> None:
    """Root: the pids cgroup, tried with a real fork loop; an ordinary user: RLIMIT_NPROC."""
    result = any_jail.cli("doctor", timeout=120)
    line = next((line for line in result.stdout.splitlines() if line.startswith("process limit")), "")
    if any_jail.user is None:
        assert "pids cgroup" in line and "holds for root" in line, result.stdout
    else:
        assert "RLIMIT_NPROC" in line and " ok " in line, result.stdout


def _threads_cgroups_after_enter(cgroup: PidsCgroup, threads: int) -> set[str]:
    """In a forked child with `threads` threads more, enter the cgroup; the pids cgroup of every thread."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe and never returns
        try:
            hold = threading.Event()
            for _ in range(threads):
                threading.Thread(target=hold.wait, daemon=True).start()
            cgroup.enter()
            seen = {line.split(":", 2)[2] for task in os.listdir("/proc/self/task")
                    for line in open(f"/proc/self/task/{task}/cgroup").read().splitlines() if ":pids:" in line}
            os.write(write, json.dumps(sorted(seen)).encode())
            hold.set()
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as report:
        seen = json.loads(report.read() or "[]")
    os.waitpid(pid, 0)
    return set(seen)


@pytest.mark.skipif(os.geteuid() != 0, reason="root's pids cgroup: only root's runs make one")
def test_entering_the_cgroup_moves_every_thread() -> None:
    """A single thread takes the cheap way (cgroup v1 `tasks`), more threads the whole process's
    (`cgroup.procs`): either way each thread ends in the jail's cgroup, none left outside."""
    cgroup = make_pids_cgroup(LIMIT)
    try:
        relative = "/" + os.path.relpath(cgroup.path, pids_cgroup_parent())
        for threads in (0, 3):
            seen = _threads_cgroups_after_enter(cgroup, threads)
            assert len(seen) == 1 and next(iter(seen)).endswith(relative), (threads, seen)
    finally:
        assert cgroup.remove()
