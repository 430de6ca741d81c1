"""Resource limits from the profile, applied as rlimits just before exec."""

from __future__ import annotations

import resource

from .profile import Limits


def rlimits(limits: Limits) -> dict[int, int]:
    """The rlimits a profile asks for; soft and hard alike, so they cannot be raised."""
    wanted = {
        resource.RLIMIT_CPU: limits.cpu_seconds,
        resource.RLIMIT_AS: limits.address_space,
        resource.RLIMIT_NPROC: limits.processes,
        resource.RLIMIT_NOFILE: limits.open_files,
        resource.RLIMIT_FSIZE: limits.file_size,
    }
    return {which: value for which, value in wanted.items() if value is not None}


def apply(limits: Limits) -> None:
    for which, value in rlimits(limits).items():
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)  # never ask for more than the caller has
        # CPU: a hard limit one second above the soft one, so that SIGXCPU (which says which
        # limit was hit) arrives before the kernel's SIGKILL at the hard limit.
        ceiling = value + 1 if which == resource.RLIMIT_CPU and (hard == resource.RLIM_INFINITY or
                                                                 value + 1 <= hard) else value
        resource.setrlimit(which, (value, ceiling))
