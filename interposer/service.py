"""The decision service: the warm half of the interposer, in the supervisor outside the jail.

Each `/bin/sh` or `/bin/bash` started in the jail is the launcher; it sends
its argv here over a unix socket bind-mounted at /run/shelljail, and gets
back either a denial to print or the real shell as a file descriptor. The
analysis stays loaded here, so a shell costs a connection, not a Python
start-up.

What is judged: the command line of `sh -c`, a script file's text, or, for a
shell reading commands from its input, the profile's `opaque` decision.
Shells started by a shell that was already allowed (make's recipes, npm
scripts, configure) are judged too only when `interposer.judge_child_shells`
says so; the ancestry is read from /proc, which the jail cannot forge. When
they are not judged, the C launcher skips the round trip for them (see
launcher.c): an allowed shell hands the real shells down as inherited fds.

Everything a request carries is the jail's, and so is the process that sent
it: the service holds at most MAX_CONNECTIONS of them at once (each is a
thread), gives each request one deadline and a byte bound, and bounds the
bytes all requests hold together; what it refuses it logs, counted, not once
per connection. Files the jail names (a script, a file a preview diffs) are
read through a directory fd of the sender's own root, opened once per
connection while the sender is checked to still be the socket's peer, with
RESOLVE_IN_ROOT: a symlink resolves as the jail sees it, never on the host,
and only regular files are opened, never blocking (a FIFO is opaque).

The real shells' fds go only to a process running the C launcher (its
/proc/PID/exe), which runs exactly the argv it was judged for: a program that
speaks this protocol itself is refused. What that does not close, and the
jail (not the interposer) bounds: with the Python fallback launcher the
check is off (it runs as python3); an allowed shell hands the real shells
down to its descendants when child shells are not judged (the fast path), so
a program an allowed line started can run any line with them; and a script
may change between its judgment and the shell's own read of it. (A waiting
launcher's memory cannot be rewritten: seccomp refuses ptrace and
process_vm_writev, Landlock a write to /proc/PID/mem.)

It uses the C modules `_socket` and `_thread` rather than `socket` and
`threading`: `run` creates this service on every start, and those two
Python wrappers cost about 5 ms to import.
"""

from __future__ import annotations

import _socket
import _thread
import collections
import os
import struct
import time
from collections.abc import Callable
from typing import Any

from jail.kernel.fdpass import send_fds
from jail.supervisor.procfs import parent as _parent
from jail.supervisor.procfs import start_time as _start_time
from jail.supervisor.rundir import private_directory

from .shellargs import invocation as _invocation

SOCKET_NAME = "decide.sock"
SHELLS_NAME = "shells"  # "name major minor inode" per real shell, for the launcher's child-shell fast path
JAIL_DIRECTORY = "/run/shelljail"
SHELL_FILES = ("/bin/sh", "/bin/dash", "/bin/bash", "/usr/bin/sh", "/usr/bin/dash", "/usr/bin/bash")
TOOLS = ("rm", "unlink")
MAX_REQUEST = 1 << 20  # a request's bytes: launcher.c's REQUEST_MAX and launcher.py's agree
ANSWER_MAX = 2 << 20  # an answer's bytes, read to the end by both launchers (ANSWER_MAX there)
MAX_ARGS = 65536  # words of an argv handed back (launcher.c's MAX_ARGS)
MAX_SCRIPT = 4 << 20
MAX_CONNECTIONS = 256  # at once from the jail: each holds a supervisor thread
CLOSING = 32  # ...and at most this many more, closed by the service and not yet ended
SMALL_REQUEST = 64 << 10  # a command line this size is never refused for the shared bound below
MAX_BUFFERED = 32 << 20  # bytes of larger requests held by all connections at once
REQUEST_SECONDS = 10  # for the whole request: a byte at a time does not hold a thread longer
SO_PEERPIDFD = 77  # Linux 6.5: a pidfd of the process that connected
PRUNE_ALLOWED = 4096  # allowed shells remembered before the gone ones are forgotten
WARM_AFTER = 0.02  # seconds the jail's command has run before the judge is imported ahead of its first shell


class Refused(Exception):
    """A request the service will not serve (too large, too slow, too many): logged, counted."""


def real_shells() -> dict[str, str]:
    """The host's shell binaries the launcher stands in for, by the names it may be called."""
    found: dict[str, str] = {}
    for path in SHELL_FILES:
        if os.path.exists(path):
            found.setdefault(os.path.basename(path), os.path.realpath(path))
    if "bash" in found:
        found.setdefault("rbash", found["bash"])
    return found


def real_tools() -> dict[str, str]:
    """The deleting tools the trash stands in for (see jail/recovery/trash.py), by name."""
    found: dict[str, str] = {}
    for name in TOOLS:
        for directory in ("/usr/bin", "/bin"):
            path = os.path.join(directory, name)
            if os.path.exists(path):
                found.setdefault(name, os.path.realpath(path))
    return found


def launcher_targets() -> list[str]:
    """The real files to cover with the launcher inside the jail (each shell once)."""
    return sorted(set(real_shells().values()))


def shell_invocation(argv: list[str]) -> tuple[str, str | None]:
    """What a shell's argv asks it to run: ("c", text), ("file", path) or ("stdin", None)."""
    mode, value, _index = _invocation(argv)
    return mode, value


def rewritten_argv(argv: list[str], text: str) -> list[str]:
    """The shell's argv running `text` instead of its command string or script file."""
    mode, _value, index = _invocation(argv)
    if mode == "c":
        return [*argv[:index], text, *argv[index + 1:]]
    return [*argv[:index], "-c", text, *argv[index:]]  # the script's path becomes $0, as it was


# A decision made without the analysis: a shell reading commands from its input. (A plain
# namedtuple: typing.NamedTuple compiles string annotations at import, about 2 ms.)
_Opaque = collections.namedtuple("_Opaque", "decision reason rule alternative opaque")


class DecisionService:
    """Listens from construction; serves, and loads the analysis, in a thread once started.

    The analysis (tree-sitter, the rules) is imported at the first request, not here.
    """

    def __init__(self, policy: Any, directory: str, judge_child_shells: bool,
                 on_decision: Callable[[dict[str, Any]], None] | None = None,
                 ask: Callable[[str, str, str | None, str], tuple[bool, str]] | None = None,
                 dry_run: bool = False, log: Any = None) -> None:
        self.log = log  # the session's audit log: once `full`, every command is denied
        self.launcher: tuple[int, int] | None = None  # the C launcher's (st_dev, st_ino): the only asker
        self._lock = _thread.allocate_lock()
        self.connections = 0  # being served now, at most MAX_CONNECTIONS (+ CLOSING)
        self.reading: dict[int, _socket.socket] = {}  # connections whose request is unfinished, oldest first
        self.serial = 0
        self.buffered = 0  # bytes of requests over SMALL_REQUEST held now, at most MAX_BUFFERED
        self.refused: dict[str, int] = {}  # how many of each refusal, logged at 1, 2, 4, 8, ...
        self.ask = ask  # the approval broker; None: an `ask` is a denial
        self.dry_run = dry_run  # run only the lines that only read; report the others
        self.policy = policy  # a judge.Policy, or the tuple of its fields (built in the thread)
        self.directory = directory
        self.judge_child_shells = judge_child_shells
        self.on_decision = on_decision
        self.shells = {name: os.open(path, os.O_RDONLY | os.O_CLOEXEC) for name, path in real_shells().items()}
        self.tools = {name: os.open(path, os.O_RDONLY | os.O_CLOEXEC) for name, path in real_tools().items()}
        self.trash: Any = None  # a jail.recovery.trash.Trash when the session keeps one
        self.hosts: Any = None  # a jail.supervisor.hostgrants.HostGrants when a person can be asked about hosts
        self.timeline: Any = None  # a jail.recovery.timeline.Timeline: a checkpoint before each command line
        self.shell_paths = set(real_shells().values())
        # Host pid -> (its start time, whether it runs a judged `-c` line) of each shell this service
        # let run: with the start time a reused pid is not taken for the shell; pruned of the gone.
        self.allowed: dict[int, tuple[int | None, bool]] = {}
        self.prune_at = PRUNE_ALLOWED
        self.outermost: int | None = None  # the jail's holder: ancestry walks stop there
        self.kit = sorted(self.shells)  # the real shells an allowed shell hands down to its child shells
        if not judge_child_shells:
            with open(os.path.join(directory, SHELLS_NAME), "w") as f:
                for name in self.kit:
                    st = os.fstat(self.shells[name])
                    f.write(f"{name} {os.major(st.st_dev)} {os.minor(st.st_dev)} {st.st_ino}\n")
        self.listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        self.listener.bind(os.path.join(directory, SOCKET_NAME))
        self.listener.listen(128)
        self._closing = _thread.allocate_lock()  # held until close(): the warm-up waits on it
        self._closing.acquire()

    def fileno(self) -> int:
        return self.listener.fileno()

    def start(self, holder: int | None = None) -> None:
        """Serve in a thread: call after the jail's processes are forked (`holder` is the outermost)."""
        self.outermost = holder
        _thread.start_new_thread(self._serve, ())  # a daemon: it ends with the process

    def warm(self) -> None:
        """Once the jail's command runs: import the judge in a thread and judge `true`, ahead of the first
        shell, if the command is still running WARM_AFTER seconds later. The 50-95 ms of imports and first-use
        work then overlap the agent's own start instead of holding up its first shell; a command that ends
        sooner (`run -- /bin/true`) never pays them, nor shares the GIL with them while the session ends. A
        shell that comes first imports the judge itself (judge()); the warm-up then waits for that import."""
        _thread.start_new_thread(self._warm, ())

    def _warm(self) -> None:
        if self._closing.acquire(timeout=WARM_AFTER):
            self._closing.release()
            return  # the session is over
        try:
            from .judge import Policy, decide

            policy = self.policy if isinstance(self.policy, Policy) else Policy(*self.policy)
            decide("true", policy.workspace, policy)  # the parser made, the rules' first lookups done (pure)
        except Exception:  # noqa: BLE001 - the first shell imports and judges again, and reports what failed
            pass

    def close(self) -> None:
        if self._closing.locked():
            self._closing.release()
        for reason, count in sorted(self.refused.items()):
            if count & (count - 1):  # not yet logged at this count
                self._log({"event": "service-refused", "reason": reason, "count": count, "final": True})
        try:
            self.listener.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        for fd in (*self.shells.values(), *self.tools.values()):
            os.close(fd)
        for name in (SOCKET_NAME, SHELLS_NAME):
            try:
                os.unlink(os.path.join(self.directory, name))
            except OSError:
                pass
        try:
            os.rmdir(self.directory)
        except OSError:
            pass

    def _serve(self) -> None:
        while True:
            try:
                fd, _ = self.listener._accept()
            except ConnectionAbortedError:
                continue  # the client left before it was accepted
            except OSError:
                return  # closed: the jail is gone
            connection = _socket.socket(fileno=fd)
            admitted, oldest = self._admit(connection)
            if oldest is not None:  # the cap is reached: the longest-unfinished request makes room
                self._refusal(f"more than {MAX_CONNECTIONS} connections at once from the jail: the oldest "
                              "unfinished request closed")
                try:
                    oldest.shutdown(_socket.SHUT_RDWR)  # its thread's recv ends, and so does its thread
                except OSError:
                    pass
            if admitted is None:  # refused here, in the accepting thread: no thread is started for it
                _refuse(connection, f"more than {MAX_CONNECTIONS} shells at once are waiting for the "
                                    "decision service")
                self._refusal(f"more than {MAX_CONNECTIONS} connections at once from the jail, none unfinished")
                continue
            # One thread per shell: a question waiting for a person must not hold up the others.
            _thread.start_new_thread(self._connection, (connection, admitted))

    def _admit(self, connection: _socket.socket) -> tuple[int | None, _socket.socket | None]:
        """(this connection's serial or None if refused, the unfinished connection to close for it).

        Past MAX_CONNECTIONS, idle or trickling connections do not lock the shells out: the one that
        has waited longest for its request is closed instead (a launcher sends its request at once).
        Connections that are being judged or wait for a person are never closed; if all are, or too
        many closed ones have not ended yet, the new connection is refused.
        """
        with self._lock:
            oldest = None
            if self.connections >= MAX_CONNECTIONS:
                if not self.reading or self.connections >= MAX_CONNECTIONS + CLOSING:
                    return None, None
                oldest = self.reading.pop(next(iter(self.reading)))
            self.serial += 1
            self.connections += 1
            self.reading[self.serial] = connection
            return self.serial, oldest

    def _connection(self, connection: _socket.socket, serial: int) -> None:
        held = [0]  # request bytes this connection holds of MAX_BUFFERED
        peer: _Peer | None = None
        try:
            pid = struct.unpack("3i", connection.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12))[0]
            peer = _Peer(connection, pid)
            fields = self._request(connection, held)
            with self._lock:
                closed = self.reading.pop(serial, None) is None
            if closed:  # made room for a newer connection while its request was unfinished
                return
            self._answer(connection, fields, peer)
        except Refused as exc:
            self._refusal(str(exc))
            _refuse(connection, str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad request must not stop the service
            try:
                connection.settimeout(1)
                connection.sendall(b"D" + f"shelljail: denied: the interposer failed ({exc})".encode())
            except OSError:
                pass
        finally:
            connection.close()
            if peer is not None:
                peer.close()
            with self._lock:
                self.reading.pop(serial, None)
                self.buffered -= held[0]
                self.connections -= 1

    def _request(self, connection: _socket.socket, held: list[int]) -> list[bytes]:
        """The request's fields, read by one deadline, within MAX_REQUEST and the shared MAX_BUFFERED."""
        deadline = time.monotonic() + REQUEST_SECONDS
        (length,) = struct.unpack("=I", _receive(connection, 4, deadline))
        if length > MAX_REQUEST:
            raise Refused(f"a request of {length} bytes, more than the {MAX_REQUEST} a command line may have")
        charged = length if length > SMALL_REQUEST else 0  # small ones are bounded by MAX_CONNECTIONS
        with self._lock:
            busy = self.buffered + charged > MAX_BUFFERED
            if not busy:
                self.buffered += charged
                held[0] = charged
        if busy:
            raise Refused(f"the requests waiting hold more than {MAX_BUFFERED >> 20} MiB")
        return _receive(connection, length, deadline).split(b"\0")[:-1]

    def _refusal(self, reason: str) -> None:
        """Log a refusal the 1st, 2nd, 4th, 8th... time it happens: bounded, and never silent."""
        with self._lock:
            count = self.refused[reason] = self.refused.get(reason, 0) + 1
        if count & (count - 1) == 0:
            self._log({"event": "service-refused", "reason": reason, "count": count})

    def _log(self, event: dict[str, Any]) -> None:
        if self.on_decision is not None:
            try:
                self.on_decision(event)
            except Exception:  # noqa: BLE001 - a refusal's event must not become a second failure
                pass

    def _answer(self, connection: _socket.socket, fields: list[bytes], peer: _Peer) -> None:
        connection.settimeout(REQUEST_SECONDS)  # for the answer's send: a jail that stops reading
        pid = peer.pid
        if getattr(self.log, "full", False):  # fail closed: nothing runs that the log cannot name
            connection.sendall(b"D" + _denial("the session's audit log is full, so nothing more may run; "
                                              "end this session and start a new one", "").encode())
            return
        if self.launcher is not None and peer.executable() != self.launcher:
            # A program that speaks the protocol itself would get the real shell for a line it had
            # judged, and could run another with it: only the launcher, which runs what it asked, asks.
            self._refusal("a request from a program that is not the shell launcher")
            connection.sendall(b"D" + _denial("this request did not come from the shell launcher; shells are "
                                              "asked for by running /bin/sh or /bin/bash", "").encode())
            return
        if len(fields) >= 4 and fields[0] == b"t":
            self._tool(connection, os.fsdecode(fields[1]), os.fsdecode(fields[2]), [os.fsdecode(f) for f in fields[3:]],
                       pid)
            return
        if len(fields) < 3 or fields[0] != b"1":
            raise ValueError("unknown request")
        cwd = os.fsdecode(fields[1])
        argv = [os.fsdecode(f) for f in fields[2:]]
        timeline = self.timeline if self.timeline is not None and self.timeline.off is None else None
        if timeline is None and self.timeline is not None:  # stopped before this line: judged without it
            self._without_timeline()
        verdict, event = self.judge(argv, cwd, pid, peer)
        if verdict is None and timeline is not None and self._top_level(event, pid):
            verdict = self._checkpoint(event, peer)
            if verdict is not None and timeline.off is not None:
                # The timeline stopped (its cap, a tree too deep, the jail's doing or not): from now on lines
                # are judged without the rules that undo made safe, this one first; the rest still run.
                self._without_timeline()
                verdict, event = self.judge(argv, cwd, pid, peer)
                event["timeline"] = f"off: {timeline.off}"
                if verdict is not None:
                    verdict = f"{verdict.rstrip()} (the timeline is off: {timeline.off})\n"
        if self.on_decision:
            self.on_decision(event)
        # An allowed line gets the real shell's fd, to run argv (or the rewritten argv) with. A process
        # that speaks this protocol itself could run another line with that fd, unlogged: the jail,
        # not the interposer, bounds what such a program does (it could as well run python).
        if verdict is None and event.get("rewritten"):
            run = rewritten_argv(argv, event["rewritten"])
            shell = self.shells.get(os.path.basename(argv[0])) or self.shells.get("bash")
            if shell is None:
                raise ValueError("no real shell for " + argv[0])
            self._allow(peer, shell_invocation(argv)[0] == "c")
            names = b"" if self.judge_child_shells else " ".join(self.kit).encode()
            kit = [] if self.judge_child_shells else [self.shells[n] for n in self.kit]
            _send_fds(connection, b"R " + names + b"\0" + b"".join(os.fsencode(a) + b"\0" for a in run),
                      [shell, *kit])
            return
        if verdict is None:
            shell = self.shells.get(os.path.basename(argv[0])) or self.shells.get("bash")
            if shell is None:
                raise ValueError("no real shell for " + argv[0])
            self._allow(peer, shell_invocation(argv)[0] == "c")
            if self.judge_child_shells:
                _send_fds(connection, b"A", [shell])
            else:
                names = " ".join(self.kit).encode()
                _send_fds(connection, b"A " + names, [shell, *(self.shells[n] for n in self.kit)])
        else:
            connection.sendall(b"D" + verdict.encode())

    def _top_level(self, event: dict[str, Any], pid: int) -> bool:
        """A line the agent itself runs, not a child shell of what it runs (a build's, a script's)."""
        if event.get("rule") == "child-shell" or self._allowed(pid) is not None:
            return False  # a child shell, or an allowed shell that exec'd the line's last command in place
        return not (self.judge_child_shells and self._started_by_allowed_shell(pid))

    def _without_timeline(self) -> None:
        from .judge import Policy

        policy = self.policy if isinstance(self.policy, Policy) else Policy(*self.policy)
        self.policy = policy._replace(timeline=False)

    def _checkpoint(self, event: dict[str, Any], peer: Any = None) -> str | None:
        """The timeline's point before the line runs; a denial if it cannot be taken (fail closed; once the
        timeline is off, _answer judges the line again without the rules that needed it)."""
        try:
            # The peer's root: where an overlay's timeline opens the workspace as the jail sees it.
            self.timeline.checkpoint(str(event.get("command") or ""), peer.root if peer is not None else None)
            return None
        except Exception as exc:  # noqa: BLE001 - no line runs that its undo point could not be taken for
            event.update(decision="deny", rule="timeline", reason=f"the timeline's checkpoint failed: {exc}")
            return _denial(f"the workspace timeline could not record a checkpoint before this command ({exc})",
                           "tell the person running shelljail; timeline.enabled = false turns undo off")

    def _tool(self, connection: _socket.socket, cwd: str, tool: str, argv: list[str], pid: int) -> None:
        """rm or unlink in the jail: the trash moves what it can; the real tool gets the rest.

        The trash is for the agent's own command lines (`sh -c LINE` that was judged, and what it
        starts, find -exec included); the rm calls of scripts and build tools (configure's hundreds
        of conftest files, make's recipes) delete as they always did."""
        real = self.tools.get(tool)
        if real is None:
            raise ValueError(f"no real {tool}")
        if self.trash is None or not self._from_a_command_line(pid):
            _send_fds(connection, b"E\0\0" + b"".join(os.fsencode(a) + b"\0" for a in argv), [real])
            return
        outcome = self.trash.handle(tool, argv, cwd)
        out, err = os.fsencode(outcome.stdout)[-30000:], os.fsencode(outcome.stderr)[-30000:]
        if outcome.real:
            _send_fds(connection, b"E" + out + b"\0" + err + b"\0" +
                      b"".join(os.fsencode(a) + b"\0" for a in outcome.argv), [real])
        else:
            connection.sendall(b"X" + out + b"\0" + err + b"\0" + str(outcome.status).encode() + b"\0")

    def judge(self, argv: list[str], cwd: str, pid: int,
              peer: _Peer | None = None) -> tuple[str | None, dict[str, Any]]:
        """None to let the shell run, or the text of its denial; and an event for the log."""
        # Imported at the first request, not at start: loading the parser while `run` starts
        # would hold the GIL against the main thread; the first shell pays it once instead.
        from .judge import Policy, decide

        if not isinstance(self.policy, Policy):
            self.policy = Policy(*self.policy)
        mode, value = shell_invocation(argv)
        event: dict[str, Any] = {"event": "decision", "argv": argv, "cwd": cwd, "pid": pid}
        if not self.judge_child_shells and self._started_by_allowed_shell(pid):
            event.update(decision="allow", rule="child-shell", reason="started by a shell that was allowed")
            return None, event
        if mode == "c":
            judged = value or ""
            decision = decide(judged, cwd, self.policy)
            event["command"] = value
        elif mode == "file":
            if self._system_script(peer, cwd, value or ""):  # judged as the program it is (systemscript.py)
                from .systemscript import program_line

                text, problem, kind = program_line(argv), "", None
                event["system_script"] = True
            else:
                text, problem, kind = self._read_script(peer, cwd, value or "")
            event["command"] = value
            if text is not None:
                judged = text
                decision = decide(text, cwd, self.policy)
            elif kind is not None:  # a FIFO, socket or device: never opened here, so never judged
                judged = ""
                reason = f"the script {value} is a {kind}: its commands cannot be read before they run"
                decision = _Opaque(self.policy.interposer.opaque, reason, "opaque",
                                   "write the commands to a regular file, or pass them with sh -c", True)
            else:
                event.update(decision="deny", rule="unreadable-script", reason=f"cannot read the script {value}: "
                             f"{problem}")
                return _denial(f"cannot read the script {value} to check it ({problem})", ""), event
        else:
            judged = ""
            reason = "a shell reading commands from its input cannot be checked before they run"
            decision = _Opaque(self.policy.interposer.opaque, reason, "opaque",
                               "pass the commands with sh -c, or as a script file", True)
            event["command"] = " ".join(argv)
        if decision.rule == "network-allow" and self.hosts is not None and self.ask is not None and judged:
            refused, decision = self._ask_hosts(judged, cwd, decision, event)
            if refused is not None:
                return refused, event
        event.update(decision=decision.decision, rule=decision.rule, reason=decision.reason,
                     opaque=decision.opaque)
        if self.dry_run:
            from .dryrun import only_reads, would

            commands = list(getattr(decision, "commands", ()))
            workspace = self.policy.workspace
            if decision.decision == "allow" and only_reads(commands, decision.opaque, workspace):
                event["dry_run"] = "ran: it only reads"
                return None, event
            report = would(decision, workspace) if commands else f"would need a person ({decision.reason})"
            event.update(dry_run=report)
            return f"shelljail: dry run: {report}\n", event
        if decision.decision == "allow":
            return None, event
        if decision.decision == "rewrite":
            event["rewritten"] = decision.rewritten
            if decision.rewritten and "refs/shelljail/snapshots" in decision.rewritten:
                event["undo"] = f"shelljail snapshots -w {cwd} (the newest), then shelljail rollback N"
            return None, event
        if decision.decision == "ask":
            if self.ask is None:
                return _denial(decision.reason + _no_human("ask"), decision.alternative), event
            allowed, how = self.ask(event["command"], decision.reason, decision.rule,
                                    self._preview(judged, cwd, peer) if judged else "")
            event.update(decision="allow" if allowed else "deny", asked=True, answered=how)
            if allowed:
                return None, event
            return _denial(f"{decision.reason}; {how}", decision.alternative), event
        return _denial(decision.reason, decision.alternative), event

    def _ask_hosts(self, line: str, cwd: str, decision: Any, event: dict[str, Any]) -> tuple[str | None, Any]:
        """A line denied only for hosts off the allow-list: the person is asked once per host whether this
        session may reach it (hostgrants.py); a yes grows the allow-list here and in the proxy, and the line is
        judged again. (a denial, None) when a host was refused, now or before; else (None, the new decision)."""
        from jail.policy.hostpatterns import allow_fix

        from .destinations import unlisted
        from .judge import decide

        hosts = unlisted(line, cwd, self.policy.env, self.policy.network)
        if not hosts or any(self.hosts.pattern(host, port) is None for host, port in hosts):
            return None, decision  # a destination no answer could let through: the denial stands
        asked = []
        for host, port in hosts:
            allowed, how, now = self.hosts.ask_once(
                host, port, lambda question: self.ask(question, decision.reason, "network-allow", ""))
            if now:
                asked.append({"host": f"{host}:{port}", "allowed": allowed, "answered": how})
            if not allowed:
                event.update(decision="deny", rule="network-allow", reason=f"{host}:{port} was refused for this "
                             f"session: {how}", hosts_asked=asked)
                when = "" if now else ", and stays refused for this session"
                return _denial(f"{host}:{port} is not in the profile's network.allow; {how}{when}",
                               allow_fix(host, port)), None
        network = self.policy.network
        self.policy = self.policy._replace(network=network._replace(
            allow=tuple(dict.fromkeys((*network.allow, *self.hosts.allowed())))))
        event["hosts_asked"] = asked
        return None, decide(line, cwd, self.policy)

    def _preview(self, line: str, cwd: str, peer: _Peer | None) -> str:
        """The files the line would write, as a diff against what the jail sees now (see preview.py)."""
        from .preview import preview, reader

        try:
            if peer is None:
                return ""
            return preview(line, cwd, self.policy.env, reader(peer.root()))
        except Exception:  # noqa: BLE001 - a preview is a courtesy: never a reason to fail the question
            return ""

    def _allow(self, peer: _Peer, command_line: bool) -> None:
        """Remember the peer as a shell this service let run (before it gets the real shell)."""
        started = _start_time(peer.pid)
        if not peer.alive():
            raise OSError(3, "the process that asked is gone")
        with self._lock:
            self.allowed[peer.pid] = (started, command_line)
            if len(self.allowed) < self.prune_at:
                return
            pids = list(self.allowed)
        gone = [p for p in pids if self.allowed.get(p, (None,))[0] != _start_time(p)]
        with self._lock:
            for p in gone:
                self.allowed.pop(p, None)
            self.prune_at = max(PRUNE_ALLOWED, 2 * len(self.allowed))

    def _allowed(self, pid: int) -> tuple[int | None, bool] | None:
        """What `_allow` noted of `pid`, if that process (not a later one with its pid) is still it."""
        shell = self.allowed.get(pid)
        return shell if shell is not None and shell[0] == _start_time(pid) else None

    def _from_a_command_line(self, pid: int) -> bool:
        """Whether the nearest shell at or above `pid` is one this service judged for a `-c` line."""
        current: int | None = pid
        for _ in range(64):
            if current is None or current <= 1 or current == self.outermost:
                return False
            shell = self._allowed(current)
            if shell is not None:
                return shell[1]
            try:
                if os.path.realpath(f"/proc/{current}/exe") in self.shell_paths:
                    return False  # a shell nobody judged: a script's subshell, a make recipe
            except OSError:
                return False
            current = _parent(current)
        return False

    def _started_by_allowed_shell(self, pid: int) -> bool:
        """Whether an ancestor of `pid` is a real shell this service allowed (read from /proc)."""
        current = _parent(pid)
        for _ in range(64):
            if current is None or current <= 1 or current == self.outermost:
                return False
            if self._allowed(current) is not None:
                try:
                    if os.path.realpath(f"/proc/{current}/exe") in self.shell_paths:
                        return True
                except OSError:
                    pass
            current = _parent(current)
        return False

    def _system_script(self, peer: _Peer | None, cwd: str, path: str) -> bool:
        """Whether the script is a file of the jail's read-only system mounts, as the jail sees it."""
        from .systemscript import on_system_mount

        if peer is None or not path:
            return False
        try:
            return on_system_mount(peer.root(), path if path.startswith("/") else os.path.join(cwd, path))
        except OSError:
            return False  # not there, not regular, not readable: judged by its body, which says why

    def _read_script(self, peer: _Peer | None, cwd: str, path: str) -> tuple[str | None, str, str | None]:
        """(the script's text, "", None) as the jail sees it; else (None, why, the file's kind if it is
        a FIFO, socket or device, which is never opened and so is judged as unread)."""
        from jail.kernel import beneath

        from .preview import read_in_jail

        if peer is None:
            return None, "no process to read it for", None
        try:
            data = read_in_jail(peer.root(), path if path.startswith("/") else os.path.join(cwd, path), MAX_SCRIPT)
        except beneath.NotRegular as exc:
            return None, f"a {exc.kind}", None if exc.kind == "directory" else exc.kind
        except beneath.TooLarge as exc:
            return None, f"{exc.size} bytes, more than the {MAX_SCRIPT} checked", None
        except OSError as exc:
            return None, exc.strerror or str(exc), None
        if b"\0" in data[:4096]:
            return None, "a binary file", None
        return data.decode(errors="replace"), "", None


class _Peer:
    """The process at the other end of a connection, held by a pidfd so its pid cannot be reused.

    Its root is opened once, through /proc/PID, and only while the pidfd's process is alive: then
    /proc/PID was that process's, not a later one's with the same number.
    """

    def __init__(self, connection: _socket.socket, pid: int) -> None:
        self.pid = pid
        self._root: int | None = None
        try:
            self.pidfd = connection.getsockopt(_socket.SOL_SOCKET, SO_PEERPIDFD)
        except OSError:  # before Linux 6.5: the peer is blocked on its answer, so this pid is still it
            self.pidfd = os.pidfd_open(pid)

    def root(self) -> int:
        """A directory fd of the process's root, for openat2 with RESOLVE_IN_ROOT."""
        if self._root is None:
            proc = os.open(f"/proc/{self.pid}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                root = os.open("root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=proc)
            finally:
                os.close(proc)
            if not self.alive():
                os.close(root)
                raise OSError(3, "the process that asked is gone")
            self._root = root
        return self._root

    def alive(self) -> bool:
        """Whether the process is still the peer: then /proc/PID, read just before, was its own."""
        import signal

        try:
            signal.pidfd_send_signal(self.pidfd, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # it exists
        return True

    def executable(self) -> tuple[int, int] | None:
        """(st_dev, st_ino) of the program the process runs, read while it is still the peer."""
        try:
            st = os.stat(f"/proc/{self.pid}/exe")
        except OSError:
            return None
        return (st.st_dev, st.st_ino) if self.alive() else None

    def close(self) -> None:
        os.close(self.pidfd)
        if self._root is not None:
            os.close(self._root)


def _refuse(connection: _socket.socket, reason: str) -> None:
    """Tell the launcher why, without waiting on a client that does not read; then it is closed."""
    try:
        connection.setblocking(False)
        connection.send(b"D" + _denial(reason, "").encode())
    except OSError:
        pass
    connection.close()


def _send_fds(connection: _socket.socket, message: bytes, fds: list[int]) -> None:
    """An answer with the fds it hands out, all of it: a launcher that got part would run a cut argv."""
    words = message.count(b"\0")
    if len(message) >= ANSWER_MAX or words > MAX_ARGS + 2:
        raise ValueError(f"an answer of {len(message)} bytes and {words} words, more than the launcher takes "
                         f"({ANSWER_MAX} bytes, {MAX_ARGS} words)")
    sent = send_fds(connection, message, fds)
    if sent < len(message):
        connection.sendall(message[sent:])


def _receive(connection: _socket.socket, size: int, deadline: float) -> bytes:
    """`size` bytes, all of them by `deadline` (each recv waits only for what is left of it)."""
    chunks = []
    while size:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Refused(f"a request not sent within {REQUEST_SECONDS} s")
        connection.settimeout(left)
        try:
            chunk = connection.recv(min(size, 1 << 16))
        except TimeoutError:
            raise Refused(f"a request not sent within {REQUEST_SECONDS} s") from None
        if not chunk:
            raise ValueError("the launcher hung up")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _no_human(decision: str) -> str:
    return " (a person must approve this, and none is attached)" if decision == "ask" else ""


def _denial(reason: str, alternative: str) -> str:
    line = f"shelljail: denied: {reason}"
    if alternative:
        line += f"; instead: {alternative}"
    return line + "\n"


def launcher_path() -> str:
    """The C launcher `make setup` builds, or the Python fallback (also when the supervisor's
    environment has SHELLJAIL_PYTHON_LAUNCHER=1, for tests and comparisons)."""
    here = os.path.dirname(os.path.abspath(__file__))
    built = os.path.join(here, "shelljail-launcher")
    if os.access(built, os.X_OK) and os.environ.get("SHELLJAIL_PYTHON_LAUNCHER") != "1":
        return built
    return os.path.join(here, "launcher.py")


def attach(jail_spec: Any, interposer: Any, on_decision: Callable[[dict[str, Any]], None] | None = None,
           ask: Callable[[str, str, str | None, str], tuple[bool, str]] | None = None,
           dry_run: bool = False, trash: Any = None, network: Any = None,
           log: Any = None, timeline: Any = None) -> tuple[Any, DecisionService]:
    """The jail's spec with the launcher over its shells and the service's socket mounted,
    and the service (listening; call start() once the jail's processes are forked)."""
    from jail.policy.view import Bind, beyond_undo, home_binds, lasting_writable

    directory = private_directory()
    policy = (interposer, jail_spec.view.workspace, jail_spec.view.home, dict(jail_spec.env),
              home_binds(jail_spec.view), network, timeline is not None and not beyond_undo(jail_spec.view),
              lasting_writable(jail_spec.view))
    service = DecisionService(policy, directory, interposer.judge_child_shells, on_decision, ask, dry_run, log)
    launcher = launcher_path()
    if not launcher.endswith(".py"):  # the Python fallback runs as python3: any program could be it
        st = os.stat(launcher)
        service.launcher = (st.st_dev, st.st_ino)
    extra = [Bind(directory, JAIL_DIRECTORY, False)]
    extra += [Bind(launcher, target, False) for target in launcher_targets()]
    service.timeline = timeline
    if trash is not None:
        service.trash = trash
        extra += [Bind(launcher, target, False) for target in sorted(set(real_tools().values()))]
    view = jail_spec.view._replace(mounts=jail_spec.view.mounts + tuple(extra))
    # Landlock must let the command execute the real shells and tools, which are outside its view.
    executable = (*service.shells.values(), *service.tools.values())
    return jail_spec._replace(view=view, executable_fds=executable), service
