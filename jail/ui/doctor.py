"""`shelljail doctor`: which kernel features work here, and what to do when one does not.

Every check is tried for real, in a throwaway child process, rather than
inferred from version numbers or sysctls alone: a feature is "ok" only when
it just worked on this machine.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable
from typing import NamedTuple

from jail.kernel.libc import check, libc
from jail.kernel.mount import MS_PRIVATE, MS_REC, mount
from jail.kernel.unshare import CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWUSER
from jail.sandbox import namespaces

LANDLOCK_CREATE_RULESET = 444
LANDLOCK_CREATE_RULESET_VERSION = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000


class Result(NamedTuple):
    feature: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = False  # `run` cannot work without it


def _sysctl(name: str) -> str | None:
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as f:
            return f.read().strip()
    except OSError:
        return None


def _in_child(body: Callable[[], str]) -> tuple[bool, str]:
    """Run `body` in a forked child; (succeeded, what it said or why it failed)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            message, code = body(), 0
        except BaseException as exc:  # noqa: BLE001 - report whatever failed
            message, code = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)), 1
        os.write(write_end, message.encode()[:2000])
        os._exit(code)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 4096):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0, b"".join(chunks).decode(errors="replace")


def _enter(flags: int) -> None:
    namespaces.enter(os.getuid(), os.getgid(), flags)


def check_user_namespaces() -> Result:
    def body() -> str:
        _enter(CLONE_NEWUSER)
        return "unprivileged user namespaces work"

    ok, detail = _in_child(body)
    fix = ""
    if not ok:
        if _sysctl("kernel.apparmor_restrict_unprivileged_userns") == "1":
            fix = ("Ubuntu's AppArmor blocks them: sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 "
                   "(or add an AppArmor profile allowing userns for shelljail's python)")
        elif _sysctl("kernel.unprivileged_userns_clone") == "0":
            fix = "sudo sysctl -w kernel.unprivileged_userns_clone=1"
        elif _sysctl("user.max_user_namespaces") == "0":
            fix = "sudo sysctl -w user.max_user_namespaces=15000"
        else:
            fix = "enable CONFIG_USER_NS in the kernel, or ask the host (container runtimes often block it)"
    return Result("user namespaces", ok, detail, fix, required=True)


def check_jail() -> Result:
    """The whole jail, end to end: the definitive check that `run` works here."""
    from jail.policy import profile, spec
    from jail.supervisor import parent as supervisor

    try:
        workspace = os.getcwd() if os.access(os.getcwd(), os.W_OK) else "/tmp"
        loaded = profile.load(profile.DEFAULT_PROFILE)
        jail_spec = spec.build(loaded, workspace, ["/bin/true"], os.environ)
        code = supervisor.run(jail_spec, timeout=30)
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return Result("jail (run -- /bin/true)", False, str(exc),
                      "see the lines above for the missing feature", required=True)
    ok = code == 0
    return Result("jail (run -- /bin/true)", ok, "user, mount, pid, ipc, uts, net namespaces, new root"
                  if ok else f"exit status {code}", "" if ok else "see the lines above", required=True)


def check_mount_setattr() -> Result:
    def body() -> str:
        from jail.kernel.mount import MOUNT_ATTR_RDONLY, mount_setattr

        _enter(CLONE_NEWNS)
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        mount("tmpfs", "/tmp", "tmpfs", 0, "size=4k")
        mount_setattr("/tmp", MOUNT_ATTR_RDONLY)
        return "recursive read-only binds"

    ok, detail = _in_child(body)
    return Result("mount_setattr", ok, detail, "" if ok else "needs Linux 5.12 or newer", required=True)


def check_network_namespace() -> Result:
    def body() -> str:
        from jail.sandbox.network import loopback_up

        _enter(CLONE_NEWNET)
        loopback_up()
        return "private network namespace with loopback"

    ok, detail = _in_child(body)
    return Result("network namespaces", ok, detail, "" if ok else "enable CONFIG_NET_NS", required=True)


def check_seccomp() -> Result:
    def body() -> str:
        class SockFilter(ctypes.Structure):
            _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                        ("k", ctypes.c_uint)]

        class SockFprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

        allow = (SockFilter * 1)(SockFilter(0x06, 0, 0, SECCOMP_RET_ALLOW))  # BPF_RET|BPF_K
        program = SockFprog(1, allow)
        libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
        check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0), "no_new_privs")
        check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(program), 0, 0), "seccomp")
        return "a BPF filter loads"

    ok, detail = _in_child(body)
    if not ok:
        return Result("seccomp", ok, detail, "enable CONFIG_SECCOMP_FILTER")
    try:
        from jail.policy import profile
        from jail.seccomp import filters as seccomp

        policy = profile.load(profile.DEFAULT_PROFILE).seccomp
        program = seccomp.build(policy.errno, policy.kill, policy.log, policy.errno_value)
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return Result("seccomp", False, f"the default policy does not compile: {exc}",
                      "install libseccomp2 (apt install libseccomp2)")
    guard_ok, guard = _in_child(lambda: _setid_guard_holds(program))
    if not guard_ok:
        return Result("seccomp", False, f"the setid guard does not hold: {guard}", "report this as a bug",
                      required=True)
    return Result("seccomp", True, f"filters load; the default policy is {len(program) // 8} BPF instructions; "
                  f"{guard}")


def _setid_guard_holds(program: bytes) -> str:
    """Under the default filter, chmod 4600 of an empty file in a private directory must fail."""
    import errno
    import shutil
    import tempfile

    from jail.seccomp import filters as seccomp

    directory = tempfile.mkdtemp(prefix="shelljail-doctor-")  # 0700: no one else reaches the file
    try:
        path = os.path.join(directory, "f")
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
        check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0), "no_new_privs")
        seccomp.load(program)
        try:
            os.chmod(path, 0o4600)
        except PermissionError:
            return "chmod u+s is refused (setid guard)"
        raise OSError(errno.EEXIST, "chmod 4600 succeeded under the filter")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def check_landlock() -> Result:
    version = libc.syscall(LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                           ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    if version > 0:
        features = ["filesystem"] + (["truncate"] if version >= 3 else []) + (["tcp"] if version >= 4 else []) \
            + (["device ioctl"] if version >= 5 else []) + (["signal and socket scoping"] if version >= 6 else [])
        return Result("landlock", True, f"ABI version {version}: {', '.join(features)}")
    err = ctypes.get_errno()
    return Result("landlock", False, os.strerror(err),
                  "needs Linux 5.13+ with CONFIG_SECURITY_LANDLOCK and 'landlock' in the lsm= boot option")


def check_landlock_log() -> Result:
    """Landlock reports its denials only through the kernel's audit subsystem: say whether that is on."""
    import socket
    import struct

    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9) as audit:  # NETLINK_AUDIT
            audit.settimeout(1)
            audit.bind((0, 0))
            audit.send(struct.pack("=IHHII", 16, 1000, 1, 1, 0))  # AUDIT_GET, NLM_F_REQUEST
            reply = audit.recv(8192)
    except OSError as exc:
        return Result("landlock denial log", False, f"cannot ask the kernel's audit status ({exc.strerror})",
                      "Landlock denials reach the audit log only where audit is on; seccomp denials are counted")
    kind = struct.unpack("=H", reply[4:6])[0]
    if kind != 1000 or len(reply) < 24:
        return Result("landlock denial log", False, "the kernel's audit status is not readable here",
                      "Landlock denials reach the audit log only where audit is on; seccomp denials are counted")
    if struct.unpack("=I", reply[20:24])[0]:
        return Result("landlock denial log", True,
                      "the kernel's audit is on: Landlock denials go to its log (auditd), not to the session's")
    return Result("landlock denial log", False, "the kernel's audit is off, so Landlock denials are not recorded "
                  "anywhere (shelljail does not turn on a host-wide switch); seccomp denials are counted",
                  "auditd (or auditctl -e 1) turns audit on for the whole machine")


def check_overlayfs() -> Result:
    def body() -> str:
        _enter(CLONE_NEWNS)
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        mount("tmpfs", "/tmp", "tmpfs", 0, "size=64k")
        for name in ("lower", "upper", "work", "merged"):
            os.mkdir(f"/tmp/{name}")
        mount("overlay", "/tmp/merged", "overlay", 0,
              "lowerdir=/tmp/lower,upperdir=/tmp/upper,workdir=/tmp/work,userxattr")
        return "overlayfs in a user namespace (userxattr)"

    ok, detail = _in_child(body)
    return Result("overlayfs", ok, detail, "" if ok else "needs Linux 5.11+ for overlayfs in a user namespace")


def check_cgroups() -> Result:
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        writable = os.access("/sys/fs/cgroup", os.W_OK)
        return Result("cgroups", True, "v2" + (", writable" if writable else ", not delegated to this user"))
    if os.path.isdir("/sys/fs/cgroup/memory"):
        return Result("cgroups", True, "v1 (hybrid); limits use rlimits, and root's process limit a pids cgroup")
    return Result("cgroups", False, "no cgroup filesystem found", "mount cgroup2 on /sys/fs/cgroup")


def check_process_limit() -> Result:
    """What makes `limits.processes` hold for this caller, tried with a real bounded fork loop."""
    from jail.kernel.unshare import CLONE_NEWUSER as NEWUSER
    from jail.sandbox import limits

    ceiling, attempts = 4, 16

    def forks() -> str:
        got, children = 0, []
        for _ in range(attempts):
            try:
                pid = os.fork()
            except BlockingIOError:
                break
            if pid == 0:
                os._exit(0)  # a zombie until reaped below: it still counts
            got, children = got + 1, [*children, pid]
        for pid in children:
            os.waitpid(pid, 0)
        return str(got)

    if os.getuid() != 0:
        def rlimit() -> str:
            import resource

            _enter(NEWUSER)  # as the jail does: the count is per user namespace
            resource.setrlimit(resource.RLIMIT_NPROC, (ceiling, ceiling))
            return forks()

        ok, detail = _in_child(rlimit)
        holds = ok and detail.isdigit() and int(detail) < ceiling
        return Result("process limit", holds, f"RLIMIT_NPROC, counted in the jail's user namespace ({attempts} "
                      f"forks under a limit of {ceiling} got {detail})", "" if holds else "needs Linux 5.14+")
    try:
        cgroup = limits.make_pids_cgroup(ceiling)
    except limits.NoPidsCgroup as exc:
        return Result("process limit", False, f"does not hold for root: RLIMIT_NPROC exempts the host's uid 0 and "
                      f"no pids cgroup can be made ({exc}); run refuses root while limits.processes is set",
                      "run as an ordinary user, or give root a pids cgroup controller", required=True)

    def in_cgroup() -> str:
        cgroup.enter()
        return forks()

    try:
        ok, detail = _in_child(in_cgroup)
    finally:
        cgroup.remove()
    holds = ok and detail.isdigit() and int(detail) < ceiling
    where = os.path.dirname(cgroup.path)
    return Result("process limit", holds, f"pids cgroup under {where}: holds for root, which RLIMIT_NPROC does not "
                  f"({attempts} forks under pids.max = {ceiling} got {detail})" if holds else
                  f"the pids cgroup under {where} did not stop a fork loop ({detail})",
                  "" if holds else "check the pids controller")


def check_credentials() -> Result:
    """Which credential locations exist in the caller's home, and whether the default view hides them."""
    import fnmatch

    from jail.policy import profile, spec, view
    from jail.policy.paths import CREDENTIALS

    user, home = spec.caller_identity(os.environ)
    found = [c for c in CREDENTIALS if os.path.lexists(os.path.join(home, c))]
    loaded = profile.load(profile.DEFAULT_PROFILE)
    workspace = "/tmp" if os.path.realpath(os.getcwd()) in (home, "/") else os.getcwd()
    try:
        resolved = view.resolve(loaded, workspace, home, user)
    except Exception as exc:  # noqa: BLE001 - the jail check reports setup problems
        return Result("credentials", False, f"cannot resolve the default view: {exc}")
    sources = [m.source for m in resolved.mounts if isinstance(m, view.Bind)]
    exposed = [c for c in found if any(os.path.realpath(os.path.join(home, c)) == s or
                                       os.path.realpath(os.path.join(home, c)).startswith(s + "/") for s in sources)]
    agent = "SSH_AUTH_SOCK" in os.environ and any(fnmatch.fnmatchcase("SSH_AUTH_SOCK", k)
                                                  for k in loaded.environment.keep)
    if exposed or agent:
        what = ", ".join(f"~/{c}" for c in exposed) + (" SSH_AUTH_SOCK" if agent else "")
        return Result("credentials", False, f"exposed by the default profile: {what}",
                      "remove them from the profile's read_only/read_write lists or environment.keep")
    listed = ", ".join(f"~/{c}" for c in found) or "none found"
    socket = "; SSH_AUTH_SOCK is not passed" if "SSH_AUTH_SOCK" in os.environ else ""
    return Result("credentials", True, f"hidden under the default profile: {listed}{socket}")


def check_path_targets() -> Result:
    """What the default profile binds, read-only, for the programs on your PATH installed in your home
    (filesystem.path_targets), and which it refuses: a program linked into ~/.ssh is not run."""
    from jail.display import shown
    from jail.policy import profile, spec, view

    user, home = spec.caller_identity(os.environ)
    loaded = profile.load(profile.DEFAULT_PROFILE)
    if not loaded.filesystem.path_targets:
        return Result("programs in the home", True, f"not looked for ({loaded.name} has path_targets = false)")
    workspace = "/tmp" if os.path.realpath(os.getcwd()) in (home, "/") else os.getcwd()
    try:
        found = view.resolve(loaded, workspace, home, user).programs
    except Exception as exc:  # noqa: BLE001 - the jail check reports setup problems
        return Result("programs in the home", False, f"cannot resolve the default view: {exc}")

    def named(path: str) -> str:
        return shown("~" + path[len(home):] if path.startswith(home + "/") else path)

    added = "; ".join(f"{named(a.path)} ({shown(a.why)})" for a in found.added) or "nothing needed"
    if not found.refused:
        return Result("programs in the home", True, f"bound read-only: {added}")
    refused = "; ".join(f"{named(r.path)} ({shown(r.why)})" for r in found.refused)
    return Result("programs in the home", False, f"bound read-only: {added}. Not bound, so not runnable in the "
                  f"jail: {refused}", "move the program out of that folder, or bind a folder of its own with "
                  "run --read-only PATH")


def check_launcher(path: str) -> Result:
    """Which shell launcher the jail's /bin/sh and /bin/bash lead to (the run finds it: interposer/service.py).
    The Python fallback works; it costs a Python start-up on every shell the jail starts."""
    if not path.endswith(".py"):
        return Result("shell launcher", True, f"compiled: {path}")
    forced = os.environ.get("SHELLJAIL_PYTHON_LAUNCHER") == "1"
    return Result("shell launcher", False,
                  f"the Python fallback {path}" + (" (SHELLJAIL_PYTHON_LAUNCHER=1)" if forced else
                                                   ": no compiled launcher was built"),
                  "" if forced else "install a C compiler (apt install gcc libc6-dev), then make launcher in a "
                  "checkout or reinstall the wheel")


CHECKS = (check_user_namespaces, check_mount_setattr, check_network_namespace, check_seccomp,
          check_landlock, check_landlock_log, check_overlayfs, check_cgroups, check_process_limit, check_credentials,
          check_path_targets, check_jail)


def main(launcher: str) -> int:
    """`launcher`: the path of the launcher the run would bind (the CLI asks the interposer for it)."""
    results = [run_check() for run_check in CHECKS] + [check_launcher(launcher)]
    width = max(len(r.feature) for r in results)
    colour = sys.stdout.isatty()
    for r in results:
        mark = "ok" if r.ok else ("FAIL" if r.required else "missing")
        if colour:
            mark = f"\033[{'32' if r.ok else '31' if r.required else '33'}m{mark:7}\033[0m"
        print(f"{r.feature:{width}}  {mark:7}  {r.detail}")
        if r.fix:
            print(f"{'':{width}}  {'':7}  fix: {r.fix}")
    broken = [r.feature for r in results if r.required and not r.ok]
    if broken:
        print(f"\nshelljail run cannot work here: {', '.join(broken)}")
        return 1
    print("\nshelljail run works here.")
    return 0
