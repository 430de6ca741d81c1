"""The audit log: JSON Lines written only by the supervisor, one event per line.

A session's directory, `$XDG_STATE_HOME/shelljail/sessions/<id>/`, lies
outside every jail's view (the jail's home is an empty tmpfs), so nothing a
jailed process does can forge or erase an event. Each event is one
`write(2)` to a file opened with O_APPEND: a supervisor killed with SIGKILL
leaves a log that is complete up to its last decision. `session.json`
beside it says what the session is and how it ended.

Everything in an event may be jail-made, so writing one never fails on its
content: the line is JSON written with `ensure_ascii=True`, so a byte that
was not UTF-8 (a surrogate-escaped `\\udcff` from os.fsdecode) stays a
`\\udcff` escape, valid JSON that json.loads reads back to the same str
(os.fsencode gives the original bytes); a string over FIELD_CHARS is cut
to its start and its end with a marker naming its length, a list or table over FIELD_ITEMS is cut
with a marker naming its size, and an event still over EVENT_BYTES is cut
harder until it fits. A session's log is bounded (limits.audit_bytes, default LOG_BYTES):
past it one `audit-log-full` event is written, `full` is set, nothing more
is written, and the decision service denies every command from then on (a
session that cannot be logged fails closed). The same holds when the disk
refuses a write. `view.shown_in` (through session.start) refuses a state directory that the jail's view
would show (XDG_STATE_HOME inside the workspace).
"""

from __future__ import annotations

import _thread
import errno
import json
import os
import stat
import time
from typing import Any

LOG_NAME = "audit.jsonl"
STATE_NAME = "session.json"
STOP_NAME = "stop-request.json"


def state_home() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "shelljail", "sessions")


KEEP_SESSIONS = 500  # older ended sessions are removed when a new one starts


def prune(keep: int = KEEP_SESSIONS) -> None:
    """Remove the oldest ended sessions beyond `keep`, so the state directory stays bounded."""
    root = state_home()
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return
    for name in names[:max(0, len(names) - keep)]:
        directory = os.path.join(root, name)
        try:
            try:
                with open(os.path.join(directory, STATE_NAME)) as f:
                    state = json.load(f)
            except (OSError, ValueError):  # a start that failed before it said anything, or one just begun
                if time.time() - os.stat(directory).st_mtime < 3600:
                    continue
                state = {}
            running = state.get("state") == "running" and _alive(state.get("supervisor_pid"),
                                                                 state.get("supervisor_start"))
            if running or state.get("overlay") == "pending":
                continue  # still running, or an overlay not yet committed or discarded
            remove_tree(directory)
        except (OSError, ValueError):
            continue


def remove_tree(path: str) -> None:
    """rm -r without shutil (3 ms to import on every start), also through overlayfs's work
    directory, which it leaves with mode 000."""
    for directory, subdirectories, files in os.walk(path, topdown=False, onerror=lambda _exc: None):
        for name in files + [d for d in subdirectories if os.path.islink(os.path.join(directory, d))]:
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass
        for name in subdirectories:
            full = os.path.join(directory, name)
            if os.path.islink(full):
                continue
            try:
                os.rmdir(full)
            except OSError:
                os.chmod(full, 0o700)
                remove_tree(full)
                try:
                    os.rmdir(full)
                except OSError:
                    pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def write_json(path: str, data: Any, indent: int | None = None) -> None:
    """Write a JSON file atomically (a temporary file renamed over it): no reader sees half of it."""
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        json.dump(data, f, indent=indent, default=str)
    os.replace(temporary, path)


def new_session_id() -> str:
    """Sortable by start, to the millisecond (two runs in one second keep their order), then unique."""
    now = time.time()
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"{int(now * 1000) % 1000:03d}-" + os.urandom(3).hex()


LOG_BYTES = 64 << 20  # the most one session's log holds: past it, audit-log-full and commands denied
FIELD_CHARS = 4096  # a longer string in an event is cut, with a marker naming its length
FIELD_ITEMS = 1000  # a longer list or table in an event is cut, with a marker naming its size
FIELD_DEPTH = 16  # values nested deeper are replaced by a marker
EVENT_BYTES = 64 << 10  # an event still longer than this is cut harder (_HARDER), at last to its name
_HARDER = ((512, 100, 4), (128, 16, 2))  # (chars, items, depth) tried in turn for a long event
_FULL_RESERVE = 4096  # kept free below the cap for the audit-log-full event


def _cut_text(value: str, chars: int) -> str:
    """Its start and its end: an agent's wrapper (a shell snapshot's prelude of 38 KB) puts the command
    itself last, so a cut that kept only the start would hide what was judged."""
    head = chars * 3 // 4
    tail = chars - head
    return (f"{value[:head]}...[cut: {len(value)} characters in all, the first {head} and the last {tail} "
            f"kept]...{value[-tail:]}")


def bounded(value: Any, chars: int = FIELD_CHARS, items: int = FIELD_ITEMS, depth: int = FIELD_DEPTH) -> Any:
    """A JSON-ready copy of `value`: long strings, lists and tables cut, each cut marked with its size."""
    if isinstance(value, int) and abs(value) >= 1 << 64:  # json (str) refuses integers of 4,300 digits
        return f"[cut: an integer of {value.bit_length()} bits]"
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if not isinstance(value, (dict, list, tuple)):
        value = _text(value)
    if isinstance(value, str):
        return value if len(value) <= chars else _cut_text(value, chars)
    if depth <= 0:
        return f"[cut: {len(value)} items nested too deep]"
    if isinstance(value, dict):
        table = {bounded(_text(key), chars, items, 0): bounded(item, chars, items, depth - 1)
                 for key, item in (value.items() if len(value) <= items else list(value.items())[:items])}
        return table if len(value) <= items else {**table, "[cut]": f"{len(value)} entries in all"}
    cut = [bounded(item, chars, items, depth - 1) for item in value[:items]]
    return cut if len(value) <= items else [*cut, f"[cut: {len(value)} items in all]"]


def _text(value: Any) -> str:
    """Any value as text: bytes as file names are decoded, an object whose str() fails named instead."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    try:
        return str(value)
    except Exception as exc:  # noqa: BLE001 - any object's str() may fail, and the event must still be logged
        return f"[unprintable {type(value).__name__}: {type(exc).__name__}]"


def _top_strings(record: dict[str, Any]) -> Any:
    """The strings of an event's fields and of its lists of strings (argv, paths): where long text is."""
    for value in record.values():
        if isinstance(value, str):
            yield value
        elif isinstance(value, (list, tuple)):
            yield from (item for item in value if isinstance(item, str))


def event_line(record: dict[str, Any]) -> bytes:
    """One event as one line of ASCII JSON, whatever its content (see the module's note); never raises."""
    try:  # the common case: a short event, which no cut can change, written as it is
        if not any(len(v) > FIELD_CHARS for v in _top_strings(record)):  # no long line encoded twice
            line = json.dumps(record, ensure_ascii=True, default=str)
            if len(line) <= FIELD_CHARS:
                return (line + "\n").encode("ascii")
    except Exception:  # noqa: BLE001 - a key, an integer, a nesting or an object's str(): bounded() copes
        pass
    head = {key: bounded(record.get(key), 256) for key in ("ts", "session", "event")}
    try:
        line = json.dumps(bounded(record), ensure_ascii=True)
        for chars, items, depth in _HARDER:  # many long fields: cut harder
            if len(line) < EVENT_BYTES:
                break
            line = json.dumps(bounded(record, chars, items, depth), ensure_ascii=True)
    except Exception as exc:  # noqa: BLE001 - not expected (bounded() makes every value writable); still logged
        line = json.dumps({**head, "cut": f"fields not serialisable ({type(exc).__name__})"}, ensure_ascii=True)
    if len(line) >= EVENT_BYTES:
        line = json.dumps({**head, "cut": f"the event took {len(line)} bytes, over {EVENT_BYTES}"}, ensure_ascii=True)
    return (line + "\n").encode("ascii")


class AuditLog:
    """One session's log; safe to use from the supervisor's threads. Never raises from `event`."""

    def __init__(self, session: str | None = None, directory: str | None = None, redactor: Any = None,
                 max_bytes: int | None = None) -> None:
        self.redactor = redactor  # masks the run's secrets in every event
        self.session = session or new_session_id()
        self.directory = directory or os.path.join(state_home(), self.session)
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        # Never through a symlink, never blocking on a FIFO, and only a regular file: the directory is the
        # supervisor's (view.shown_in keeps it out of the jail's view), this holds even if it were not.
        self.fd = os.open(os.path.join(self.directory, LOG_NAME), os.O_WRONLY | os.O_APPEND | os.O_CREAT
                          | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
        info = os.fstat(self.fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(self.fd)
            raise OSError(errno.EINVAL, f"{LOG_NAME} is not a regular file")
        self._lock = _thread.allocate_lock()
        self.counts: dict[str, int] = {}
        self.max_bytes = max(max_bytes or LOG_BYTES, 2 * _FULL_RESERVE)
        # What this writer appended: the cap bounds the session's supervisor; a log reopened after the session
        # (overlay commit or discard, a person's action) still takes those few events past an audit-log-full.
        self.written = 0
        self.full = False  # set once the cap is reached or the log cannot be written: commands are denied
        self.not_logged = 0  # events after that
        self.write_error: str | None = None  # why the disk refused the last event, if it did

    def event(self, event: str, **fields: Any) -> None:
        """Append one event; past the cap, or when the disk refuses, `full` is set and nothing is written."""
        try:
            if self.redactor:
                fields = self.redactor.value(fields)
        except RecursionError:
            fields = {"cut": "fields nested too deep to redact"}
        line = event_line({"ts": round(time.time(), 6), "session": self.session, "event": str(event), **fields})
        with self._lock:
            self.counts[event] = self.counts.get(event, 0) + 1
            if self.full:
                self.not_logged += 1
                return
            if self.written + len(line) > self.max_bytes - _FULL_RESERVE:
                self.full = True
                self.not_logged += 1
                line = event_line({"ts": round(time.time(), 6), "session": self.session, "event": "audit-log-full",
                                   "bytes": self.written, "limit": self.max_bytes, "first_not_logged": str(event),
                                   "reason": f"the session's audit log reached its limit of {self.max_bytes} bytes: "
                                             "nothing more is logged and every command is denied from here on"})
            self._write(line)

    def _write(self, line: bytes) -> None:
        """One write(2) per event (O_APPEND: never interleaved), the rest retried after a short write."""
        try:
            while line:
                done = os.write(self.fd, line)
                self.written += done
                line = line[done:]
        except OSError as exc:  # a full disk, a lost mount: fail closed rather than run unlogged
            self.full = True
            self.write_error = exc.strerror or str(exc)
            self.not_logged += 1

    def state(self, **fields: Any) -> None:
        """Replace session.json (atomically: a reader never sees half of it)."""
        path = os.path.join(self.directory, STATE_NAME)
        try:
            with open(path) as f:
                current = json.load(f)
        except (OSError, ValueError):
            current = {}
        current.update(fields, session=self.session)
        if self.full:
            current.update(audit_log="full", events_not_logged=self.not_logged)
        write_json(path, current, indent=2)

    def stop_request(self) -> dict[str, Any] | None:
        """Who asked `shelljail stop` for this session, if anyone did."""
        try:
            with open(os.path.join(self.directory, STOP_NAME)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        os.close(self.fd)


def sessions() -> list[dict[str, Any]]:
    """Every recorded session, newest first, with a state that accounts for dead supervisors."""
    root = state_home()
    try:
        names = sorted(os.listdir(root), reverse=True)
    except OSError:
        return []
    found = []
    for name in names:
        try:
            with open(os.path.join(root, name, STATE_NAME)) as f:
                state = json.load(f)
        except (OSError, ValueError):
            state = {"session": name, "state": "unknown"}
        if state.get("state") == "running" and not _alive(state.get("supervisor_pid"), state.get("supervisor_start")):
            state["state"] = "lost"  # the supervisor died without recording an end
        found.append(state)
    return found


def find(session: str | None) -> dict[str, Any]:
    """A session by id or unique prefix (default: the newest)."""
    all_sessions = sessions()
    if not all_sessions:
        raise LookupError("no sessions recorded yet (shelljail run starts one)")
    if session is None:
        return all_sessions[0]
    matches = [s for s in all_sessions if str(s.get("session", "")).startswith(session)]
    if len(matches) != 1:
        raise LookupError(f"{'no' if not matches else 'more than one'} session matches {session!r} "
                          "(shelljail sessions lists them)")
    return matches[0]


def parse_line(line: str | bytes) -> dict[str, Any]:
    """One line of a log as its event; a line that is not one (a cut write) as an `unreadable-line` event."""
    try:
        event = json.loads(line)
    except ValueError:  # also UnicodeDecodeError: bytes that are not UTF-8
        event = None
    if isinstance(event, dict):
        return event
    text = line.decode("utf-8", "surrogateescape") if isinstance(line, bytes) else line
    return {"event": "unreadable-line", "text": bounded(text.rstrip("\n"), 300)}


def read_lines(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every event of a log file, a line that is not one as `unreadable-line`."""
    with open(path, "rb") as f:
        return [parse_line(line) for line in f if line.strip()]


def read(session: str) -> list[dict[str, Any]]:
    return read_lines(os.path.join(state_home(), session, LOG_NAME))


def process_start(pid: int) -> int | None:
    from jail.supervisor.procfs import start_time

    return start_time(pid)


def _alive(pid: Any, start: Any) -> bool:
    return isinstance(pid, int) and process_start(pid) is not None and process_start(pid) == start
