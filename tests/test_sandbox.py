"""The jail core, on this kernel: real namespaces, real mounts, real escapes tried from inside."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from conftest import Jail, accept_in_background, sleepers


def test_id_shows_the_mapped_caller(any_jail: Jail) -> None:
    result = any_jail.sh("id -u; id -g; id -un; hostname")
    assert result.returncode == 0, result.stderr
    uid, gid, name, hostname = result.stdout.split()
    expected = any_jail.user if any_jail.user is not None else os.getuid()
    assert (int(uid), int(gid)) == (expected, expected if any_jail.user is not None else os.getgid())
    assert name == ("nobody" if any_jail.user is not None else "root")
    assert hostname == "shelljail"


def test_workspace_is_writable_and_shared_with_the_host(any_jail: Jail) -> None:
    result = any_jail.sh("echo made-inside > created.txt && pwd")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(any_jail.workspace.resolve())
    assert (any_jail.workspace / "created.txt").read_text() == "made-inside\n"


@pytest.mark.parametrize("target", ["/usr/shelljail-probe", "/etc/shelljail-probe", "/shelljail-probe",
                                    "/opt/shelljail-probe", "/proc/sys/kernel/hostname"])
def test_writing_outside_the_workspace_fails(any_jail: Jail, target: str) -> None:
    result = any_jail.sh(f"echo x > {target} && echo WROTE")
    assert "WROTE" not in result.stdout
    assert result.returncode != 0
    assert not os.path.exists(target) or target.startswith("/proc")


def test_read_only_binds_cannot_be_remounted_writable(any_jail: Jail) -> None:
    result = any_jail.sh("mount -o remount,rw /usr 2>&1; mount -o remount,bind,rw /usr 2>&1; "
                     "touch /usr/shelljail-probe 2>&1 || echo STILL-READ-ONLY")
    assert "STILL-READ-ONLY" in result.stdout, result.stdout + result.stderr
    assert not os.path.exists("/usr/shelljail-probe")


def test_home_is_empty_and_credentials_are_invisible(any_jail: Jail) -> None:
    ssh = any_jail.home / ".ssh"
    ssh.mkdir()
    canary = uuid.uuid4().hex
    (ssh / "id_ed25519").write_text(canary)
    home = any_jail.home
    result = any_jail.sh(f"ls -A {home}; cat {ssh}/id_ed25519 2>&1; "
                         f"grep -r {canary} {home} /tmp /run 2>/dev/null; echo leftover > {home}/note; echo done")
    assert result.returncode == 0, result.stderr
    assert canary not in result.stdout
    assert "No such file" in result.stdout
    assert not (any_jail.home / "note").exists()  # the jail's home is a tmpfs, not the real one


def test_host_processes_are_invisible(any_jail: Jail) -> None:
    marker = f"{uuid.uuid4().int % 10**6 + 10**6}"
    host = subprocess.Popen(["sleep", marker])
    try:
        result = any_jail.sh(f"ps -eo pid,args; grep -l {marker} /proc/[0-9]*/cmdline 2>/dev/null; "
                         f"kill -0 {host.pid} 2>&1 || echo CANNOT-SIGNAL")
        assert result.returncode == 0, result.stderr
        assert f"sleep {marker}" not in result.stdout
        assert "CANNOT-SIGNAL" in result.stdout
        first_words = [line.split()[0] for line in result.stdout.splitlines() if line.split()]
        pids = [int(word) for word in first_words if word.isdigit()]
        assert min(pids) == 1 and max(pids) < 50  # a fresh pid namespace
    finally:
        host.kill()
        host.wait()


def test_a_tcp_server_on_the_host_loopback_is_unreachable(any_jail: Jail) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    accepted: list[socket.socket] = []
    accept_in_background(server, accepted)
    probe = (f"import socket; s = socket.socket(); s.settimeout(3); "
             f"print('CONNECTED' if s.connect_ex(('127.0.0.1', {port})) == 0 else 'REFUSED')")
    try:
        result = any_jail.sh(f"python3 -c \"{probe}\"; cat /proc/net/dev")
        assert result.returncode == 0, result.stderr
        assert "REFUSED" in result.stdout
        interfaces = [line.split(":")[0].strip() for line in result.stdout.splitlines() if ":" in line]
        assert interfaces == ["lo"]
        time.sleep(0.2)
        assert not accepted
    finally:
        server.close()


def test_no_capabilities_and_no_new_privileges(any_jail: Jail) -> None:
    result = any_jail.sh("grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status")
    assert result.returncode == 0, result.stderr
    fields = dict(line.split(":\t") for line in result.stdout.splitlines())
    assert fields == {"CapInh": "0000000000000000", "CapPrm": "0000000000000000",
                      "CapEff": "0000000000000000", "CapBnd": "0000000000000000",
                      "CapAmb": "0000000000000000", "NoNewPrivs": "1"}


def test_privileged_operations_fail_inside(any_jail: Jail) -> None:
    result = any_jail.sh("mount -t tmpfs none /tmp 2>&1 || echo NO-MOUNT; "
                     "hostname evil 2>&1 || echo NO-HOSTNAME; "
                     "unshare -U true 2>&1; chroot / true 2>&1 || echo NO-CHROOT")
    assert "NO-MOUNT" in result.stdout and "NO-HOSTNAME" in result.stdout and "NO-CHROOT" in result.stdout


def test_the_command_runs_in_a_new_session_without_a_terminal(any_jail: Jail) -> None:
    # Fields of /proc/self/stat after the command name: state ppid pgrp session tty_nr
    result = any_jail.sh("cut -d')' -f2 /proc/$$/stat; echo $$")
    fields = result.stdout.split()
    pid = result.stdout.split()[-1]
    assert fields[3] == pid  # the shell (pid 2) leads its own session
    assert fields[4] == "0"  # and has no controlling terminal: no TIOCSTI into the caller's


def test_environment_is_scrubbed(any_jail: Jail) -> None:
    env = any_jail.env(SSH_AUTH_SOCK="/tmp/agent.sock", AWS_SECRET_ACCESS_KEY="leak-me", GITHUB_TOKEN="leak-me",
                   TERM="xterm-256color")
    result = any_jail.run("/usr/bin/env", options=("--env", "GIVEN=yes"), env=env)
    assert result.returncode == 0, result.stderr
    names = {line.split("=", 1)[0] for line in result.stdout.splitlines()}
    assert "leak-me" not in result.stdout
    assert not names & {"SSH_AUTH_SOCK", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "PYTHONPATH"}
    assert "GIVEN=yes" in result.stdout and "TERM=xterm-256color" in result.stdout
    assert f"HOME={any_jail.home}" in result.stdout


@pytest.mark.parametrize("script, status", [("exit 0", 0), ("exit 3", 3), ("exit 42", 42), ("kill -TERM $$", 143)])
def test_exit_status_propagates(jail: Jail, script: str, status: int) -> None:
    assert jail.sh(script).returncode == status


def test_command_not_found_exits_127(jail: Jail) -> None:
    result = jail.run("no-such-command-shelljail")
    assert result.returncode == 127
    assert result.stderr.startswith("shelljail: command not found: no-such-command-shelljail")


def test_missing_workspace_is_refused_with_125(jail: Jail) -> None:
    result = jail.cli("run", "-w", str(jail.root / "nope"), "--", "true")
    assert result.returncode == 125
    assert result.stderr.count("\n") == 1
    assert "nope does not exist" in result.stderr and "-w DIR" in result.stderr


@pytest.mark.parametrize("workspace", ["/", "HOME"])
def test_a_workspace_holding_the_system_or_home_is_refused(jail: Jail, workspace: str) -> None:
    path = str(jail.home) if workspace == "HOME" else workspace
    result = jail.cli("run", "-w", path, "--", "true")
    assert result.returncode == 125, result.stderr
    assert "contains" in result.stderr


def test_timeout_kills_everything_including_daemons(any_jail: Jail) -> None:
    marker = f"{uuid.uuid4().int % 10**6 + 2 * 10**6}"
    script = (f"setsid sleep {marker} & "
              f"(nohup sleep {marker} >/dev/null 2>&1 &) ; "
              f"sleep {marker}")
    started = time.monotonic()
    result = any_jail.sh(script, options=("--timeout", "2"))
    assert result.returncode == 124
    assert "timed out" in result.stderr
    assert time.monotonic() - started < 30
    deadline = time.monotonic() + 5
    while sleepers(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sleepers(marker) == []


def test_killing_run_kills_the_jail(jail: Jail) -> None:
    marker = f"{uuid.uuid4().int % 10**6 + 3 * 10**6}"
    proc = subprocess.Popen(
        [os.sys.executable, "-m", "jail.cli", "run", "-w", str(jail.workspace), "--",
         "/bin/sh", "-c", f"setsid sleep {marker} & sleep {marker}"],
        env=jail.env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while len(sleepers(marker)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(sleepers(marker)) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 5
    while sleepers(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sleepers(marker) == []


def test_sigterm_is_forwarded_to_the_command(jail: Jail) -> None:
    proc = subprocess.Popen(
        [os.sys.executable, "-m", "jail.cli", "run", "-w", str(jail.workspace), "--", "/bin/sh", "-c",
         "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done"],
        env=jail.env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert "got-term" in out
    assert proc.returncode == 7


def test_a_symlink_in_the_workspace_cannot_redirect_a_mount(jail: Jail, tmp_path: Path) -> None:
    (jail.workspace / "secrets").symlink_to("/etc")
    profile = tmp_path / "p.toml"
    profile.write_text('extends = "coding-agent"\n[filesystem]\nhidden = ["{workspace}/secrets"]\n')
    result = jail.cli("run", "-p", str(profile), "-w", str(jail.workspace), "--", "true")
    assert result.returncode == 125
    assert "symlink" in result.stderr


def test_hidden_paths_are_masked(jail: Jail, tmp_path: Path) -> None:
    (jail.workspace / ".env").write_text("TOKEN=secret-value\n")
    (jail.workspace / "private").mkdir()
    (jail.workspace / "private" / "key").write_text("secret-value")
    profile = tmp_path / "p.toml"
    profile.write_text('extends = "coding-agent"\n[filesystem]\n'
                       'hidden = ["{workspace}/.env", "{workspace}/private"]\n')
    result = jail.sh("cat .env; ls -A private; cat private/key 2>&1; echo end",
                     options=("-p", str(profile)))
    assert result.returncode == 0, result.stderr
    assert "secret-value" not in result.stdout


def test_readonly_profile_keeps_the_workspace_unchanged(jail: Jail) -> None:
    (jail.workspace / "file").write_text("original")
    result = jail.sh("cat file; echo changed > file 2>&1 || echo REFUSED", options=("-p", "readonly"))
    assert "original" in result.stdout and "REFUSED" in result.stdout
    assert (jail.workspace / "file").read_text() == "original"


def test_rlimits_come_from_the_profile(jail: Jail, tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text('extends = "base"\n[limits]\nopen_files = 123\nfile_size = "1M"\n'
                       'processes = 200\ncpu_seconds = 50\n')
    result = jail.sh("ulimit -n; ulimit -f; ulimit -t; head -c 2000000 /dev/zero > big; "
                     "echo $?; wc -c < big", options=("-p", str(profile)))
    lines = result.stdout.split()
    assert lines[:3] == ["123", "2048", "50"]  # ulimit -f counts 512-byte blocks
    assert lines[3] != "0" and int(lines[4]) <= 1 << 20


def test_address_space_limit_stops_a_large_allocation(jail: Jail, tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text('extends = "base"\n[limits]\naddress_space = "512M"\n')
    result = jail.sh("ulimit -v; python3 -c 'bytearray(1 << 30)' 2>&1 | tail -1",
                     options=("-p", str(profile)))
    assert result.stdout.split()[0] == str(512 * 1024)  # ulimit -v counts KiB
    assert "MemoryError" in result.stdout


def test_profile_wall_time_applies(jail: Jail, tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text('extends = "base"\n[limits]\nwall_time = 1\n')
    result = jail.sh("sleep 30", options=("-p", str(profile)))
    assert result.returncode == 124


def test_init_reaps_orphaned_zombies(jail: Jail) -> None:
    # Orphans re-parent to pid 1; without reaping they would stay zombies (Z).
    result = jail.sh("for i in 1 2 3 4 5; do (sleep 0.1 &) ; done; sleep 1; "
                     "ps -eo stat= | grep -c '^Z' || true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_the_process_limit_stops_a_fork_bomb(jail: Jail, tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text('extends = "base"\n[limits]\nprocesses = 64\n')
    # dash exits at a failed fork: the loop runs in a subshell, and the count is read with builtins only.
    result = jail.sh("(i=0; while [ $i -lt 200 ]; do sleep 5 & echo x >> /tmp/started; i=$((i+1)); done) "
                     "2>/dev/null; n=0; while read -r _; do n=$((n+1)); done < /tmp/started; echo started $n",
                     options=("-p", str(profile), "--timeout", "30"))
    started = int(result.stdout.split()[-1])
    assert started < 64, result.stdout


def test_minimal_dev(any_jail: Jail) -> None:
    result = any_jail.sh("ls /dev; head -c 4 /dev/urandom | wc -c; echo x > /dev/null && echo null-ok; "
                     "ls /dev/sda 2>&1; touch /dev/new 2>&1 || echo DEV-READ-ONLY")
    assert result.returncode == 0, result.stderr
    listed = set(result.stdout.split("\n")[0:20])
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx"} <= listed
    assert "4" in result.stdout and "null-ok" in result.stdout and "DEV-READ-ONLY" in result.stdout


def test_ordinary_user(nobody_jail: Jail) -> None:
    result = nobody_jail.sh("id -u; echo hi > mine && cat mine; touch /usr/x 2>&1 || echo RO; "
                            "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == str(65534)
    assert "hi" in result.stdout and "RO" in result.stdout
    assert "CapEff:\t0000000000000000" in result.stdout and "NoNewPrivs:\t1" in result.stdout
    assert (nobody_jail.workspace / "mine").stat().st_uid == 65534
