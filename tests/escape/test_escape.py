"""Escape attempts, each a real program run inside the jail (tests/escape/probe.py).

Every test asserts that the attempt failed, and the `canary` fixture that a
file on the host outside the jail's view is unchanged afterwards. The jail
runs with a profile whose seccomp errno is ENOTRECOVERABLE, a value no
kernel path returns for these calls, so a test can tell the filter's denial
from the kernel's own refusal.
"""

import errno
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.jail

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import NAMESPACES, Jail, accept_in_background  # noqa: E402

PROBE = Path(__file__).resolve().parent / "probe.py"
FILTERED = errno.ENOTRECOVERABLE


@pytest.fixture
def escape(tmp_path: Path) -> Jail:
    jail = Jail(tmp_path / "jail")
    shutil.copy(PROBE, jail.workspace / "probe.py")
    profile = tmp_path / "escape.toml"
    profile.write_text('extends = "coding-agent"\n[seccomp]\nerrno_value = "ENOTRECOVERABLE"\n'
                       '[landlock]\nmode = "required"\n')
    jail.profile = str(profile)  # type: ignore[attr-defined]
    return jail


@pytest.fixture(autouse=True)
def canary(tmp_path: Path):  # noqa: ANN201
    """A host file outside every jail's view, and the host's hostname: unchanged after each test."""
    path = tmp_path / "host-canary"
    path.write_text(uuid.uuid4().hex)
    before = hashlib.sha256(path.read_bytes()).hexdigest(), socket.gethostname()
    yield path
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), socket.gethostname()) == before


def run_probe(jail: Jail, name: str, *args: str, stdin: int | None = None) -> subprocess.CompletedProcess[str]:
    host = json.dumps({n: os.readlink(f"/proc/self/ns/{n}") for n in NAMESPACES})
    command = [sys.executable, "-m", "jail.cli", "run", "-p", jail.profile, "-w", str(jail.workspace),  # type: ignore[attr-defined]
               "--interposer", "off", "--", "/usr/bin/python3", "probe.py", host, name, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=jail.env(),
                          cwd=jail.workspace, stdin=stdin if stdin is not None else subprocess.DEVNULL)


def outcome(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name, args", [
    ("io_uring", ()), ("open_by_handle_at", ()), ("unshare", ()), ("clone_newuser", ()), ("setns", ()),
    ("mount", ()), ("fsopen", ()), ("chroot", ()), ("keyctl", ()), ("add_key", ()), ("bpf", ()),
    ("userfaultfd", ()), ("perf_event_open", ()), ("personality", ("0x0400000",)),
    ("ptrace", ("1",)), ("process_vm_writev", ("1",)),
])
def test_dangerous_syscalls_are_filtered(escape: Jail, name: str, args: tuple[str, ...]) -> None:
    assert outcome(run_probe(escape, name, *args)) == {"ret": -1, "errno": FILTERED}


def test_clone3_gets_enosys_so_libc_falls_back_to_clone(escape: Jail) -> None:
    assert outcome(run_probe(escape, "clone3")) == {"ret": -1, "errno": errno.ENOSYS}


@pytest.mark.parametrize("value", ["0", "0x8", "0x20000", "0xffffffff"])
def test_harmless_personalities_are_allowed(escape: Jail, value: str) -> None:
    assert outcome(run_probe(escape, "personality", value))["errno"] == 0


@pytest.mark.parametrize("family", ["vsock", "alg"])
def test_vsock_and_alg_sockets_are_filtered(escape: Jail, family: str) -> None:
    assert outcome(run_probe(escape, "socket", family)) == {"ret": -1, "errno": FILTERED}


@pytest.mark.parametrize("request_code", ["0x5412", "0x100005412", "0x541C"])
def test_tiocsti_and_tioclinux_are_filtered_even_with_high_bits(escape: Jail, request_code: str) -> None:
    main, secondary = os.openpty()
    try:
        result = run_probe(escape, "tiocsti", request_code, stdin=secondary)
    finally:
        os.close(secondary)
    os.set_blocking(main, False)
    try:
        injected = os.read(main, 100)
    except (BlockingIOError, OSError):
        injected = b""
    os.close(main)
    assert outcome(result) == {"ret": -1, "errno": FILTERED}
    assert b"x" not in injected


def test_an_x32_syscall_kills_the_process(escape: Jail) -> None:
    result = run_probe(escape, "x32")
    assert result.returncode == 128 + signal.SIGSYS, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""


def test_writing_proc_sys_fails(escape: Jail) -> None:
    assert outcome(run_probe(escape, "write", "/proc/sys/kernel/hostname"))["errno"] in (errno.EROFS, errno.EACCES)


def test_a_symlink_to_a_host_file_leads_nowhere(escape: Jail, canary: Path) -> None:
    (escape.workspace / "link").symlink_to(canary)
    content = canary.read_text()
    assert outcome(run_probe(escape, "read", "link"))["errno"] == errno.ENOENT  # not in the view
    # Writing lands, at most, in the jail's private /tmp (the canary lives under /tmp here).
    run_probe(escape, "write", "link")
    assert canary.read_text() == content


def test_a_symlink_into_the_read_only_system_cannot_write(escape: Jail) -> None:
    (escape.workspace / "link").symlink_to("/usr/share/shelljail-escape")
    assert outcome(run_probe(escape, "write", "link"))["errno"] in (errno.EROFS, errno.EACCES)
    assert not os.path.exists("/usr/share/shelljail-escape")


def test_a_host_file_outside_the_view_cannot_be_read(escape: Jail, canary: Path) -> None:
    assert outcome(run_probe(escape, "read", str(canary)))["errno"] == errno.ENOENT


def test_a_host_unix_socket_is_unreachable(escape: Jail, tmp_path: Path) -> None:
    path = tmp_path / "daemon.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen()
        assert outcome(run_probe(escape, "connect_unix", str(path)))["errno"] == errno.ENOENT


def test_a_host_abstract_unix_socket_is_unreachable(escape: Jail) -> None:
    name = f"shelljail-escape-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("\0" + name)
        server.listen()
        assert outcome(run_probe(escape, "connect_unix", "@" + name))["errno"] in (errno.ECONNREFUSED, errno.EPERM)


def test_a_host_loopback_port_is_unreachable(escape: Jail) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        accepted: list[object] = []
        accept_in_background(server, accepted)
        result = outcome(run_probe(escape, "connect_tcp", str(server.getsockname()[1])))
        # Landlock (ABI 4+) refuses a port that is not bridged (EACCES); without it, the jail's own
        # loopback has nothing there (ECONNREFUSED). Never the host's server.
        assert result["errno"] in (errno.EACCES, errno.ECONNREFUSED) and not accepted


def test_a_host_process_cannot_be_signalled(escape: Jail) -> None:
    host = subprocess.Popen(["sleep", "60"])
    try:
        assert outcome(run_probe(escape, "kill", str(host.pid)))["errno"] == errno.ESRCH
        assert host.poll() is None
    finally:
        host.kill()
        host.wait()


def test_the_jails_init_cannot_be_signalled(escape: Jail) -> None:
    # Landlock (ABI 6+) scopes signals to the command's own domain; pid 1 is outside it.
    from jail.sandbox import landlock

    if landlock.abi_version() < 6:
        pytest.skip("Landlock ABI 6 (signal scoping) is missing in this kernel")
    assert outcome(run_probe(escape, "kill", "1"))["errno"] == errno.EPERM


def test_ptrace_of_another_jailed_process_is_filtered(escape: Jail) -> None:
    # The probe's parent (the jail's pid 1) is another jailed process.
    assert outcome(run_probe(escape, "ptrace", "1")) == {"ret": -1, "errno": FILTERED}


def test_the_default_profile_answers_eperm(tmp_path: Path) -> None:
    jail = Jail(tmp_path / "jail")
    shutil.copy(PROBE, jail.workspace / "probe.py")
    jail.profile = "coding-agent"  # type: ignore[attr-defined]
    assert outcome(run_probe(jail, "keyctl")) == {"ret": -1, "errno": errno.EPERM}
