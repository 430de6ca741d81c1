"""The waiting half of a jail process: forward signals to one child, reap, report its status.

Used by pid 1 inside the jail (which must reap orphans and would otherwise
ignore signals it has no handler for) and by the process that holds the
namespaces outside it.
"""

from __future__ import annotations

import os
import signal

from jail.errors import EXIT_SETUP

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
             signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT)


def exit_code(status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128 + the signal."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def forward_signals(pid: int) -> None:
    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in FORWARDED:
        signal.signal(signum, forward)


def wait_for(child: int) -> int:
    """Reap every child until `child` exits; its exit code."""
    forward_signals(child)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return EXIT_SETUP  # the child vanished without a status: should not happen
        if pid == child:
            return exit_code(status)
