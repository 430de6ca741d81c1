"""The syscall policy: a seccomp-BPF filter built from the profile with pyseccomp.

The filter is compiled outside the jail (libseccomp, via pyseccomp) into a
BPF program, cached by content, and loaded in the jailed command just
before exec with the raw seccomp(2) syscall, so the jail's processes need
neither libseccomp nor its start-up time.

It is a deny-list over an allow default: the profile names syscall groups
(`@mount`, `@debug`, ...) and single syscalls, each with an action (errno,
kill, log). Some entries look at arguments: `clone` with namespace flags,
`clone3` (ENOSYS, so libc falls back to `clone`, where the flags can be
seen), `socket` of AF_VSOCK or AF_ALG, `ioctl` TIOCSTI/TIOCLINUX (only the
low 32 bits of the request are compared: CVE-2019-10063), `personality`
other than the harmless values. Only the native architecture is allowed:
a syscall of another ABI (i386 `int 0x80`, x32) kills the process.

Whatever the profile says, no file mode with S_ISUID or S_ISGID is ever set
(`setid_guard`): the jail's root is the host's root, so a setuid file it
left in the workspace would run as root for any host user.
"""

from __future__ import annotations

import ctypes
import errno
import os
import zlib
from typing import Any

from jail.errors import JailError
from jail.seccomp.groups import (
    AF_ALG,
    AF_VSOCK,
    CORE,
    GROUPS,
    HARMLESS_PERSONALITY_BITS,
    NAMESPACE_FLAGS,
    S_ISGID,
    S_ISUID,
    SETID_MODE_ARGUMENT,
    SETID_UNREADABLE,
    TIOCLINUX,
    TIOCSTI,
    WATCHED,
    expand,
    names_in,
)

_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}


def build(errno_names: tuple[str, ...], kill_names: tuple[str, ...], log_names: tuple[str, ...],
          errno_value: str, notify: bool = False) -> bytes:
    """The BPF program for a policy, from the cache or compiled now.

    A cache file holds the policy it was compiled from, then the program: a file
    whose policy differs is never used (crc32 names files; hashlib costs 3 ms to import).
    """
    policy = (errno_names, kill_names, log_names, errno_value, notify, os.uname().machine, VERSION)
    key = repr(policy).encode() + b"\n"
    return cached(key, lambda: _compile(errno_names, kill_names, log_names, errno_value, notify))


def cached(key: bytes, compile_: Any) -> bytes:
    """The program stored under `key`, or `compile_()` stored now.

    A cache file decides what the next jail may do, so it is read and written with cachedir's
    helpers (no symlink, a private regular file, bounded to the largest filter the kernel takes)
    and holds its whole key before the program.
    """
    from jail import cachedir
    from jail.seccomp import groups

    name = f"{zlib.crc32(key):08x}.bpf"  # the same file for the same policy: a stale program is replaced
    # The code that compiles is part of the key too: a rule changed without a VERSION bump is compiled again.
    key = repr((cachedir.stamp(__file__), cachedir.stamp(groups.__file__))).encode() + b"\n" + key
    data = cachedir.read("seccomp", name, len(key) + _MAX_PROGRAM)
    program = data[len(key):] if data is not None and data.startswith(key) else b""
    if program and len(program) % 8 == 0:
        return program
    program = compile_()
    cachedir.write("seccomp", name, key + program)
    return program


_MAX_PROGRAM = 4096 * 8  # BPF_MAXINSNS instructions of 8 bytes


def build_allow(allow_names: tuple[str, ...], errno_value: str, notify: bool) -> bytes:
    """A second filter: only the core and `allow_names` pass; the rest fails (counted with `notify`).

    It stacks on the deny-list filter (the kernel applies the stricter answer), so argument
    rules there (clone with namespace flags, ...) still hold for a syscall allowed here.
    """
    key = repr(("allow", allow_names, errno_value, notify, os.uname().machine, VERSION)).encode() + b"\n"
    return cached(key, lambda: _compile_list(names_in(allow_names), "notify" if notify else errno_value))


def build_learn() -> bytes:
    """The learning filter: the core passes, every other syscall goes to the supervisor to be recorded."""
    key = repr(("learn", WATCHED, os.uname().machine, VERSION)).encode() + b"\n"
    return cached(key, lambda: _compile_list((), "notify", skip=WATCHED))


def _compile_list(allowed: tuple[str, ...], default: str, skip: tuple[str, ...] = ()) -> bytes:
    import pyseccomp as sc

    action = sc.NOTIFY if default == "notify" else sc.ERRNO(errno_number(default))
    filter_ = sc.SyscallFilter(action)
    filter_.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
    filter_.set_attr(sc.Attr.CTL_OPTIMIZE, 2)
    for name in dict.fromkeys((*CORE, *allowed)):
        if name in skip or _unknown_syscall(sc, name):
            continue
        filter_.add_rule(sc.ALLOW, name)
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb") as out:
        filter_.export_bpf(out)
    with os.fdopen(read_end, "rb") as data:
        return data.read()


VERSION = 7  # bump when the rules below change, to invalidate cached programs


def _compile(errno_names: tuple[str, ...], kill_names: tuple[str, ...], log_names: tuple[str, ...],
             errno_value: str, notify: bool = False) -> bytes:
    try:
        import pyseccomp as sc
    except (ImportError, OSError) as exc:
        raise JailError(f"seccomp needs pyseccomp and libseccomp2 ({exc})",
                        "run make setup, or set seccomp.enabled = false in the profile") from None

    number = getattr(errno, errno_value, None)
    if not isinstance(number, int):
        raise JailError(f"seccomp.errno_value {errno_value!r} is not an errno name", "use e.g. EPERM")
    # With `notify`, denials go to the supervisor, which answers with the same errno and counts them.
    actions = {"errno": sc.NOTIFY if notify else sc.ERRNO(number), "kill": sc.KILL_PROCESS, "log": sc.LOG}
    filter_ = sc.SyscallFilter(sc.ALLOW)
    filter_.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)  # i386 and x32 syscalls: killed
    filter_.set_attr(sc.Attr.CTL_OPTIMIZE, 2)  # binary tree: cheaper per allowed syscall
    done: set[str] = set()
    refused: set[str] = set()  # whatever the arguments
    for kind, names in (("kill", kill_names), ("errno", errno_names), ("log", log_names)):
        for entry in expand(names):
            syscall = entry if isinstance(entry, str) else entry[0]
            if syscall in done:
                continue  # the first (most severe) action named wins
            done.add(syscall)
            if kind != "log" and isinstance(entry, str):
                refused.add(entry)
            try:
                if kind == "log" and isinstance(entry, str) and entry in SETID_UNREADABLE:
                    continue  # the guard's refusal below wins over logging
                narrowing = setid_narrowing(entry) if kind == "log" and isinstance(entry, str) else None
                if narrowing is not None:
                    filter_.add_rule(actions[kind], entry, sc.Arg(narrowing[0], sc.MASKED_EQ, *narrowing[1:]))
                    continue
                _add(sc, filter_, actions[kind], entry)
            except (OSError, ValueError, RuntimeError) as exc:
                if isinstance(entry, str) and _unknown_syscall(sc, entry):
                    if entry in _ALL_GROUP_SYSCALLS:
                        continue  # a group member this architecture does not have
                    raise JailError(f"seccomp: no syscall named {entry!r} on {os.uname().machine}",
                                    "fix the name in the profile's [seccomp] lists") from None
                raise JailError(f"seccomp: cannot add a rule for {entry!r}: {exc}", "") from None
    setid_guard(sc, filter_, actions["errno"], sc.ALLOW, refused)
    read_end, write_end = os.pipe()  # a filter is a few KiB: it fits in the pipe's buffer
    with os.fdopen(write_end, "wb") as out:
        filter_.export_bpf(out)
    with os.fdopen(read_end, "rb") as data:
        return data.read()


_ALL_GROUP_SYSCALLS = {e if isinstance(e, str) else e[0] for entries in GROUPS.values() for e in entries}


def _unknown_syscall(sc: Any, name: str) -> bool:
    try:
        return sc.resolve_syscall(sc.Arch.NATIVE, name) < 0
    except Exception:  # noqa: BLE001 - libseccomp signals unknown names in several ways
        return True


def _add(sc: Any, filter_: Any, action: int, entry: str | tuple[str, str]) -> None:
    if isinstance(entry, str):
        filter_.add_rule(action, entry)
        return
    syscall, rule = entry
    if rule == "namespace-flags":
        for flag in NAMESPACE_FLAGS:
            filter_.add_rule(action, syscall, sc.Arg(0, sc.MASKED_EQ, flag, flag))
    elif rule == "enosys":
        filter_.add_rule(sc.ERRNO(errno.ENOSYS), syscall)
    elif rule == "af-vsock-alg":
        for family in (AF_VSOCK, AF_ALG):
            filter_.add_rule(action, syscall, sc.Arg(0, sc.EQ, family))
    elif rule == "tiocsti":
        for request in (TIOCSTI, TIOCLINUX):
            filter_.add_rule(action, syscall, sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))
    elif rule == "unsafe":
        # Allowed: 0, 8, 0x20000, 0x20008 and the query 0xffffffff. libseccomp takes one
        # comparison per argument, so: a bit outside the harmless ones set while bit 31 is
        # clear, or bit 31 set while another bit is clear (anything but the query).
        top = 1 << 31
        for bit in range(31):
            if (1 << bit) & HARMLESS_PERSONALITY_BITS:
                continue
            filter_.add_rule(action, syscall, sc.Arg(0, sc.MASKED_EQ, (1 << bit) | top, 1 << bit))
        for bit in range(31):
            filter_.add_rule(action, syscall, sc.Arg(0, sc.MASKED_EQ, (1 << bit) | top, top))
    else:
        raise ValueError(f"unknown argument rule {rule}")


def setid_rules(deny: str) -> list[tuple[str, int | None, int, str]]:
    """The guard's rules: (syscall, mode argument or None for all calls, bit, errno name or `deny`)."""
    rules: list[tuple[str, int | None, int, str]] = [
        (name, index, bit, deny) for name, index in SETID_MODE_ARGUMENT.items() for bit in (S_ISUID, S_ISGID)]
    return rules + [(name, None, 0, errno_value or deny) for name, errno_value in SETID_UNREADABLE.items()]


def setid_guard(sc: Any, filter_: Any, deny: int, default: int,
                refused: set[str] | frozenset[str] = frozenset()) -> None:
    """Refuse, with `deny`, every mode with S_ISUID or S_ISGID (see SETID_MODE_ARGUMENT).

    The host's uid 0 is the jail's root (namespaces.py), so a setuid file it makes is
    setuid-root on the host. libseccomp compares one bit per rule, so each bit has its
    own. An unconditional rule always beats a conditional one in libseccomp: a rule that
    allows or logs one of these syscalls must be narrowed (`setid_narrowing`). `refused`:
    syscalls the filter already refuses whatever their arguments.
    """
    for name, index, bit, errno_name in setid_rules(""):
        if name in refused:
            continue
        action = sc.ERRNO(errno_number(errno_name)) if errno_name else deny
        if action == default or _unknown_syscall(sc, name):
            continue  # libseccomp refuses a rule that repeats the default (which already refuses)
        try:
            if index is None:
                filter_.add_rule(action, name)
            else:
                filter_.add_rule(action, name, sc.Arg(index, sc.MASKED_EQ, bit, bit))
        except FileExistsError:
            pass  # the same comparison is there already, with another refusal (an imported OCI rule)


def setid_narrowing(name: str, compared: tuple[tuple[int, str, int, int], ...] = ()) -> tuple[int, int, int] | None:
    """For a rule that lets `name` through: the comparison (argument, mask, value) that narrows it to
    modes without S_ISUID and S_ISGID, or None if none is needed. `compared`: the rule's own
    comparisons, OCI-style (argument, op, value, valueTwo); libseccomp takes one per argument.
    A rule letting a SETID_UNREADABLE call through must be left out instead."""
    index = SETID_MODE_ARGUMENT.get(name)
    if index is None:
        return None
    for argument, op, value, value_two in compared:
        if argument != index:
            continue
        bits = S_ISUID | S_ISGID
        if op == "SCMP_CMP_MASKED_EQ" and value & bits == bits and not value_two & bits:
            return None  # narrowed already (an exported policy read back)
        raise ValueError(f"a rule on {name} compares its mode argument, which the setid guard needs")
    return (index, S_ISUID | S_ISGID, 0)


def errno_number(name: str) -> int:
    return int(getattr(errno, name))


def load(program: bytes, new_listener: bool = False) -> int | None:
    """Install the filter on this process (no_new_privs must be set); it survives exec.

    With `new_listener`, the kernel returns the fd on which the filter's
    USER_NOTIF denials arrive (see seccomp_notify.py)."""

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.addressof(buffer))
    from jail.kernel.libc import check, libc

    number = _SYS_SECCOMP.get(os.uname().machine)
    if number is None:
        raise OSError(errno.ENOSYS, f"seccomp: unknown architecture {os.uname().machine}")
    flags = _SECCOMP_FILTER_FLAG_NEW_LISTENER if new_listener else 0
    result = check(libc.syscall(number, ctypes.c_uint(_SECCOMP_SET_MODE_FILTER), ctypes.c_uint(flags),
                                ctypes.byref(fprog)), "seccomp")
    return int(result) if new_listener else None
