"""Counting seccomp denials: the filter's denials arrive here, in the supervisor, as notifications.

The filter marks denied syscalls SECCOMP_RET_USER_NOTIF instead of ERRNO;
the jailed command, loading it, gets a listener fd and passes it out over a
socket pair before it execs. A thread here answers each notification with
the profile's errno (so the jailed program sees exactly what ERRNO would
give it), counts it per syscall, and logs the first of each. Allowed
syscalls never reach this path: they cost nothing more. The first attempt
to create or enter namespaces is logged once more, as one `nested-sandbox`
event a person can act on: an agent's own sandbox (bubblewrap, unshare)
fails there, and a list of syscall names does not say so.

Raw ioctls, not pyseccomp: its notification API lacks the listener fd.
"""

from __future__ import annotations

import _socket
import _thread
import fcntl
import os
import select
import struct
from typing import Any

from jail.kernel.fdpass import receive_fd, send_fds
from jail.seccomp.groups import NAMESPACE_FLAGS

# What `shelljail log` says, once per session, when a program in the jail tried to make namespaces.
NESTED_SANDBOX = "a program tried to create namespaces: nested sandboxes are not available inside the jail"
_NAMESPACE_MASK = sum(NAMESPACE_FLAGS)

IOCTL_NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif), 80 bytes
IOCTL_NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp), 24 bytes
_NOTIF = struct.Struct("=QIIiIQ6Q")  # id, pid, flags, nr, arch, instruction pointer, args
_RESPONSE = struct.Struct("=QqiI")  # id, val, error, flags
FLAG_CONTINUE = 1  # SECCOMP_USER_NOTIF_FLAG_CONTINUE: let the call run (learning only: it is not a check)


def available() -> bool:
    try:
        with open("/proc/sys/kernel/seccomp/actions_avail") as f:
            return "user_notif" in f.read().split()
    except OSError:
        return False


def send_listener(channel: int, listener: int) -> None:
    """In the jailed command: hand the listener to the supervisor, then forget it."""
    # Family and type given: otherwise Python asks the kernel (getsockopt), which a learning
    # filter would hold until the supervisor answers, and it cannot answer before this.
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM, 0, os.dup(channel))
    try:
        send_fds(sock, b"L", [listener])
    finally:
        sock.close()
        os.close(listener)


class DenialCounter:
    """Receives the listener, answers and counts notifications until the jail is gone."""

    def __init__(self, channel: int, errno_value: int, log: Any, observe: Any = None) -> None:
        # With `observe` (a learning run), each call is shown to it and let through rather than denied.
        self.observe = observe
        self.channel = channel
        self.errno_value = errno_value
        self.log = log
        self.counts: dict[str, int] = {}
        self.nested_sandbox = False  # whether the nested-sandbox event was logged (once per session)
        self._lock = _thread.allocate_lock()

    def start(self) -> None:
        _thread.start_new_thread(self._run, ())

    def summary(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def _run(self) -> None:
        listener = receive_fd(_socket.socket(fileno=self.channel))
        if listener is not None:  # else the command never loaded its filter (it failed before exec)
            self._serve(listener)

    def _serve(self, listener: int) -> None:
        poller = select.poll()
        poller.register(listener, select.POLLIN)
        try:
            while True:
                events = poller.poll()
                if any(mask & (select.POLLHUP | select.POLLERR) for _, mask in events):
                    return  # every filtered process has exited
                buffer = bytearray(_NOTIF.size)  # zeroed before every receive, as the kernel asks
                try:
                    fcntl.ioctl(listener, IOCTL_NOTIF_RECV, buffer, True)
                except OSError:
                    continue  # the process died before we could receive
                notif_id, pid, _flags, nr, arch, _ip, *args = _NOTIF.unpack(buffer)
                name = self._count(nr, arch, pid, args[0])  # before the answer: the call waits, so nothing is lost
                if self.observe is not None:
                    self.observe(pid, name, args)  # while the call waits: its memory still holds the arguments
                    answer = _RESPONSE.pack(notif_id, 0, 0, FLAG_CONTINUE)
                else:
                    answer = _RESPONSE.pack(notif_id, 0, -self.errno_value, 0)
                try:
                    fcntl.ioctl(listener, IOCTL_NOTIF_SEND, answer)
                except OSError:
                    pass  # the process is gone
        finally:
            os.close(listener)

    def _count(self, nr: int, arch: int, pid: int, first_argument: int) -> str:
        name = _name(nr, arch)
        nested = _makes_namespaces(name, first_argument)
        with self._lock:
            first = name not in self.counts
            self.counts[name] = self.counts.get(name, 0) + 1
            first_nested = nested and not self.nested_sandbox
            self.nested_sandbox = self.nested_sandbox or nested
        if self.log is not None and self.observe is None and (first or first_nested):
            program = _program(pid)
            if first:
                self.log.event("seccomp-denial", syscall=name, pid=pid, program=program)
            if first_nested:
                self.log.event("nested-sandbox", syscall=name, pid=pid, program=program, message=NESTED_SANDBOX)
        return name


def _makes_namespaces(name: str, first_argument: int) -> bool:
    """unshare and setns always; clone when its flags ask for a namespace (a plain fork is no sandbox)."""
    return name in ("unshare", "setns") or (name == "clone" and bool(first_argument & _NAMESPACE_MASK))


def _program(pid: int) -> str:
    """The process's name, as the jail set it: any bytes (prctl PR_SET_NAME), so read as bytes and kept
    exact (a byte that is not UTF-8 surrogate-escaped, a CR not made a newline); shown escaped later."""
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().removesuffix(b"\n").decode("utf-8", "surrogateescape")
    except OSError:
        return "?"


def _name(nr: int, arch: int) -> str:
    try:
        import pyseccomp

        return pyseccomp.resolve_syscall(arch, nr).decode()
    except Exception:  # noqa: BLE001 - an unknown number is still worth counting
        return f"syscall {nr}"
