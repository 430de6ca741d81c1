"""The jail's sequence, in the order it happens.

    supervisor (outside, `shelljail run`)
      └─ holder: unshares the namespaces, maps ids, waits        (host pid namespace)
           └─ init, pid 1: builds the root, drops privileges, reaps (jail pid namespace)
                └─ the command, pid 2: new session, limits, exec

Each process dies with its parent (PDEATHSIG), and when pid 1 dies the
kernel kills everything left in the pid namespace: nothing outlives `run`.
A failure before exec goes up the error pipe as one line, "CODE message".
"""

from __future__ import annotations

import os
import select
import signal
import sys

import prctl

from jail.errors import EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_SETUP
from jail.policy.spec import JailSpec
from jail.sandbox import capabilities, landlock, limits, mounts, namespaces, network, pid1
from jail.seccomp import filters as seccomp
from jail.seccomp import notify as seccomp_notify

TYPE_CHECKING = False  # typing is not imported at run time: start-up time
if TYPE_CHECKING:
    from typing import Any

HOSTNAME = "shelljail"


def start(spec: JailSpec, error_pipe: int, close_in_child: tuple[int, ...] = (),
          pids: limits.PidsCgroup | None = None) -> int:
    """Fork the holder; its pid. Errors before exec arrive on `error_pipe`.

    With `pids`, the holder enters that cgroup first, so every process of the jail counts in it."""
    supervisor = os.getpid()
    pid = os.fork()
    if pid == 0:
        for fd in close_in_child:  # the supervisor's own sockets stay outside
            os.close(fd)
        _guard(error_pipe, lambda: _holder(spec, error_pipe, supervisor, pids))
    return pid


def _guard(error_pipe: int, body: object) -> None:
    """Run a child's body; never return into the caller's Python (exceptions included)."""
    try:
        code = body()  # type: ignore[operator]
    except BaseException as exc:  # noqa: BLE001 - a child must report, whatever it was
        code = report(error_pipe, EXIT_SETUP, describe(exc))
    os._exit(code)


def describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


def report(error_pipe: int, code: int, message: str) -> int:
    line = f"{code} {' '.join(message.split())}\n".encode()
    try:
        os.write(error_pipe, line[:4000])
    except OSError:
        pass
    return code


def _holder(spec: JailSpec, error_pipe: int, supervisor: int, pids: limits.PidsCgroup | None) -> int:
    prctl.set_pdeathsig(signal.SIGKILL)
    if os.getppid() != supervisor:
        return EXIT_SETUP  # the supervisor died before we could watch it
    if pids is not None:
        pids.enter()  # before anything forks, while still the host's root in the host's namespaces
    os.setpgid(0, 0)  # the terminal's ^C reaches the supervisor, which forwards it once
    namespaces.enter(spec.uid, spec.gid)
    alive_r, alive_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(alive_w)
        _guard(error_pipe, lambda: _init(spec, error_pipe, alive_r))
    os.close(alive_r)
    os.close(error_pipe)
    return pid1.wait_for(pid)


def _init(spec: JailSpec, error_pipe: int, alive: int) -> int:
    """pid 1: contain, fork the command, then reap until it exits."""
    prctl.set_pdeathsig(signal.SIGKILL)
    poller = select.poll()
    poller.register(alive, select.POLLIN)
    if poller.poll(0):  # the holder already died (its end of the pipe closed)
        return EXIT_SETUP
    os.close(alive)
    export, listeners = contain(spec)  # listening before the command exists: its first connect waits
    pid = os.fork()
    if pid == 0:
        _guard(error_pipe, lambda: _exec(spec, error_pipe))
    os.close(error_pipe)
    network.bridge(listeners)  # to the supervisor, after the fork
    code = pid1.wait_for(pid)
    if export is not None and not _save_layer(*export):
        return code or EXIT_SETUP
    return code


def _save_layer(layer: int, upper: int) -> bool:
    """A size-capped overlay's layer lives on the jail's tmpfs: copy it out, once nothing else runs."""
    from jail.recovery import overlay

    try:
        os.kill(-1, signal.SIGKILL)  # as pid 1: every other process of the jail
    except ProcessLookupError:
        pass
    while True:
        try:
            os.wait()
        except ChildProcessError:
            break
    try:
        overlay.export(layer, upper)
    except (OSError, ValueError) as exc:
        os.write(2, f"shelljail: could not save the overlay's changes: {exc}\n".encode())
        return False
    return True


def contain(spec: JailSpec) -> tuple[tuple[int, int] | None, list[Any]]:
    """Everything between fresh namespaces and a process that may run untrusted code."""
    export = mounts.build_root(spec.view, spec.files, spec.limits.tmpfs_size)
    network.set_hostname(HOSTNAME)
    network.loopback_up()
    listeners = network.listen(spec.bridges)  # while pid 1 may still bind any port
    prctl.set_dumpable(False)  # the command cannot ptrace or read the memory of pid 1
    capabilities.drop_all()
    return export, listeners


def _landlock(spec: JailSpec) -> None:
    abi = landlock.abi_version()
    if abi == 0:
        if spec.landlock_mode == "required":
            raise OSError(0, "Landlock is required by the profile but this kernel does not offer it "
                             "(see shelljail doctor)")
        return
    landlock.restrict(list(spec.writable), abi, spec.executable_fds, spec.connect_ports)


def _exec(spec: JailSpec, error_pipe: int) -> int:
    os.setsid()  # no controlling terminal: no TIOCSTI into the caller's shell
    for signum in range(1, signal.NSIG):
        if signum not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(signum, signal.SIG_DFL)  # Python ignores SIGPIPE and SIGXFSZ
            except (OSError, ValueError):
                pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    limits.apply(spec.limits)
    os.chdir(spec.cwd)
    if spec.landlock_mode != "off":
        _landlock(spec)
    if spec.seccomp is not None:  # last: from here on, only the exec
        # With a second filter (an allow-list, or learning), that one notifies the supervisor.
        listener = seccomp.load(spec.seccomp, new_listener=spec.seccomp_notify and spec.seccomp_second is None)
        if spec.seccomp_second is not None:
            listener = seccomp.load(spec.seccomp_second, new_listener=spec.seccomp_notify)
        if listener is not None and spec.notify_channel is not None:
            seccomp_notify.send_listener(spec.notify_channel, listener)
    for target, source in ((0, spec.stdin_fd), (1, spec.stdout_fd), (2, spec.stderr_fd)):
        if source is not None:
            os.dup2(source, target)  # the output cap's pipe (dup2 clears close-on-exec)
    os.closerange(3, error_pipe)
    os.closerange(error_pipe + 1, 1 << 16)
    sys.stdout.flush()
    try:
        os.execvpe(spec.argv[0], list(spec.argv), spec.env)
    except FileNotFoundError:
        return report(error_pipe, EXIT_NOT_FOUND, f"command not found: {spec.argv[0]}")
    except PermissionError:
        return report(error_pipe, EXIT_NOT_EXECUTABLE, f"permission denied: {spec.argv[0]}")
    except OSError as exc:
        return report(error_pipe, EXIT_NOT_EXECUTABLE, f"cannot execute {spec.argv[0]}: {exc.strerror}")

