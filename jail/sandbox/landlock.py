"""Landlock: the jail's view enforced a second time, by the kernel's own LSM.

Defence in depth under the mount namespace: everything in the view may be
read and executed, but only the writable places (the workspace, the tmpfs
mounts, the jail's home, the profile's read-write binds, /dev's few
writable nodes) may be written, whatever a mount says. With ABI 6 and newer
the command is also scoped: it cannot signal processes outside its domain
(the jail's init) nor connect to abstract unix sockets created outside it.
With ABI 4 and newer, TCP connect is limited to the ports the network mode
bridges (the proxy, the forwards) unless `network.connect_local` lets the
command reach its own servers on the jail's loopback too; binding is free.

The raw syscalls are used rather than the PyPI `landlock` package: that
package knows filesystem rules only (no scoping), and checks errno instead
of return values, so a failed call poisons the next one.
"""

from __future__ import annotations

import ctypes
import os
import stat

from jail.kernel.libc import check, libc

CREATE_RULESET, ADD_RULE, RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

READ = EXECUTE | READ_FILE | READ_DIR
FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _NetPortAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


RULE_NET_PORT = 2
NET_CONNECT_TCP = 1 << 1


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def abi_version() -> int:
    """The kernel's Landlock ABI, 0 when Landlock is missing or disabled."""
    version = libc.syscall(CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    return max(int(version), 0)


def handled_fs(abi: int) -> int:
    mask = (1 << 13) - 1  # ABI 1
    if abi >= 2:
        mask |= REFER
    if abi >= 3:
        mask |= TRUNCATE
    if abi >= 5:
        mask |= IOCTL_DEV
    return mask


def restrict(writable: list[str], abi: int, executable_fds: tuple[int, ...] = (),
             connect_ports: tuple[int, ...] | None = None) -> None:
    """Allow reading and executing everywhere in the view, writing only beneath `writable`,
    executing the files open as `executable_fds` (outside the view: the real shells), and,
    unless `connect_ports` is None, connecting by TCP to those ports only."""
    handled = handled_fs(abi)
    net = NET_CONNECT_TCP if abi >= 4 and connect_ports is not None else 0
    attr = _RulesetAttr(handled, net, (SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = check(libc.syscall(CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)),
                    "landlock_create_ruleset")
    try:
        _allow(ruleset, "/", READ & handled)
        for path in writable:
            _allow(ruleset, path, handled)
        for fd in executable_fds:
            _add_rule(ruleset, fd, (EXECUTE | READ_FILE) & handled)
        for port in connect_ports or () if net else ():
            rule = _NetPortAttr(NET_CONNECT_TCP, port)
            check(libc.syscall(ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(RULE_NET_PORT), ctypes.byref(rule),
                               ctypes.c_uint32(0)), "landlock_add_rule (port)")
        check(libc.syscall(RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)), "landlock_restrict_self")
    finally:
        os.close(ruleset)


def _allow(ruleset: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # not in this jail's view
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            access &= FILE_ONLY
        _add_rule(ruleset, fd, access)
    finally:
        os.close(fd)


def _add_rule(ruleset: int, fd: int, access: int) -> None:
    rule = _PathBeneathAttr(access, fd)
    check(libc.syscall(ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(RULE_PATH_BENEATH), ctypes.byref(rule),
                       ctypes.c_uint32(0)), "landlock_add_rule")
