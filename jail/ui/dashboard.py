"""`shelljail dashboard`: a local web page to watch every session, answer approvals and stop jails.

It keeps no state of its own. Every view is read from the sessions' directories (session.json,
audit.jsonl, pending approvals, overlay layers); every action is the one the CLI takes: an answer
file for the approval broker, the stop note and SIGKILL, overlay commit or discard. So the audit
log stays the one source of truth, and says who acted through the dashboard.

Who may use it: it binds 127.0.0.1 only, and every request needs the random token of the URL it
prints (then kept in a SameSite=Strict cookie), a Host header naming 127.0.0.1 or localhost on its
port (no DNS rebinding), and, to act, an Origin header of the dashboard itself (no cross-site
requests). The page loads nothing from elsewhere and allows no inline script (a Content-Security-
Policy), so text from the log can never run as code. A jail never reaches it: its port is refused
as a forward, and the proxy refuses loopback addresses.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from jail.display import shown
from jail.errors import EXIT_SETUP
from jail.supervisor import audit

# `registered_port` is imported by every `run` with a proxy: the server's imports (hmac, secrets,
# urllib.parse, http.server) wait in `serve` and `act`, which only the dashboard itself calls.

COOKIE = "shelljail_dashboard_{port}"  # cookies are per host, not per port: two dashboards keep theirs apart
REGISTRATION = "dashboard.json"


def _registration_path() -> str:
    return os.path.join(os.path.dirname(audit.state_home()), REGISTRATION)


def registered_port() -> int | None:
    """The port of this user's running dashboard, if one runs: jails must never be given a way to it."""
    try:
        with open(_registration_path()) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    pid, port = data.get("pid"), data.get("port")
    if not isinstance(pid, int) or audit.process_start(pid) != data.get("start"):
        return None
    return port if isinstance(port, int) else None


# ---- what the pages show -----------------------------------------------------------------------


class Counter:
    """Each session's decision counts and exit event, reading only what was appended since the last look."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[int, dict[str, int], dict[str, Any] | None]] = {}

    def summary(self, session: str) -> tuple[dict[str, int], dict[str, Any] | None]:
        offset, counts, ended = self.seen.get(session, (0, {}, None))
        try:
            with open(os.path.join(audit.state_home(), session, audit.LOG_NAME), "rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            return counts, ended
        complete = data[:data.rfind(b"\n") + 1]
        counts = dict(counts)
        for line in complete.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "decision":
                counts[event.get("decision", "?")] = counts.get(event.get("decision", "?"), 0) + 1
            elif event.get("event") == "exit":
                ended = event
        self.seen[session] = (offset + len(complete), counts, ended)
        return counts, ended


def session_rows(counter: Counter) -> list[dict[str, Any]]:
    """Every session with its age, what it uses now (running) or used (ended), and its decisions."""
    from jail.supervisor import procfs

    rows = []
    now = time.time()
    for state in audit.sessions():
        session = str(state.get("session"))
        counts, ended = counter.summary(session)
        row = {**state, "counts": counts, "age": None, "cpu": None, "memory": None, "processes": None}
        try:
            row["age"] = now - time.mktime(time.strptime(str(state.get("started")), "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            pass
        holder = state.get("holder_pid")
        if state.get("state") == "running" and isinstance(holder, int) and \
                audit.process_start(holder) == state.get("holder_start"):
            pids = procfs.tree(holder)
            row["cpu"], row["memory"] = procfs.usage(pids)
            row["processes"] = len(pids)
        elif ended:
            row["cpu"] = (ended.get("cpu_user") or 0) + (ended.get("cpu_system") or 0)
            row["memory"] = (ended.get("peak_memory_kib") or 0) * 1024 or None
        rows.append(row)
    return rows


def overlay_of(session: str) -> tuple[Any, list[tuple[str, str]]] | None:
    """A session's overlay waiting for review: (the overlay session, [(change line, unified diff)])."""
    from jail.recovery import overlay

    try:
        info = audit.find(session)
        target = overlay.session(info, os.path.join(audit.state_home(), session))
    except (LookupError, OSError, KeyError, ValueError):
        return None
    if target.state != "pending":
        return None
    changes = overlay.changes(target.upper, target.workspace)
    return target, [(f"{c.kind} {c.path}", overlay.unified(c, target.workspace)) for c in changes]


SHOWN_COMMANDS = 50  # commands of a timeline shown with their files and diffs; older ones by their summary


def timeline_of(session: str) -> list[dict[str, Any]] | None:
    """A session's commands with what each changed and its diffs (None: the session has no timeline)."""
    from jail.recovery import timeline

    try:
        audit.find(session)
        directory = os.path.join(audit.state_home(), session)
        rows = timeline.commands(timeline.read_points(timeline.timeline_directory(directory)))
        shown = {row["point"] for row in rows[-SHOWN_COMMANDS:] if row["changes"]}  # the newest, with diffs
        diffs = timeline.command_diffs(directory, shown)
        for row in rows:
            row["diffs"] = diffs.get(row["point"], [])
    except (LookupError, OSError, timeline.TimelineError):
        return None
    return rows


# ---- what the buttons do -----------------------------------------------------------------------


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def act(path: str, form: dict[str, str]) -> tuple[int, str]:
    """Carry out one POSTed action; (HTTP status, one line saying what happened)."""
    from jail.recovery import overlay
    from jail.supervisor import approvals, session

    parts = [p for p in path.split("/") if p]
    try:
        if parts[:1] in (["approve"], ["deny"]) and len(parts) == 2:
            choice = "deny" if parts[0] == "deny" else ("always" if form.get("scope") == "always" else "once")
            request = approvals.answer(audit.state_home(), parts[1], choice, _user(), via="the dashboard")
            return 200, f"{choice}: {shown(request.get('command'))}"
        if parts == ["stop-all"]:
            stopped = []
            for state in audit.sessions():
                if state.get("state") == "running":
                    try:
                        session.request_stop(state, "the dashboard")
                        stopped.append(str(state["session"]))
                    except LookupError:
                        continue
            return 200, f"stopped {len(stopped)} session(s)" + (f": {shown(', '.join(stopped))}" if stopped else "")
        if parts[:1] == ["stop"] and len(parts) == 2:
            session.request_stop(audit.find(parts[1]), "the dashboard")
            return 200, f"stopped session {shown(parts[1])}"
        if parts[:1] == ["overlay"] and len(parts) == 3 and parts[2] in ("commit", "discard"):
            info = audit.find(parts[1])
            if info.get("state") == "running":
                return 409, f"session {shown(parts[1])} is still running; stop it or wait for it first"
            pending = overlay_of(parts[1])
            if pending is None:
                return 409, f"session {shown(parts[1])} has no overlay waiting for review"
            target = pending[0]
            if parts[2] == "discard":
                overlay.discard(target)
                overlay.record(target, "overlay-discard", "discarded", via="the dashboard")
                return 200, f"discarded the changes of session {shown(parts[1])}"
            chosen = overlay.changes(target.upper, target.workspace)
            problems = overlay.conflicts(chosen, target)
            if problems:
                return 409, f"commit refused, nothing applied: {shown('; '.join(problems[:3]))}"
            skipped = overlay.commit(chosen, target)
            overlay.record(target, "overlay-commit", "committed", paths=[f"{c.kind} {c.path}" for c in chosen],
                           via="the dashboard")
            return 200, f"committed {len(chosen)} change(s) to {shown(target.workspace)}" + (
                f"; {len(skipped)} special file(s) (FIFO, socket, device) not copied" if skipped else "")
        if parts[:1] == ["undo"] and len(parts) == 3 and parts[2].isdigit():
            return _undo(parts[1], int(parts[2]))
    except LookupError as exc:
        return 404, shown(str(exc))
    return 404, f"no action {shown(path)}"


def _undo(session: str, point: int) -> tuple[int, str]:
    """The workspace back to before command `point`, as `shelljail undo --to` does (never --force)."""
    from jail.recovery import timeline

    info = audit.find(session)
    if info.get("state") == "running":
        return 409, f"session {shown(session)} is still running; stop it or wait for it first"
    try:
        outcome = timeline.undo(os.path.join(audit.state_home(), str(info["session"])), str(info.get("workspace")),
                                point, (), False, f"shelljail undo --to {point} (the dashboard)")
    except (OSError, timeline.TimelineError) as exc:
        return 409, f"undo refused: {shown(str(exc))}"
    missed = f"; not restored: {shown(', '.join(p for p, _ in outcome['not_restored'][:3]))}" \
        if outcome["not_restored"] else ""
    return 200, (f"undone: restored {len(outcome['done'])} path(s) to point {point}; what was there before is "
                 f"point {outcome['saved']}{missed}")


def visible(value: Any) -> Any:
    """An event for the page: every string in it (keys too) passed through `shown`, so the script,
    which inserts them as text, shows the escapes and never a raw control or bidi character."""
    if isinstance(value, str):
        return shown(value)
    if isinstance(value, dict):
        return {shown(str(key)): visible(item) for key, item in value.items()}
    if isinstance(value, list):
        return [visible(item) for item in value]
    return value


def event_message(line: bytes) -> bytes:
    """One line of the audit log as one server-sent event, its text made visible; b"" for a line
    that is not an event (the log is the supervisor's, but a reader never trusts a line to parse)."""
    try:
        event = json.loads(line)
    except ValueError:
        return b""
    if not isinstance(event, dict):
        return b""
    return b"data: " + json.dumps(visible(event)).encode() + b"\n\n"


# ---- the server --------------------------------------------------------------------------------


def serve(port: int, say: Any = print) -> int:
    """Serve until interrupted. 0 after Ctrl-C; 125 when the port cannot be had."""
    import hmac
    import secrets
    import socket
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    from jail.ui import dashboard_page as page

    token = secrets.token_urlsafe(24)
    counter = Counter()

    class Handler(BaseHTTPRequestHandler):
        server_version = "shelljail-dashboard"
        protocol_version = "HTTP/1.1"

        # -- checks
        def _allowed_host(self) -> bool:
            port_now = self.server.server_address[1]
            return self.headers.get("Host", "") in (f"127.0.0.1:{port_now}", f"localhost:{port_now}")

        def _allowed_origin(self) -> bool:
            port_now = self.server.server_address[1]
            return self.headers.get("Origin", "") in (f"http://127.0.0.1:{port_now}", f"http://localhost:{port_now}")

        def _has_token(self) -> bool:
            from http.cookies import CookieError, SimpleCookie

            try:
                cookie = SimpleCookie(self.headers.get("Cookie", ""))
            except CookieError:
                return False
            name = COOKIE.format(port=self.server.server_address[1])
            given = cookie[name].value if name in cookie else self.headers.get("X-Shelljail-Token", "")
            return hmac.compare_digest(given.encode(), token.encode())

        def _refuse(self, why: str) -> None:
            self._send(403, "text/plain; charset=utf-8", f"shelljail dashboard: refused: {why}\n".encode())

        # -- requests
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            url = urlsplit(self.path)
            if not self._allowed_host():
                return self._refuse("the Host header must be 127.0.0.1 or localhost on this port")
            given = parse_qs(url.query).get("token", [""])[0]
            if url.path == "/" and given:
                if not hmac.compare_digest(given.encode(), token.encode()):
                    return self._refuse("wrong token; use the URL shelljail dashboard printed")
                self.send_response(303)
                self.send_header("Location", "/")
                name = COOKIE.format(port=self.server.server_address[1])
                self.send_header("Set-Cookie", f"{name}={token}; HttpOnly; SameSite=Strict; Path=/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if not self._has_token():
                return self._refuse("no token; open the URL shelljail dashboard printed")
            parts = [p for p in url.path.split("/") if p]
            if url.path == "/":
                return self._html(page.index(session_rows(counter), _pending()))
            if parts == ["app.js"]:
                return self._send(200, "text/javascript; charset=utf-8", page.SCRIPT.encode())
            if parts == ["app.css"]:
                return self._send(200, "text/css; charset=utf-8", page.STYLE.encode())
            if parts == ["part", "sessions"]:
                return self._html(page.sessions_table(session_rows(counter)))
            if parts == ["part", "approvals"]:
                return self._html(page.approvals_list(_pending(parse_qs(url.query).get("session", [None])[0])))
            if len(parts) == 2 and parts[0] == "session":
                row = next((r for r in session_rows(counter) if r.get("session") == parts[1]), None)
                if row is None:
                    return self._send(404, "text/plain; charset=utf-8", b"no such session\n")
                return self._html(page.session_page(row, _pending(parts[1]), overlay_of(parts[1]),
                                                     timeline_of(parts[1])))
            if len(parts) == 2 and parts[0] == "events":
                return self._events(parts[1])
            return self._send(404, "text/plain; charset=utf-8", b"not found\n")

        def do_POST(self) -> None:  # noqa: N802
            if not self._allowed_host():
                return self._refuse("the Host header must be 127.0.0.1 or localhost on this port")
            if not self._allowed_origin():
                return self._refuse("actions are taken only from the dashboard's own page (Origin)")
            if not self._has_token():
                return self._refuse("no token; open the URL shelljail dashboard printed")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode(errors="replace") if length else ""
            form = {k: v[0] for k, v in parse_qs(body).items()}
            status, message = act(urlsplit(self.path).path, form)
            self._send(status, "application/json", json.dumps({"ok": status == 200, "message": message}).encode())
            return None

        # -- the live view: the session's audit log as server-sent events, as it is appended
        def _events(self, session: str) -> None:
            path = os.path.join(audit.state_home(), session, audit.LOG_NAME)
            if os.path.basename(session) != session or not os.path.exists(path):
                return self._send(404, "text/plain; charset=utf-8", b"no such session\n")
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            last_sent = time.monotonic()
            try:
                with open(path, "rb") as f:
                    pending = b""
                    while not stopping:
                        chunk = f.read()
                        if chunk:
                            pending += chunk
                            lines, _, pending = pending.rpartition(b"\n")
                            if lines:
                                self.wfile.write(b"".join(event_message(line)
                                                         for line in lines.split(b"\n") if line.strip()))
                                self.wfile.flush()
                                last_sent = time.monotonic()
                        elif time.monotonic() - last_sent > 10:
                            self.wfile.write(b": still here\n\n")  # a closed page shows up as a failed write
                            self.wfile.flush()
                            last_sent = time.monotonic()
                        else:
                            time.sleep(0.1)
            except OSError:
                return None
            return None

        def _html(self, text: str) -> None:
            self._send(200, "text/html; charset=utf-8", text.encode())

        def _send(self, status: int, kind: str, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Content-Security-Policy",
                             "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                             "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: object) -> None:
            pass

    stopping = False
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    except OSError as exc:
        say(f"shelljail: cannot listen on 127.0.0.1:{port}: {exc.strerror}; choose another with --port N "
            "(0: any free port)")
        return EXIT_SETUP
    server.daemon_threads = True
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    bound = server.server_address[1]
    registration = _registration_path()
    os.makedirs(os.path.dirname(registration), exist_ok=True)
    audit.write_json(registration, {"port": bound, "pid": os.getpid(), "start": audit.process_start(os.getpid())})
    say(f"shelljail dashboard: http://127.0.0.1:{bound}/?token={token}")
    say("open that URL (it holds the access token); Ctrl-C stops the dashboard, not the jails")
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        stopping = True
        server.server_close()
        try:
            os.unlink(registration)
        except OSError:
            pass
    return 0


def _pending(session: str | None = None) -> list[dict[str, Any]]:
    from jail.supervisor import approvals

    found = approvals.pending(audit.state_home())
    return [r for r in found if session is None or r.get("session") == session]
