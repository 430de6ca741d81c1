"""Asking the person at the controlling terminal, never the agent's standard input.

The jail's processes may hold the same terminal (their stdin, stdout, stderr): they could redraw a
question after it is shown, hide it (SGR 8), move the cursor over it, leave the terminal in raw or
no-echo mode, or ask the terminal for a reply that then reads as the answer. So a question is asked
only while every process of the jail is stopped (`paused`), and `ask` puts the terminal in a known
state first: pending output drained, replies to earlier queries given time to arrive and flushed,
Ctrl-C kept as the stop button, the display soft-reset (attributes, margins, character sets,
cursor), the question drawn on fresh, cleared lines; the answer is read a key at a time, and a line
that held any control character is no answer. What the question quotes is the caller's to
escape (`jail.display.shown`).
"""

from __future__ import annotations

import os
import select
import signal
import termios
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# Soft reset (DECSTR: attributes, insert and origin modes, scroll margins, character sets), then
# plain attributes, ASCII in G0 selected, cursor shown, to column 0, a new line, the rest erased.
CLEAN = "\x1b[!p\x1b[0m\x1b(B\x0f\x1b[?25h\r\n\x1b[J"
LINE = "\r\x1b#5\x1b[2K"  # each line of the question: single-width, cleared, from column 0
SETTLE = 0.15  # seconds for the terminal's replies to queries written before the pause to arrive
PAUSE_WITHIN = 2.0  # seconds for every process of the jail to stop
_STOPPED_STATES = frozenset(b"TtZX")


def available() -> bool:
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
        return True
    except OSError:
        return False


def _task_states(pid: int) -> list[int]:
    """The state letter of each thread of `pid` (none if it is gone)."""
    states = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        after = stat[stat.rfind(b")") + 2:]
        if after:
            states.append(after[0])
    return states


@contextmanager
def paused(processes: Callable[[], list[int]]) -> Iterator[bool]:
    """SIGSTOP every process `processes()` names, until none runs and no new one appeared; yields
    whether that held within PAUSE_WITHIN s. On leaving, SIGCONT to those this stopped."""
    stopped: set[int] = set()
    already: set[int] = set()
    held = False
    deadline = time.monotonic() + PAUSE_WITHIN
    try:
        while time.monotonic() < deadline:
            pids = processes()
            fresh = [pid for pid in pids if pid not in stopped and pid not in already]
            for pid in fresh:
                if all(state in (ord("T"), ord("t")) for state in _task_states(pid) or [0]):
                    already.add(pid)  # stopped before we came: left as it was
                    continue
                try:
                    os.kill(pid, signal.SIGSTOP)
                    stopped.add(pid)
                except ProcessLookupError:
                    continue
            if not fresh and all(state in _STOPPED_STATES for pid in pids for state in _task_states(pid)):
                held = True
                break
            time.sleep(0.005)
        yield held
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


def ask(prompt: str, cancelled: Callable[[], bool] = lambda: False) -> str | None:
    """Draw `prompt` cleanly on /dev/tty and read one line typed after it; None without a terminal,
    or when `cancelled()` turns true first (answered elsewhere, or the time ran out).

    The line is read a key at a time (echo and erase done here, not by the line discipline): a line
    that held any control character, ESC first of all, is no answer ("" - denied), even if it was
    erased after, so a late reply of the terminal to a query of the jail's, whatever it holds, can
    never leave "o" behind. Raw fd reads and writes: a text file opened "r+" on a tty is refused as
    not seekable."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    saved = None
    try:
        try:
            saved = termios.tcgetattr(fd)
            mode = termios.tcgetattr(fd)
            mode[0] = (mode[0] | termios.ICRNL) & ~(termios.INLCR | termios.IGNCR | termios.IXOFF)
            mode[1] |= termios.OPOST | termios.ONLCR
            mode[3] = (mode[3] | termios.ISIG) & ~(termios.ICANON | termios.ECHO)  # Ctrl-C stays the stop button
            mode[6][termios.VMIN], mode[6][termios.VTIME] = 1, 0
            termios.tcsetattr(fd, termios.TCSANOW, mode)
            termios.tcdrain(fd)  # what the jail wrote before the pause is out before the question
        except termios.error:
            pass
        time.sleep(SETTLE)
        try:
            termios.tcflush(fd, termios.TCIFLUSH)  # typed ahead, or the terminal's replies: never an answer
        except termios.error:
            pass
        lines = prompt.split("\n")
        os.write(fd, (CLEAN + "\n".join(LINE + line for line in lines)).encode(errors="backslashreplace"))
        typed, tainted = bytearray(), False
        while len(typed) < 256:
            if cancelled():
                os.write(fd, b"\n(answered elsewhere)\n")
                return None
            if not select.select([fd], [], [], 0.1)[0]:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            for byte in chunk:
                if byte in (0x0A, 0x0D):
                    os.write(fd, b"\n")  # ONLCR: CR LF
                    return "" if tainted else typed.decode(errors="replace").strip()
                if byte in (0x7F, 0x08):
                    if typed:
                        typed.pop()
                        os.write(fd, b"\b \b")
                elif byte < 0x20 or byte > 0x7E:
                    tainted = True  # a control character (or not ASCII): no answer, whatever follows
                else:
                    typed.append(byte)
                    os.write(fd, bytes((byte,)))
        return ""
    finally:
        if saved is not None:
            try:
                termios.tcsetattr(fd, termios.TCSADRAIN, saved)
            except termios.error:
                pass
        os.close(fd)
