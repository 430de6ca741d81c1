"""The parent outside the jail: starts it, relays signals, enforces the wall time, keeps the log.

Ctrl-C (SIGINT) on `run` and `shelljail stop` are the stop button: the whole
jail is killed at once (its holder, then pid 1 and the pid namespace) and the
run exits 137. Other signals (SIGTERM, SIGHUP, ...) are forwarded to the
command, which may handle them.
"""

from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jail.errors import EXIT_NOT_FOUND, EXIT_SETUP, EXIT_STOPPED, EXIT_TIMEOUT, JailError
from jail.policy.spec import JailSpec
from jail.sandbox import pid1
from jail.sandbox import sequence as sandbox

if TYPE_CHECKING:
    from jail.sandbox.limits import PidsCgroup

# The signals an rlimit sends when it is hit, and the profile key that set it.
_LIMIT_SIGNALS = {signal.SIGXCPU: "cpu_seconds", signal.SIGXFSZ: "file_size"}


def run(spec: JailSpec, timeout: float | None, service: Any = None, audit: Any = None,
        recorder: Any = None, after_fork: tuple[Callable[[], None], ...] = ()) -> int:
    """Run the jailed command to its end; its exit status, 124 at the wall time, 137 when stopped.

    Raises JailError when the jail could not be set up (exit 125) or the
    command could not be executed (126, 127): those carry their exit code.
    """
    error_r, error_w = os.pipe2(os.O_CLOEXEC)
    started = time.monotonic()
    deadline = started + timeout if timeout else None
    counter = None
    if spec.learn and recorder is None:
        from jail.lab.learn import Recorder

        recorder = Recorder(spec.view.workspace)
    if spec.seccomp_notify:
        from jail.seccomp.filters import errno_number
        from jail.seccomp.notify import DenialCounter

        ours, theirs = socket_pair()
        spec = spec._replace(notify_channel=theirs)
        counter = DenialCounter(ours, errno_number(spec.seccomp_errno), audit,
                                 observe=recorder.observe if spec.learn else None)
    cap = None
    if (spec.limits.output_bytes or spec.secrets) and spec.stdout_fd is None:  # not over a set channel
        from jail.supervisor.output import OutputCap

        redactor = getattr(audit, "redactor", None)
        if redactor is None and spec.secrets:
            from jail.policy.secrets import Redactor

            redactor = Redactor(spec.secrets)
        cap = OutputCap(spec.limits.output_bytes or (1 << 62), audit, redactor)
        stdout_fd, stderr_fd = cap.streams()
        spec = spec._replace(stdout_fd=stdout_fd, stderr_fd=stderr_fd)
    own_fds = ((service.fileno(),) if service else ()) + ((counter.channel,) if counter else ()) + \
        spec.supervisor_fds
    pids = process_cgroup(spec)
    holder = sandbox.start(spec, error_w, close_in_child=own_fds, pids=pids)
    os.close(error_w)
    if cap is not None:
        cap.start()
    if counter is not None:
        os.close(spec.notify_channel)
        counter.start()
    if audit is not None:
        audit.state(holder_pid=holder, holder_start=_start_time(holder))
    if service is not None:
        service.start(holder)  # threads only after the fork
    for start in after_fork:
        start()
    pid1.forward_signals(holder)
    stopped: list[str] = []
    signal.signal(signal.SIGINT, lambda *_: (stopped.append("Ctrl-C on run"), _kill(holder)))
    pidfd = os.pidfd_open(holder)
    try:
        failure = _read_failure(error_r, deadline)
        if failure is None and service is not None:
            service.warm()  # the command runs: the judge's imports may overlap its start (DecisionService.warm)
        if failure is None and not _wait_readable(pidfd, deadline):
            failure = (EXIT_TIMEOUT, f"timed out after {timeout:g} s; everything in the jail was killed")
        if failure and failure[0] == EXIT_TIMEOUT:
            _kill(holder)
        _, status, usage = os.wait4(holder, 0)
        if cap is not None:
            cap.wait()  # everything the command wrote is out before we report
    finally:
        os.close(pidfd)
        os.close(error_r)
        refused = pids.refused() if pids is not None else 0
        if pids is not None:
            pids.remove()
    code = failure[0] if failure else pid1.exit_code(status)
    request = audit.stop_request() if audit is not None else None
    if request is not None or stopped:
        code = EXIT_STOPPED
        who = (f"{request.get('via', 'shelljail stop')} by {request.get('user')} (pid {request.get('pid')})"
               if request else stopped[0])
        failure = (EXIT_STOPPED, f"stopped: {who}; everything in the jail was killed")
    if audit is not None:
        if failure and failure[0] == EXIT_STOPPED:
            audit.event("stop", by=failure[1].split(";")[0].removeprefix("stopped: "))
        elif failure and failure[0] == EXIT_TIMEOUT:
            audit.event("limit", limit="wall_time", seconds=timeout)
        elif code - 128 in _LIMIT_SIGNALS:
            audit.event("limit", limit=_LIMIT_SIGNALS[code - 128], signal=signal.Signals(code - 128).name)
        if refused:
            audit.event("limit", limit="processes", refused_forks=refused)
        if spec.learn and counter is not None:
            audit.event("seccomp-learned", counts=counter.summary(), **recorder.summary())
        elif counter is not None and counter.summary():
            audit.event("seccomp-denials", counts=counter.summary())
        audit.event("exit", status=code, reason=failure[1] if failure else None,
                    seconds=round(time.monotonic() - started, 3), cpu_user=round(usage.ru_utime, 3),
                    cpu_system=round(usage.ru_stime, 3), peak_memory_kib=usage.ru_maxrss,
                    bytes_written=usage.ru_oublock * 512)
    if recorder is not None and counter is not None:
        recorder.syscalls = counter.summary()
    if failure:
        raise RunFailure(*failure)
    return code


def process_cgroup(spec: JailSpec) -> PidsCgroup | None:
    """For root, the pids cgroup that makes `limits.processes` hold (RLIMIT_NPROC exempts the host's
    uid 0, which root's jail runs as); None when the rlimit holds by itself. Refuses without one."""
    if spec.uid != 0 or not spec.limits.processes:
        return None
    from jail.sandbox.limits import NoPidsCgroup, make_pids_cgroup

    try:
        return make_pids_cgroup(spec.limits.processes)
    except NoPidsCgroup as exc:
        raise JailError(f"limits.processes cannot hold for root here: the kernel exempts the host's uid 0 from "
                        f"RLIMIT_NPROC, and no pids cgroup can be made ({exc})",
                        "run as an ordinary user, or give root a pids cgroup controller; see shelljail doctor",
                        ) from None


def socket_pair() -> tuple[int, int]:
    import _socket

    first, second = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    return first.detach(), second.detach()


def _kill(holder: int) -> None:
    """pid 1 follows the holder (PDEATHSIG), then the kernel kills the whole pid namespace."""
    try:
        os.kill(holder, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _start_time(pid: int) -> int | None:
    from jail.supervisor.procfs import start_time

    return start_time(pid)


class RunFailure(JailError):
    def __init__(self, code: int, message: str) -> None:
        hint = {
            EXIT_SETUP: "run `shelljail doctor` to see which kernel feature is missing",
            EXIT_NOT_FOUND: "check the command's name and the profile's PATH",
        }.get(code, "")
        super().__init__(message, hint, code)


def _wait_readable(fd: int, deadline: float | None) -> bool:
    while True:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        if select.select([fd], [], [], remaining)[0]:
            return True
        if remaining is not None and remaining <= 0:
            return False


def _read_failure(error_r: int, deadline: float | None) -> tuple[int, str] | None:
    """Read the error pipe until exec closes it; a (code, message) if setup failed."""
    data = b""
    while True:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready = select.select([error_r], [], [], remaining)[0]
        if not ready:
            return (EXIT_TIMEOUT, "timed out while starting the jail")
        chunk = os.read(error_r, 4096)
        if not chunk:
            break
        data += chunk
    if not data:
        return None
    code, _, message = data.decode(errors="replace").partition(" ")
    return int(code), message.strip().splitlines()[0] if message.strip() else "the jail failed"
