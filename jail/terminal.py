"""Asking the person at the controlling terminal, never the agent's standard input."""

from __future__ import annotations

import os


def available() -> bool:
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
        return True
    except OSError:
        return False


def ask(prompt: str) -> str | None:
    """Write `prompt` to /dev/tty and read one line back; None without a terminal.

    Raw fd reads and writes: a text file opened "r+" on a tty is refused as not seekable."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    try:
        os.write(fd, prompt.encode())
        line = b""
        while not line.endswith(b"\n"):
            chunk = os.read(fd, 1)
            if not chunk:
                break
            line += chunk
        return line.decode(errors="replace").strip()
    finally:
        os.close(fd)
