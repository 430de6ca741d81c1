"""Terminal injection: text a jail made (file names, command lines, commit subjects, process names)
reaches a person only escaped, in every host-side view, and the approval question on run's terminal
cannot be redrawn by the jail's own output.

Each jailed program plants the text itself, after checking it is jailed (guarded); the host side
then runs the real CLI as a person would and reads its output as bytes.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ASKS, SHELLJAIL, Jail, guarded

pytestmark = pytest.mark.jail

# Clear screen, home, CR, hidden text (SGR 8), bell, C1 CSI, a bidi override, a zero-width space.
HOSTILE = "\x1b[2J\x1b[H\r\x1b[8mhid\x1b[0m\x07\x9b\u202eevil\u200b"
ESCAPED = ("\\x1b[2J", "\\x1b[H", "\\x0d", "\\x1b[8m", "\\x07", "\\x9b", "\\u202e", "\\u200b")
NOT_UTF8 = "\udcff"  # the byte 0xff in a file name (os.fsencode's surrogate escape)


def run_cli(jail: Jail, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """The real CLI; (status, stdout+stderr decoded as file names are, so a raw byte stays visible)."""
    done = subprocess.run([*SHELLJAIL, *args], capture_output=True, timeout=120, env=env or jail.env(),
                          cwd=jail.workspace, stdin=subprocess.DEVNULL)
    return done.returncode, (done.stdout + done.stderr).decode("utf-8", "surrogateescape")


def assert_safe(text: str, allowed: str = "\n") -> None:
    """Every character a person sees is printable (or a newline): nothing raw can move, hide or reorder."""
    raw = sorted({c for c in text if not (c.isprintable() or c in allowed)})
    assert not raw, f"raw characters reach the terminal: {[hex(ord(c)) for c in raw]}\n{text!r}"


def assert_escaped(text: str) -> None:
    for form in ESCAPED:
        assert form in text, f"{form} not shown in:\n{text}"


def jailed(jail: Jail, script: str, *options: str, interposer: str = "on") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*SHELLJAIL, "run", "-p", ASKS, "-w", str(jail.workspace), "--interposer", interposer,
                           "--ask", "deny", *options, "--", "/bin/sh", "-c", guarded(script)], capture_output=True,
                          timeout=120, env=jail.env(), cwd=jail.workspace, stdin=subprocess.DEVNULL)


NAME = f"{HOSTILE}{NOT_UTF8}.txt"


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Jail:
    """A jail whose programs made files named with every hostile character (one removed: to the trash),
    ran a command line holding them that the interposer asked about (denied: --ask deny), and started
    with a command line that begins with them."""
    jail = Jail(tmp_path_factory.mktemp("planted"))
    made = jailed(jail, f"echo data > '{NAME}'; echo gone > 'x{NAME}'; rm -- 'x{NAME}'")
    assert made.returncode == 0, made.stderr
    assert os.listdir(os.fsencode(jail.workspace)) == [os.fsencode(NAME)]
    asked = jailed(jail, f"truncate -s 0 '{NAME}' '{HOSTILE}'")
    assert asked.returncode == 126, asked.stderr
    started = subprocess.run([*SHELLJAIL, "run", "-w", str(jail.workspace), "--interposer", "off", "--",
                              "/usr/bin/env", f"X={HOSTILE}", "/bin/sh", "-c", guarded("true")],
                             capture_output=True, timeout=120, env=jail.env(), stdin=subprocess.DEVNULL)
    assert started.returncode == 0, started.stderr
    return jail


def test_log_shows_the_jails_text_escaped(planted: Jail) -> None:
    sessions = [json.loads(line) for line in run_cli(planted, "sessions", "--json")[1].splitlines()]
    for session in sessions:
        status, text = run_cli(planted, "log", session["session"])
        assert status == 0, text
        assert_safe(text)
    status, text = run_cli(planted, "log", sessions[1]["session"])  # the asked line
    assert_escaped(text)
    assert "\\xff" in text  # the byte that was not UTF-8, as the byte it was


def test_log_json_is_the_exact_data_in_ascii(planted: Jail) -> None:
    sessions = [json.loads(line) for line in run_cli(planted, "sessions", "--json")[1].splitlines()]
    status, text = run_cli(planted, "log", sessions[1]["session"], "--json")
    assert status == 0
    assert_safe(text)
    events = [json.loads(line) for line in text.splitlines()]
    assert any(HOSTILE in str(e.get("command")) and NOT_UTF8 in str(e.get("command"))
               for e in events if e.get("event") == "decision")


def test_trash_list_shows_the_name_escaped(planted: Jail) -> None:
    status, text = run_cli(planted, "trash", "list")
    assert status == 0, text
    assert_safe(text)
    assert_escaped(text)
    status, text = run_cli(planted, "trash", "list", "--json")
    assert status == 0
    assert_safe(text)
    [entry] = [json.loads(line) for line in text.splitlines()]
    assert entry["paths"] == [f"x{NAME}"]  # the name, exactly


def test_sessions_show_the_command_line_escaped(planted: Jail) -> None:
    status, text = run_cli(planted, "sessions", env=planted.env(COLUMNS="300"))
    assert status == 0, text
    assert_safe(text)
    assert "X=\\x1b[2J\\x1b[H\\x0d\\x1b[8m" in text  # the table shows its first 40 characters
    status, text = run_cli(planted, "sessions", "--json")
    assert status == 0
    assert_safe(text)


def test_a_waiting_question_is_listed_escaped(jail: Jail, tmp_path: Path) -> None:
    env = jail.env()
    # No controlling terminal (a new session): the question waits for `approve`, `deny` or the dashboard.
    run = subprocess.Popen([*SHELLJAIL, "run", "-p", ASKS, "-w", str(jail.workspace), "--", "/bin/sh", "-c",
                            guarded(f"truncate -s 0 data '{HOSTILE}'")], env=env, cwd=jail.workspace,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline and "truncate" not in text:
            status, text = run_cli(jail, "approvals")
            time.sleep(0.1)
        assert status == 0 and "truncate" in text, text
        assert_safe(text)
        assert_escaped(text)
        request = text.split()[0]
        status, answered = run_cli(jail, "deny", request)
        assert status == 0, answered
        assert_safe(answered)
        assert "\\u202e" in answered
        _, err = run.communicate(timeout=60)
    finally:
        run.kill()
        run.wait()
    waiting = err.decode("utf-8", "surrogateescape")  # what run said on its stderr: the command escaped
    assert "waiting for a person" in waiting
    assert "\\u202e" in waiting and "\u202e" not in waiting.split("shelljail: denied")[0]


def test_diff_of_an_overlay_session_shows_names_and_text_escaped(jail: Jail) -> None:
    name = f"{HOSTILE}{NOT_UTF8}"
    (jail.workspace / "keep.txt").write_text("old\n")
    script = f"n='{name}'; printf 'line {HOSTILE}\\n' > \"$n\"; printf 'new{HOSTILE}\\n\\tindented\\n' > keep.txt"
    planted = jailed(jail, script, "--workspace-mode", "overlay", interposer="off")
    assert planted.returncode == 0, planted.stderr
    session = json.loads(run_cli(jail, "sessions", "--json")[1].splitlines()[0])["session"]
    status, text = run_cli(jail, "diff", "--names", session)
    assert status == 0, text
    assert_safe(text)
    assert_escaped(text)
    assert "\\xff" in text
    status, text = run_cli(jail, "diff", session)
    assert status == 0, text
    assert_safe(text, allowed="\n\t")
    assert "+new\\x1b[2J" in text and "+line \\x1b[2J" in text
    assert "+\tindented\n" in text  # a diff's tabs are kept: they redraw nothing


def test_snapshots_show_a_planted_commit_subject_escaped(jail: Jail) -> None:
    identity = ("GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t",
                "GIT_COMMITTER_EMAIL=t@example.org")
    options = tuple(option for pair in identity for option in ("--env", pair))
    # In the jail: a repository whose snapshot ref the jail wrote itself, its subject hostile.
    script = ("git init -q . && echo x > f && git add f && git commit -qm base && "
              f"c=$(git commit-tree 'HEAD^{{tree}}' -p HEAD -m 'before: {HOSTILE}') && "
              "git update-ref refs/shelljail/snapshots/1 \"$c\"")
    planted = jailed(jail, script, *options, interposer="off")
    assert planted.returncode == 0, planted.stderr
    status, text = run_cli(jail, "snapshots", "-w", str(jail.workspace))
    assert status == 0, text
    assert_safe(text, allowed="\n\t")  # the tabs between fields are shelljail's own
    assert text.startswith("1\t")
    assert_escaped(text)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the syscall number is x86_64's")
def test_lab_run_reports_a_hostile_process_name_escaped(jail: Jail) -> None:
    program = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
               "libc.prctl(15, b'\\x1b[2J\\x1b[8m\\xe2\\x80\\xae\\r!', 0, 0, 0)\n"  # PR_SET_NAME: its comm
               "libc.syscall(250)\n")  # keyctl: denied by the lab profile
    (jail.workspace / "named.py").write_text(program)
    status, text = run_cli(jail, "lab", "run", "-w", str(jail.workspace), "--", "/usr/bin/python3", "named.py")
    assert status == 0, text
    assert_safe(text)
    assert "first by \\x1b[2J\\x1b[8m\\u202e\\x0d!" in text


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the syscall number is x86_64's")
def test_lab_run_counts_every_denial_of_a_process_whose_name_is_not_utf8(jail: Jail) -> None:
    """A name that does not decode stopped the supervisor's denial counter (a traceback, and the
    denials after it neither answered by it nor counted)."""
    program = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
               "libc.prctl(15, b'\\xff\\xfe', 0, 0, 0)\n"
               "libc.syscall(250)\nlibc.syscall(250)\n")
    (jail.workspace / "named.py").write_text(program)
    status, text = run_cli(jail, "lab", "run", "-w", str(jail.workspace), "--", "/usr/bin/python3", "named.py")
    assert status == 0, text
    assert_safe(text)
    assert "Traceback" not in text
    assert ["keyctl", "2", "first", "by", "\\xff\\xfe"] in [line.split() for line in text.splitlines()], text


# ---- the question on run's terminal --------------------------------------------------------------
# The jailed program is Python, not a shell: a shell line is judged whole before it runs, and a shell
# a judged shell starts is not judged again, while the shell lines a program starts are judged as they
# come. So the question is asked while the program's other threads run and write to the terminal.

# What shelljail itself writes around the question: soft reset, attributes, G0 ASCII, cursor shown,
# erase below, each line single-width and cleared, the yellow title.
OWN_SEQUENCES = ("\x1b[!p", "\x1b[0m", "\x1b(B\x0f", "\x1b[?25h", "\x1b[J", "\r\x1b#5\x1b[2K", "\x1b[1;33m")
FORGED = "\x1b[2J\x1b[Hshelljail: approve? echo harmless\r\n  allow [o]nce, [a]lways in this session, or [d]eny? "


def python_guard() -> str:
    """Python that refuses to go on unless it runs in other user, mount and pid namespaces than ours."""
    from conftest import host_namespaces

    return ("import os, sys\n"
            f"if any(os.readlink(f'/proc/self/ns/{{n}}') == i for n, i in {host_namespaces()!r}.items()):\n"
            "    sys.exit('REFUSED: not jailed')\n")


def on_a_terminal(jail: Jail, program: str, state: Path,
                  typed: list[tuple[bytes, bytes]]) -> tuple[int, bytes, list[int]]:
    """Run `program` jailed with a pty as run's terminal; for each (wait_for, keys) in `typed`, wait until
    the output holds wait_for, then for quiet (nothing written for a second), then type keys.
    (exit status, everything shown, where in it each keys were typed)."""
    import pty

    (jail.workspace / "program.py").write_text(python_guard() + program)
    argv = [*SHELLJAIL, "run", "-p", ASKS, "-w", str(jail.workspace), "--", "/usr/bin/python3", "program.py"]
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(jail.workspace)
        os.execve(argv[0], argv, jail.env(XDG_STATE_HOME=str(state)))
    seen, marks = b"", []
    try:
        for wait_for, keys in typed:
            deadline = time.monotonic() + 60
            last = time.monotonic()
            while time.monotonic() < deadline:
                if select.select([fd], [], [], 0.1)[0]:
                    seen += os.read(fd, 65536)
                    last = time.monotonic()
                elif wait_for in seen[marks[-1] if marks else 0:] and time.monotonic() - last > 1:
                    break
            marks.append(len(seen))
            os.write(fd, keys)
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), seen, marks


def test_the_jail_cannot_redraw_the_question_on_the_terminal(jail: Jail, tmp_path: Path) -> None:
    """A thread of the jailed program keeps drawing a forged question over the real one. While the real
    question is open it must not run: the last thing on the terminal before the answer is the real
    question, its command escaped. (Without the pause it never goes quiet: we answer at the deadline.)"""
    (jail.workspace / "data.txt").write_text("precious\n")
    asking = f"truncate -s 0 data.txt '{HOSTILE}'"  # the raw characters, in the line the question quotes
    program = ("import subprocess, threading, time\n"
               "def forge():\n"
               "    while True:\n"
               f"        os.write(1, {FORGED.encode()!r})\n"
               "        time.sleep(0.02)\n"
               "threading.Thread(target=forge, daemon=True).start()\n"
               "time.sleep(0.5)\n"
               f"done = subprocess.run(['/bin/bash', '-c', {asking!r}])\n"
               "print('finished=%d' % done.returncode)\n")
    status, seen, [answered_at] = on_a_terminal(jail, program, tmp_path / "state", [(b"[d]eny? ", b"o\n")])
    before = seen[:answered_at].decode("utf-8", "surrogateescape")
    # The real question: from the last soft reset (its clean redraw), else from its last yellow title.
    start = max(before.rfind("\x1b[!p"), before.rfind("\x1b[1;33mshelljail: approve?"))
    assert start >= 0, f"no question shown:\n{before[-2000:]!r}"
    question = before[start:]
    assert "harmless" not in question, f"the jail drew over the open question:\n{question!r}"
    assert "truncate -s 0 data.txt" in question and "\\u202e" in question and "\\x1b[8m" in question
    own = question.replace("\r\r\n", "\r\n").replace("\r\n", "\n")  # the pty's ONLCR
    for sequence in OWN_SEQUENCES:
        own = own.replace(sequence, "")
    assert_safe(own)  # nothing raw but shelljail's own sequences
    assert status == 0, seen[-2000:]
    assert b"finished=0" in seen[answered_at:]
    assert (jail.workspace / "data.txt").read_text() == ""


def test_typed_ahead_input_is_not_an_answer(jail: Jail, tmp_path: Path) -> None:
    """What reached the terminal's input before the question was drawn (keys pressed early, a reply the
    jail's query drew from the terminal) is flushed: only a line typed after the question answers."""
    (jail.workspace / "data.txt").write_text("precious\n")
    profile = tmp_path / "p.toml"
    profile.write_text(f'extends = "{ASKS}"\n[interposer]\nask_timeout = 5\n')
    program = ("import subprocess, time\n"
               "print('ready', flush=True)\n"
               "while not os.path.exists('go'):\n"
               "    time.sleep(0.05)\n"
               "done = subprocess.run(['/bin/bash', '-c', 'truncate -s 0 data.txt'])\n"
               "print('finished=%d' % done.returncode)\n")
    import pty

    (jail.workspace / "program.py").write_text(python_guard() + program)
    argv = [*SHELLJAIL, "run", "-p", str(profile), "-w", str(jail.workspace), "--", "/usr/bin/python3",
            "program.py"]
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(jail.workspace)
        os.execve(argv[0], argv, jail.env(XDG_STATE_HOME=str(tmp_path / "state")))
    seen = b""
    deadline = time.monotonic() + 60
    while b"ready" not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            seen += os.read(fd, 65536)
    os.write(fd, b"o\n")  # typed before any question: the program asks only once it is in the input queue
    time.sleep(0.5)  # the line is in the terminal's input queue (the old code read it from there)
    (jail.workspace / "go").write_text("")
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert b"[d]eny? " in seen and b"finished=126" in seen, seen[-2000:]
    assert b"no person answered within 5 s" in seen
    assert (jail.workspace / "data.txt").read_text() == "precious\n"


@pytest.mark.parametrize("reply", [b"\x1b]lforged\x15o\n", b"\x1b[1;1R" + b"\x7f" * 6 + b"o\r"],
                         ids=["title-report-with-line-kill", "position-report-erased"])
def test_a_reply_that_erases_its_own_head_is_not_an_answer(jail: Jail, tmp_path: Path, reply: bytes) -> None:
    """A reply the terminal sends late to a query of the jail's (a window title report, which holds the
    jail's bytes, or a cursor position report followed by the jail's DELs) must not leave "o" behind
    once its ESC head is erased: a line that held any control character is no answer."""
    (jail.workspace / "data.txt").write_text("precious\n")
    program = ("import subprocess\n"
               "done = subprocess.run(['/bin/bash', '-c', 'truncate -s 0 data.txt'])\n"
               "print('finished=%d' % done.returncode)\n")
    status, seen, [answered_at] = on_a_terminal(jail, program, tmp_path / "state",
                                                [(b"[d]eny? ", reply)])
    assert status == 0, seen[-2000:]
    assert b"finished=126" in seen[answered_at:], seen[-2000:]
    assert (jail.workspace / "data.txt").read_text() == "precious\n"


def test_the_terminal_mode_the_jail_set_is_not_the_questions(jail: Jail, tmp_path: Path) -> None:
    """The jail turns echo and line mode off on the shared terminal (as `stty raw -echo`): the question
    still reads a line, echoed, ended by the Enter a terminal sends (CR); the jail's mode comes back."""
    (jail.workspace / "data.txt").write_text("precious\n")
    program = ("import subprocess, termios, tty\n"
               "tty.setraw(0)\n"
               "mode = termios.tcgetattr(0); mode[3] &= ~termios.ECHO; termios.tcsetattr(0, termios.TCSANOW, mode)\n"
               "done = subprocess.run(['/bin/bash', '-c', 'truncate -s 0 data.txt'])\n"
               "after = termios.tcgetattr(0)\n"
               "print('finished=%d raw=%d' % (done.returncode, not after[3] & (termios.ICANON | termios.ECHO)))\n")
    status, seen, [answered_at] = on_a_terminal(jail, program, tmp_path / "state", [(b"[d]eny? ", b"o\r")])
    assert status == 0, seen[-2000:]
    assert b"o\r\n" in seen[answered_at:]  # echoed, as a line
    assert b"finished=0 raw=1" in seen[answered_at:]  # approved, and the jail's raw mode given back
    assert (jail.workspace / "data.txt").read_text() == ""


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
