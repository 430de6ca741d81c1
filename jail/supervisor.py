"""The parent outside the jail: starts it, relays signals, enforces the wall time."""

from __future__ import annotations

import os
import select
import signal
import time
from typing import Any

from . import init, sandbox
from .errors import JailError
from .spec import JailSpec

EXIT_TIMEOUT = 124


def run(spec: JailSpec, timeout: float | None, service: Any = None) -> int:
    """Run the jailed command to its end; its exit status, or 124 at the wall time.

    Raises JailError when the jail could not be set up (exit 125) or the
    command could not be executed (126, 127): those carry their exit code.
    """
    error_r, error_w = os.pipe2(os.O_CLOEXEC)
    deadline = time.monotonic() + timeout if timeout else None
    holder = sandbox.start(spec, error_w, close_in_child=(service.fileno(),) if service else ())
    os.close(error_w)
    if service is not None:
        service.start(holder)  # threads only after the fork
    init.forward_signals(holder)
    pidfd = os.pidfd_open(holder)
    try:
        failure = _read_failure(error_r, deadline)
        if failure is None and not _wait_readable(pidfd, deadline):
            failure = (EXIT_TIMEOUT, f"timed out after {timeout:g} s; everything in the jail was killed")
        if failure and failure[0] == EXIT_TIMEOUT:
            os.kill(holder, signal.SIGKILL)  # pid 1 follows (PDEATHSIG), then the whole namespace
        _, status = os.waitpid(holder, 0)
    finally:
        os.close(pidfd)
        os.close(error_r)
    if failure:
        code, message = failure
        raise RunFailure(code, message)
    return init.exit_code(status)


class RunFailure(JailError):
    def __init__(self, code: int, message: str) -> None:
        hint = {
            sandbox.EXIT_SETUP: "run `shelljail doctor` to see which kernel feature is missing",
            sandbox.EXIT_NOT_FOUND: "check the command's name and the profile's PATH",
        }.get(code, "")
        super().__init__(message, hint)
        self.code = code


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
