"""A run as a session: its audit log opened and closed, and the commands that read it or stop it."""

from __future__ import annotations

import json
import os
import pwd
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from jail.errors import EXIT_SETUP, EXIT_STOPPED, EXIT_TIMEOUT
from jail.supervisor import audit

_COLOURS = {"deny": "bold red", "ask": "yellow", "allow": "green", "stop": "bold magenta", "limit": "magenta",
            "exit": "cyan", "session-start": "cyan"}


def start(profile: Any, spec: Any, interposing: bool) -> audit.AuditLog:
    """Open the session's log and record what the jail will be. (Old sessions are pruned by prune(), after the
    jail's fork.)"""
    from jail.errors import JailError

    redactor = None
    if spec.secrets:
        from jail.policy.secrets import Redactor

        redactor = Redactor(spec.secrets)
    from jail.cachedir import cache_home
    from jail.policy.view import shown_in

    exposed = shown_in(audit.state_home(), spec.view.mounts)
    if exposed is not None:  # the jail could append forged events, or read other sessions' logs
        raise JailError(f"the audit log's directory {audit.state_home()} is inside {exposed}, which the jail sees",
                        "set XDG_STATE_HOME to a directory outside the workspace and the profile's paths")
    exposed = shown_in(cache_home(), spec.view.mounts)
    if exposed is not None:  # a filter or profile planted there would be loaded by the next run
        raise JailError(f"shelljail's cache {cache_home()} is inside {exposed}, which the jail sees",
                        "set XDG_CACHE_HOME to a directory outside the workspace and the profile's paths")
    try:
        log = audit.AuditLog(redactor=redactor, max_bytes=profile.limits.audit_bytes)
    except OSError as exc:
        raise JailError(f"cannot write the audit log under {audit.state_home()}: {exc.strerror}",
                        "set XDG_STATE_HOME to a writable directory") from None
    from jail.sandbox.landlock import abi_version

    features = {
        "namespaces": ["user", "mount", "pid", "ipc", "uts", "net"],
        "seccomp": profile.seccomp.enabled, "setid_guard": bool(spec.seccomp),
        "seccomp_instructions": len(spec.seccomp or b"") // 8,
        "landlock": "off" if spec.landlock_mode == "off" else f"{spec.landlock_mode} (ABI {abi_version()})",
        "interposer": interposing, "network": profile.network.mode,
    }
    log.state(state="running", supervisor_pid=os.getpid(), supervisor_start=audit.process_start(os.getpid()),
              profile=profile.name, workspace=spec.view.workspace, argv=list(spec.argv),
              started=time.strftime("%Y-%m-%d %H:%M:%S"))
    log.event("session-start", profile=profile.name, workspace=spec.view.workspace, argv=list(spec.argv),
              cwd=spec.cwd, mounts=[_mount(m) for m in spec.view.mounts], limits=profile.limits._asdict(),
              features=features, run_flags=list(spec.run_flags), programs=_programs(spec.view.programs),
              agent_config=_agent_config(profile, spec.view.workspace))
    return log


def prune() -> Callable[[], None]:
    """Start removing the oldest ended sessions (audit.prune) in a thread; returns the wait for it to end.

    Called after the jail's fork: once KEEP_SESSIONS are kept, every start removes one session's tree, which
    took 5-17 ms before the fork (#27). The run waits for it before it ends, so none is left half-pruned."""
    import threading

    pruning = threading.Thread(target=audit.prune, daemon=True, name="prune")
    pruning.start()
    return pruning.join


def end(log: audit.AuditLog, code: int, reason: str | None) -> None:
    """`reason` is set when shelljail itself ended the run (setup failure, timeout, stop)."""
    state = {EXIT_TIMEOUT: "timeout", EXIT_STOPPED: "stopped"}.get(code, "failed" if reason is not None else "exited")
    if reason is not None and code == EXIT_SETUP:
        log.event("exit", status=code, reason=reason)
    log.state(state=state, exit_status=code, ended=time.strftime("%Y-%m-%d %H:%M:%S"),
              decisions=log.counts.get("decision", 0))
    log.close()


def _programs(found: Any) -> dict[str, Any]:
    """filesystem.path_targets: what the view bound for the caller's programs and why, what it refused."""
    return {"added": [{"path": a.path, "why": a.why} for a in found.added],
            "refused": [{"path": r.path, "why": r.why} for r in found.refused], "path": list(found.path)}


def _agent_config(profile: Any, workspace: str) -> dict[str, Any]:
    """[agent]: how the agent's configuration was given (copy, read-only, none), which places, the copy's home."""
    from jail.policy import agentconfig

    agent = profile.agent
    copy = agentconfig.store(profile, workspace) if agent.config == "copy" and agent.config_paths else None
    return {"mode": agent.config, "paths": list(agent.config_paths), "copy": copy}


def _mount(mount: Any) -> dict[str, Any]:
    return {"kind": type(mount).__name__.lower(), **mount._asdict()}


def list_sessions(as_json: bool) -> int:
    found = audit.sessions()
    if as_json:
        for state in found:
            print(json.dumps(state))  # ASCII: controls and bidi characters JSON escapes, the data exact
        return 0
    if not found:
        print("no sessions recorded yet (shelljail run starts one)")
        return 0
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from jail.display import shown

    def cell(value: Any, style: str = "") -> Text:
        """Escaped by `shown` (the argv is the jail's), and a Text: rich reads no markup in it."""
        return Text(shown(value), style=style)

    table = Table("session", "state", "profile", "workspace", "command", "started", "exit", "decisions")
    for state in found:
        colour = {"running": "green", "stopped": "magenta", "lost": "red", "failed": "red"}.get(state.get("state"))
        argv = state.get("argv", [])
        table.add_row(cell(state.get("session", "?")), cell(state.get("state"), colour or ""),
                      cell(state.get("profile", "")), cell(state.get("workspace", "")),
                      cell(shown(" ".join(map(str, argv)) if isinstance(argv, list) else argv)[:40]),
                      cell(state.get("started", "")), cell(state.get("exit_status", "")),
                      cell(state.get("decisions", "")))
    Console().print(table)
    return 0


def show_log(session: str | None, as_json: bool, follow: bool) -> int:
    try:
        state = audit.find(session)
    except LookupError as exc:
        print(f"shelljail: {exc}", file=sys.stderr)
        return 1
    path = os.path.join(audit.state_home(), state["session"], audit.LOG_NAME)
    with open(path, "rb") as f:
        while True:
            line = f.readline()
            if line and (line.endswith(b"\n") or not follow):
                if line.strip():  # a line that is not an event shows as unreadable-line, and the rest follows
                    _print_event(audit.parse_line(line), as_json)
                continue
            if line:  # half an event, still being written: read it whole on the next look
                f.seek(-len(line), os.SEEK_CUR)
            if not follow or audit.find(state["session"]).get("state") != "running":
                return 0
            time.sleep(0.2)


def _print_event(event: dict[str, Any], as_json: bool) -> None:
    if as_json:  # ASCII: controls, bidi characters and lone surrogates JSON escapes, the data exact
        print(json.dumps(event), flush=True)
        return
    from rich.console import Console
    from rich.text import Text

    from jail.display import shown

    # The jail's text escaped by `shown`, in a rich Text: no markup and no emoji codes are read in it.
    when = time.strftime("%H:%M:%S", time.localtime(event.get("ts", 0)))
    kind = str(event.get("event", "?"))
    line = Text(f"{when}  ")
    if kind == "decision":
        decision = str(event.get("decision", "?"))
        what = event.get("command") or " ".join(map(str, event.get("argv", [])))
        colour = _COLOURS.get(decision, "")
        line.append(f"{shown(decision):5} {shown(str(what))}", style=colour)
        if decision != "allow" or event.get("rule") not in (None, "child-shell"):
            line.append(f"  ({shown(str(event.get('rule')))}: {shown(str(event.get('reason', '')))})",
                        style=f"{colour} dim".strip())
    elif kind == "nested-sandbox":  # one line a person acts on, however many calls were denied
        line.append(f"{shown(str(event.get('message', '')))} (first {shown(str(event.get('syscall')))} by "
                    f"{shown(str(event.get('program')))}; see docs/agents.md)", style="bold yellow")
    else:
        details = {k: v for k, v in event.items() if k not in ("ts", "session", "event", "mounts")}
        line.append(f"{shown(kind)} " + shown(json.dumps(details, ensure_ascii=False, default=str)[:300]),
                    style=_COLOURS.get(kind, ""))
    Console(highlight=False, emoji=False).print(line)


def stop(session: str | None) -> int:
    """Kill a running jail at once, and leave a note of who did it for the supervisor to log."""
    from jail.display import shown

    try:
        state = audit.find(session) if session else next(
            s for s in audit.sessions() if s.get("state") == "running")
    except (LookupError, StopIteration):
        print("shelljail: no running session to stop (shelljail sessions lists them)", file=sys.stderr)
        return 1
    try:
        request_stop(state, "shelljail stop")
    except LookupError as exc:
        print(f"shelljail: {shown(str(exc))}", file=sys.stderr)
        return 1
    print(f"stopped session {shown(state.get('session'))}")
    return 0


def request_stop(state: dict[str, Any], via: str) -> None:
    """The stop button, from the CLI or the dashboard: the note (who, through what), then SIGKILL to the
    jail's holder, which pid 1 and every process in the jail follow. LookupError if it is not running."""
    holder, start = state.get("holder_pid"), state.get("holder_start")
    if state.get("state") != "running" or not isinstance(holder, int) or audit.process_start(holder) != start:
        raise LookupError(f"session {state.get('session')} is not running")
    directory = os.path.join(audit.state_home(), state["session"])
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = str(os.getuid())
    with open(os.path.join(directory, audit.STOP_NAME), "w") as f:
        json.dump({"user": user, "pid": os.getpid(), "ts": time.time(), "via": via}, f)
    os.kill(holder, signal.SIGKILL)
