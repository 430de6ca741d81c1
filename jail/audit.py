"""The audit log: JSON Lines written only by the supervisor, one event per line.

A session's directory, `$XDG_STATE_HOME/shelljail/sessions/<id>/`, lies
outside every jail's view (the jail's home is an empty tmpfs), so nothing a
jailed process does can forge or erase an event. Each event is one
`write(2)` to a file opened with O_APPEND: a supervisor killed with SIGKILL
leaves a log that is complete up to its last decision. `session.json`
beside it says what the session is and how it ended.
"""

from __future__ import annotations

import _thread
import json
import os
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


class AuditLog:
    """One session's log; safe to use from the supervisor's threads."""

    def __init__(self, session: str | None = None, directory: str | None = None, redactor: Any = None) -> None:
        self.redactor = redactor  # masks the run's secrets in every event
        self.session = session or new_session_id()
        self.directory = directory or os.path.join(state_home(), self.session)
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        self.fd = os.open(os.path.join(self.directory, LOG_NAME),
                          os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._lock = _thread.allocate_lock()
        self.counts: dict[str, int] = {}

    def event(self, event: str, **fields: Any) -> None:
        if self.redactor:
            fields = self.redactor.value(fields)
        record = {"ts": round(time.time(), 6), "session": self.session, "event": event, **fields}
        line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode()
        with self._lock:
            os.write(self.fd, line)
            self.counts[event] = self.counts.get(event, 0) + 1

    def state(self, **fields: Any) -> None:
        """Replace session.json (atomically: a reader never sees half of it)."""
        path = os.path.join(self.directory, STATE_NAME)
        try:
            with open(path) as f:
                current = json.load(f)
        except (OSError, ValueError):
            current = {}
        current.update(fields, session=self.session)
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


def read(session: str) -> list[dict[str, Any]]:
    with open(os.path.join(state_home(), session, LOG_NAME)) as f:
        return [json.loads(line) for line in f if line.strip()]


def process_start(pid: int) -> int | None:
    from .procfs import start_time

    return start_time(pid)


def _alive(pid: Any, start: Any) -> bool:
    return isinstance(pid, int) and process_start(pid) is not None and process_start(pid) == start
