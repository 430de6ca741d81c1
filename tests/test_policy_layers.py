"""Seccomp and Landlock as units: profile validation, the compiled program, Landlock on its own."""

import os
from pathlib import Path

import pytest
from conftest import Jail

from jail import landlock, profile, seccomp


@pytest.mark.parametrize("text, problem", [
    ('[seccomp]\nerrno = ["@nonesuch"]\n', "unknown group '@nonesuch'"),
    ('[seccomp]\nkill = ["rm -rf"]\n', "neither a syscall name nor a @group"),
    ('[seccomp]\nerrno_value = "EWHATEVER"\n', "errno name"),
    ('[landlock]\nmode = "sometimes"\n', "expected one of"),
])
def test_bad_policies_are_refused(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(profile.ProfileError, match=problem):
        profile.load(str(path))


def test_an_unknown_syscall_refuses_the_run(tmp_path: Path) -> None:
    jail = Jail(tmp_path / "jail")
    path = tmp_path / "p.toml"
    path.write_text('extends = "base"\n[seccomp]\nerrno = ["no_such_syscall"]\n')
    result = jail.run("/bin/true", options=("-p", str(path)))
    assert result.returncode == 125
    assert "no syscall named 'no_such_syscall'" in result.stderr


def test_the_program_is_cached_and_stable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    policy = profile.load("coding-agent").seccomp
    first = seccomp.build(policy.errno, policy.kill, policy.log, policy.errno_value)
    cached = list((tmp_path / "shelljail" / "seccomp").iterdir())
    assert len(cached) == 1 and cached[0].read_bytes().endswith(first)
    cached[0].write_bytes(b"another policy\n" + b"\0" * 64)  # a stale or colliding file is never used
    assert seccomp.build(policy.errno, policy.kill, policy.log, policy.errno_value) == first
    assert seccomp.build(policy.errno, policy.kill, policy.log, policy.errno_value) == first
    assert len(first) % 8 == 0 and len(first) > 8 * 50


def test_kill_and_log_actions_are_honoured(tmp_path: Path) -> None:
    jail = Jail(tmp_path / "jail")
    path = tmp_path / "p.toml"
    path.write_text('extends = "base"\n[seccomp]\nkill = ["keyctl"]\n')
    result = jail.run("/usr/bin/python3", "-c",
                      "import ctypes; ctypes.CDLL(None).syscall(250, 0, 0, 0, 0, 0); print('survived')",
                      options=("-p", str(path)))
    assert result.returncode == 128 + 31 and "survived" not in result.stdout  # SIGSYS


def test_seccomp_off_lets_everything_through(tmp_path: Path) -> None:
    jail = Jail(tmp_path / "jail")
    path = tmp_path / "p.toml"
    path.write_text('extends = "base"\n[seccomp]\nenabled = false\n')
    result = jail.run("/bin/grep", "^Seccomp:", "/proc/self/status", options=("-p", str(path)))
    assert result.stdout.split() == ["Seccomp:", "0"]
    result = jail.run("/bin/grep", "^Seccomp:", "/proc/self/status")
    assert result.stdout.split() == ["Seccomp:", "2"]


def test_landlock_blocks_writes_outside_the_writable_places(tmp_path: Path) -> None:
    """Landlock on its own, in a child process on the host: only `allowed` is writable."""
    if landlock.abi_version() < 1:
        pytest.skip("the kernel has no Landlock")
    allowed, other = tmp_path / "allowed", tmp_path / "other"
    allowed.mkdir()
    other.mkdir()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            import prctl

            prctl.set_no_new_privs(True)
            landlock.restrict([str(allowed)], landlock.abi_version())
            (allowed / "ok").write_text("fine")
            try:
                (other / "no").write_text("escaped")
                code = 1
            except PermissionError:
                code = 0
        except BaseException:  # noqa: BLE001 - report through the exit status
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert (allowed / "ok").exists() and not (other / "no").exists()


def test_landlock_abi_and_masks() -> None:
    assert landlock.handled_fs(1) == (1 << 13) - 1
    assert landlock.handled_fs(3) & landlock.TRUNCATE and not landlock.handled_fs(3) & landlock.IOCTL_DEV
    assert landlock.abi_version() >= 0
