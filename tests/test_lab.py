"""The syscall lab: learn a profile from a real workload, run it again under it, see what it lacks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import Jail

from jail.lab import learn as learning
from jail.policy import profile as profiles
from jail.seccomp import notify as seccomp_notify

pytestmark = pytest.mark.skipif(not seccomp_notify.available(),
                                reason="this kernel has no seccomp user notification (Linux 5.0+)")

# A small real workload: Python importing json and writing a file in the workspace and one in /tmp
# (outside it), a socket to a closed port, then git init and commit in the workspace.
WORK_PY = """\
import json, socket
with open("out.json", "w") as f:
    json.dump({"a": 1}, f)
with open("/tmp/scratch.txt", "w") as f:
    f.write("x")
s = socket.socket()
print("connect", s.connect_ex(("127.0.0.1", 9)) != 0)
"""
WORK_SH = """\
/usr/bin/python3 work.py
git init -q . && git add out.json && git commit -qm first && git log --oneline | wc -l
"""
GIT_ENV = ("--env", "GIT_AUTHOR_NAME=t", "--env", "GIT_AUTHOR_EMAIL=t@example.org",
           "--env", "GIT_COMMITTER_NAME=t", "--env", "GIT_COMMITTER_EMAIL=t@example.org")


def _workload(jail: Jail) -> None:
    for name in (".git", "out.json"):
        target = jail.workspace / name
        if target.is_dir():
            import shutil

            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    (jail.workspace / "work.py").write_text(WORK_PY)
    (jail.workspace / "work.sh").write_text(WORK_SH)
    if jail.user is not None:
        for path in jail.workspace.iterdir():
            os.chown(path, jail.user, jail.user)


def _learn(jail: Jail, output: Path, *command: str) -> tuple[int, str, str]:
    result = jail.cli("learn", "-w", str(jail.workspace), "--ask", "deny", *GIT_ENV, "-o", str(output),
                      "--", *command)
    return result.returncode, result.stdout, result.stderr


def test_learn_then_run_under_the_learned_profile(any_jail: Jail) -> None:
    jail = any_jail
    _workload(jail)
    learned = jail.root / "learned.toml"
    code, out, err = _learn(jail, learned, "/bin/sh", "work.sh")
    assert code == 0, err
    assert out.split() == ["connect", "True", "1"], out
    text = learned.read_text()
    loaded = profiles.load(str(learned))  # it validates, as `profile validate` does
    allow = set(loaded.seccomp.allow)
    assert {"socket", "connect", "mkdir", "rename"} <= allow, allow  # python's socket, git's object store
    assert "mknodat" not in allow and "ptrace" not in allow
    assert "/tmp/scratch.txt" in text  # written outside the workspace
    assert "/usr/bin/git" in text and "python3" in text  # programs run
    assert "AF_INET SOCK_STREAM" in text and "AF_INET 127.0.0.1:9" in text
    assert not any(f"{jail.workspace}/out.json" in line for line in text.splitlines())  # inside: not listed
    validate = jail.cli("profile", "validate", str(learned))
    assert validate.returncode == 0, validate.stderr

    _workload(jail)  # again, from scratch, under the learned profile
    again = jail.cli("run", "-p", str(learned), "-w", str(jail.workspace), "--ask", "deny", *GIT_ENV,
                     "--", "/bin/sh", "work.sh")
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == ["connect", "True", "1"]
    assert json.loads((jail.workspace / "out.json").read_text()) == {"a": 1}


def test_a_syscall_not_learned_is_denied_and_reported_by_name(jail: Jail) -> None:
    _workload(jail)
    learned = jail.root / "learned.toml"
    code, _, err = _learn(jail, learned, "/usr/bin/python3", "work.py")
    assert code == 0, err
    # The learned profile did not need mknodat (a FIFO); another workload does.
    other = 'import os\ntry:\n    os.mkfifo("pipe")\nexcept OSError as e:\n    print("errno", e.errno)\n'
    (jail.workspace / "other.py").write_text(other)
    result = jail.cli("lab", "run", "-p", str(learned), "-w", str(jail.workspace), "--",
                      "/usr/bin/python3", "other.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["errno", "1"]  # EPERM, the profile's errno_value
    assert not (jail.workspace / "pipe").exists()
    report = [line.split() for line in result.stderr.splitlines()]
    assert ["mknodat", "1", "first", "by", "python3"] in report, result.stderr
    # The same workload under the base profile it was learned on: allowed.
    base = jail.cli("lab", "run", "-p", "coding-agent", "-w", str(jail.workspace), "--",
                    "/usr/bin/python3", "other.py")
    assert base.stdout == "" and (jail.workspace / "pipe").exists(), base.stderr
    assert "no syscall was denied" in base.stderr


def test_lab_run_reports_the_base_policy_denials(jail: Jail) -> None:
    """The lab profile: no interposer, the coding-agent policy, every denial counted by name."""
    script = "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nfor _ in range(3):\n    libc.syscall(250)\n"
    (jail.workspace / "keys.py").write_text(script)  # 250: keyctl on x86_64, denied by @keyring
    if os.uname().machine != "x86_64":
        pytest.skip("the syscall number is x86_64's")
    result = jail.cli("lab", "run", "-w", str(jail.workspace), "--", "/usr/bin/python3", "keys.py")
    assert result.returncode == 0, result.stderr
    assert ["keyctl", "3", "first", "by", "python3"] in [line.split() for line in result.stderr.splitlines()]


def test_learn_fails_clearly(jail: Jail, tmp_path: Path) -> None:
    no_seccomp = tmp_path / "plain.toml"
    no_seccomp.write_text('extends = "coding-agent"\n[seccomp]\nenabled = false\n')
    output = tmp_path / "never.toml"
    result = jail.cli("learn", "-p", str(no_seccomp), "-o", str(output), "--", "/bin/true")
    assert result.returncode == 125 and "seccomp" in result.stderr and not output.exists()
    assert len(result.stderr.strip().splitlines()) == 1
    missing = jail.cli("learn", "-o", str(output))
    assert missing.returncode != 0 and "CMD" in missing.stderr and not output.exists()


def test_lab_diff_names_syscalls_paths_and_network(jail: Jail, tmp_path: Path) -> None:
    narrow = tmp_path / "narrow.toml"
    narrow.write_text('extends = "coding-agent"\n[seccomp]\nallow = ["socket", "mkdir"]\n')
    narrower = tmp_path / "narrower.toml"
    narrower.write_text('extends = "readonly"\n[seccomp]\nallow = ["mkdir"]\n')
    lines = jail.cli("lab", "diff", str(narrow), str(narrower)).stdout.splitlines()
    assert "syscalls A allows and B does not: socket" in lines
    assert "syscalls B allows and A does not: none" in lines
    assert "workspace: A read-write, B read-only" in lines
    assert "network: both proxy" in lines
    wide = jail.cli("lab", "diff", "coding-agent", str(narrow)).stdout
    assert "every syscall outside the other's allow-list" in wide
    base = jail.cli("lab", "diff", "base", "coding-agent").stdout
    assert "paths only B mounts (read_only_optional)" in base and "{home}/.pyenv" in base
    lab = jail.cli("lab", "diff", "coding-agent", "lab").stdout
    assert "interposer: A on, B off" in lab


def test_recorder_reads_the_waiting_calls_arguments() -> None:
    """The argument decoding, on this process's own memory (the supervisor reads the jailed one's)."""
    import ctypes
    import socket

    path = ctypes.create_string_buffer(b"/tmp/elsewhere/file.txt")
    recorder = learning.Recorder("/tmp/workspace")
    at_fdcwd = (1 << 64) - 100
    recorder.observe(os.getpid(), "openat", [at_fdcwd, ctypes.addressof(path), os.O_WRONLY | os.O_CREAT, 0, 0, 0])
    recorder.observe(os.getpid(), "openat", [at_fdcwd, ctypes.addressof(path), os.O_RDONLY, 0, 0, 0])
    inside = ctypes.create_string_buffer(b"/tmp/workspace/a/../b")
    recorder.observe(os.getpid(), "openat", [at_fdcwd, ctypes.addressof(inside), os.O_WRONLY, 0, 0, 0])
    raw = socket.inet_aton("10.1.2.3")
    address = ctypes.create_string_buffer(b"\x02\x00\x01\xbb" + raw + b"\0" * 8, 16)
    recorder.observe(os.getpid(), "connect", [3, ctypes.addressof(address), 16, 0, 0, 0])
    recorder.observe(os.getpid(), "socket", [socket.AF_INET6, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, 0, 0, 0, 0])
    recorder.observe(os.getpid(), "connect", [3, 0, 16, 0, 0, 0])  # a bad pointer: skipped, never raises
    summary = recorder.summary()
    assert summary["writes_outside_workspace"] == {"/tmp/elsewhere/file.txt": 1}
    assert summary["connections"] == {"AF_INET 10.1.2.3:443": 1}
    assert summary["sockets"] == {"AF_INET6 SOCK_DGRAM": 1}


# Names a jailed program opens for writing during learning: each tries to become a line of the learned profile.
HOSTILE_NAMES = [b"new\nline", b'quo"te', b"apos'trophe", b"brack]et", b'tri"""ple', b"back\\slash\\",
                 b'x\n[filesystem]\nread_write = ["/"]\n', b'y"\n[filesystem]\nread_write = ["/"]\n#',
                 b"\r\x1b[2Kcarriage", b"\xe2\x80\xaebidi", b"not utf8 \xff", b"tab\there"]
PLANT_PY = f"""\
import os
for name in {HOSTILE_NAMES!r}:
    os.makedirs(os.path.dirname(b"/tmp/" + name), exist_ok=True)  # a "/" in a name is a directory
    with open(b"/tmp/" + name, "w") as f:
        f.write("x")
print("planted", len(os.listdir(b"/tmp")))
"""


def test_learned_names_cannot_become_lines_of_the_profile(jail: Jail) -> None:
    """Paths the jail opened went into the profile by hand: a newline in one made `read_write = ["/"]` live."""
    import tomllib

    import tomli_w
    from conftest import guarded

    from jail.display import shown

    (jail.workspace / "plant.py").write_text(PLANT_PY)
    learned = jail.root / "learned.toml"
    code, out, err = _learn(jail, learned, "/bin/sh", "-c", guarded("/usr/bin/python3 plant.py"))
    assert code == 0 and out.split()[0] == "planted", err
    text = learned.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    assert set(data) == {"extends", "description", "seccomp"} and set(data["seccomp"]) == {"allow"}, data
    body = [line for line in text.splitlines() if not line.startswith("#")]
    assert body == tomli_w.dumps(data).splitlines()  # every line that is not a comment is the writer's
    for name in HOSTILE_NAMES:  # each is named, escaped, inside one comment line
        assert f"#   {shown(b'/tmp/' + name)}  (1x)" in text.splitlines(), name

    loaded = profiles.load(str(learned))  # it validates, as `profile validate` does
    base = profiles.load("coding-agent")
    assert loaded.filesystem == base.filesystem and loaded.seccomp.enabled
    sessions = jail.home / ".local" / "state" / "shelljail" / "sessions"
    log = (sorted(sessions.iterdir())[-1] / "audit.jsonl").read_text()
    [event] = [e for e in map(json.loads, log.splitlines()) if e["event"] == "seccomp-learned"]
    from jail.seccomp.groups import CORE

    assert set(loaded.seccomp.allow) == set(event["counts"]) - set(CORE)  # read back as learned
    validate = jail.cli("profile", "validate", str(learned))
    assert validate.returncode == 0, validate.stderr
    show = jail.cli("profile", "show", str(learned))
    assert show.returncode == 0 and '"/"' not in show.stdout.split("[filesystem]")[-1].split("[")[0], show.stdout


def test_a_program_is_looked_up_as_the_jail_sees_it(jail: Jail, tmp_path: Path) -> None:
    """The recorder checked programs through /proc/PID/root/PATH: a jail's absolute symlink resolved on the host,
    and a host program the jail cannot see was named in the learned profile."""
    from conftest import guarded

    outside = tmp_path / "outside"  # a canary the jail does not see
    outside.mkdir()
    (outside / "tool").write_text("#!/bin/sh\n")
    os.chmod(outside / "tool", 0o755)
    learned = jail.root / "learned.toml"
    script = f"ln -s {outside}/tool /tmp/probe; /tmp/probe; echo status=$?"
    code, out, err = _learn(jail, learned, "/bin/sh", "-c", guarded(script))
    assert code == 0 and out.split() == ["status=127"], err  # not there, inside the jail
    text = learned.read_text()
    programs = text.split("# Programs run:")[1].split("# Sockets opened:")[0]
    assert "/usr/bin/ln" in programs and "/tmp/probe" not in programs, programs
