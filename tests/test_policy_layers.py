"""Seccomp and Landlock as units: profile validation, the compiled program, Landlock on its own."""

import os
from pathlib import Path

import pytest
from conftest import Jail

from jail.policy import profile
from jail.sandbox import landlock
from jail.seccomp import filters as seccomp

pytestmark = pytest.mark.jail


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


def test_seccomp_off_keeps_only_the_setid_guard(tmp_path: Path) -> None:
    """Off, the profile's lists are gone (keyctl, killed by base's filter, runs), but a setuid bit
    still cannot be set: the jail's root is the host's."""
    jail = Jail(tmp_path / "jail")
    path = tmp_path / "p.toml"
    path.write_text('extends = "base"\n[seccomp]\nenabled = false\n')
    result = jail.run("/usr/bin/python3", "-c",
                      "import ctypes; ctypes.CDLL(None).syscall(250, 0, 0, 0, 0, 0); print('survived')",
                      options=("-p", str(path)))
    assert result.returncode == 0 and "survived" in result.stdout, result.stderr
    result = jail.sh("touch f && chmod 4755 f; echo status=$?; stat -c %a f", options=("-p", str(path)))
    assert "status=1" in result.stdout and result.stdout.split()[-1] == "644", result.stdout + result.stderr
    assert not (jail.workspace / "f").stat().st_mode & 0o6000


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


DOCKER = Path(__file__).resolve().parent / "data" / "seccomp" / "docker-default.json"  # see its NOTICE.md


def test_export_and_import_round_trip_to_the_same_filter() -> None:
    import json

    from jail.seccomp import oci as seccomp_oci

    policy = profile.load("coding-agent").seccomp
    native = seccomp._compile(policy.errno, policy.kill, policy.log, policy.errno_value)
    exported = json.loads(json.dumps(seccomp_oci.export(policy.errno, policy.kill, policy.log, policy.errno_value)))
    assert exported["defaultAction"] == "SCMP_ACT_ALLOW"
    assert seccomp_oci.compile_policy(seccomp_oci.parse(exported), notify=False) == native


def test_dockers_default_profile_is_read_as_docker_reads_it() -> None:
    from jail.seccomp import oci as seccomp_oci

    docker = seccomp_oci.read(str(DOCKER))
    assert docker.default_action == "SCMP_ACT_ERRNO" and docker.default_errno == 1
    allowed = {name for rule in docker.rules if rule.action == "SCMP_ACT_ALLOW" for name in rule.names}
    assert {"read", "openat", "execve", "arch_prctl"} <= allowed
    assert not {"bpf", "chroot", "reboot", "init_module", "s390_runtime_instr"} & allowed  # caps, other arches
    assert any("archMap" in note for note in docker.notes)
    assert len(seccomp_oci.compile_policy(docker, notify=False)) > 8 * 100


def test_a_jail_runs_under_dockers_default_profile(tmp_path: Path) -> None:
    jail = Jail(tmp_path / "jail")
    path = tmp_path / "docker.toml"
    path.write_text(f'extends = "coding-agent"\n[seccomp]\noci = "{DOCKER}"\n')
    probe = ("import ctypes; libc = ctypes.CDLL(None, use_errno=True); "
             "print(libc.syscall(250, 0, 0, 0, 0, 0), ctypes.get_errno())")
    result = jail.run("/usr/bin/python3", "-c", probe, options=("-p", str(path)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["-1", "1"]  # keyctl: not in Docker's allow-list
    listing = jail.run("/bin/ls", "/usr", options=("-p", str(path)))
    assert listing.returncode == 0 and "bin" in listing.stdout.split()


def test_oci_paths_resolve_and_missing_files_are_refused(tmp_path: Path) -> None:
    import shutil

    shutil.copy(DOCKER, tmp_path / "docker.json")
    good = tmp_path / "good.toml"
    good.write_text('[seccomp]\noci = "docker.json"\n')
    assert profile.load(str(good)).seccomp.oci == str(tmp_path / "docker.json")
    bad = tmp_path / "bad.toml"
    bad.write_text('[seccomp]\noci = "missing.json"\n')
    with pytest.raises(profile.ProfileError, match="seccomp.oci: no such file"):
        profile.load(str(bad))
