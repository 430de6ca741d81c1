"""Drop every capability for good: bounding set, securebits, sets, no_new_privs."""

from __future__ import annotations

import ctypes

import prctl

from jail.kernel.libc import check, libc

PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
# Root inside the jail must not regain capabilities by exec, or by changing uid.
_SECUREBITS = (
    prctl.SECBIT_NOROOT | prctl.SECBIT_NOROOT_LOCKED
    | prctl.SECBIT_NO_SETUID_FIXUP | prctl.SECBIT_NO_SETUID_FIXUP_LOCKED
    | prctl.SECBIT_KEEP_CAPS_LOCKED
)


def _last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def drop_all() -> None:
    """After this, neither this process nor anything it execs holds a capability."""
    for cap in range(_last_cap() + 1):  # the kernel may know more caps than python-prctl
        prctl.capbset_drop(cap)
    prctl.set_securebits(_SECUREBITS)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    check(libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient capabilities")
    prctl.cap_inheritable.limit()
    prctl.cap_effective.limit()
    prctl.cap_permitted.limit()
    prctl.set_no_new_privs(True)
