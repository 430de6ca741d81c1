"""The approval broker: a decision of `ask` waits here for a person.

A pending request is a file in the session's `approvals/` directory, outside
every jail's view; `shelljail approvals` lists them and `shelljail approve
ID` / `deny ID` answer with a file beside it. If `run` has a terminal, the
person is also asked there, on /dev/tty: never on the agent's standard
input, and the agent cannot type into the terminal (TIOCSTI is filtered and
it has no controlling terminal). The jail may still write to that terminal,
so while the question is open every process of the jail is stopped, and the
question is drawn cleanly with the command escaped (jail/supervisor/terminal.py); if
the jail cannot be stopped, the terminal is not asked (the CLI and the
dashboard still can be). Unanswered requests are denied after the timeout.
Answers: once, always (the same command again in this session), deny.
"""

from __future__ import annotations

import _thread
import json
import os
import sys
import time
from typing import Any

from jail.display import shown, shown_diff
from jail.supervisor.audit import STATE_NAME, write_json

DIRECTORY = "approvals"
ANSWERS = ("once", "always", "deny")


class Broker:
    def __init__(self, session_dir: str, log: Any, mode: str, timeout: float) -> None:
        self.directory = os.path.join(session_dir, DIRECTORY)
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        self.log = log
        self.mode = mode  # "tty" (and the CLI) or "deny"
        self.timeout = timeout
        self.always: set[str] = set()
        self._tty_lock = _thread.allocate_lock()

    def ask(self, command: str, reason: str, rule: str | None, preview: str = "") -> tuple[bool, str]:
        """(allowed, how it was decided); blocks until answered, or the timeout."""
        if command in self.always:
            return True, "approved always for this session"
        if self.mode == "deny":
            return False, "no person is asked in this run (--ask deny)"
        request_id = os.urandom(3).hex()
        request = {"id": request_id, "command": command, "reason": reason, "rule": rule, "preview": preview,
                   "ts": time.time(),
                   "timeout": self.timeout}
        write_json(os.path.join(self.directory, f"{request_id}.json"), request)
        self.log.event("approval-request", id=request_id, command=command, reason=reason, rule=rule,
                       preview=preview or None)
        answer: dict[str, Any] = {}
        lock = _thread.allocate_lock()
        _thread.start_new_thread(self._ask_on_tty, (request, answer, lock))
        deadline = time.monotonic() + self.timeout
        answer_path = os.path.join(self.directory, f"{request_id}.answer")
        while time.monotonic() < deadline:
            with lock:
                if answer:
                    break
            try:
                with open(answer_path) as f:
                    from_cli = json.load(f)
                with lock:
                    answer.setdefault("answer", from_cli.get("answer"))
                    verb = {"once": "approved", "always": "approved always", "deny": "denied"}.get(
                        from_cli.get("answer"), "denied")
                    who = f"{from_cli.get('user')} with {from_cli.get('via', 'shelljail')} (pid {from_cli.get('pid')})"
                    answer.setdefault("by", f"{verb} by {who}")
                break
            except (OSError, ValueError):
                time.sleep(0.05)
        with lock:
            if not answer:
                answer.update(answer="deny", by=f"no person answered within {self.timeout:g} s")
        for suffix in (".json", ".answer"):
            try:
                os.unlink(os.path.join(self.directory, request_id + suffix))
            except OSError:
                pass
        choice = answer["answer"] if answer["answer"] in ANSWERS else "deny"
        self.log.event("approval", id=request_id, command=command, answer=choice, by=answer["by"])
        if choice == "always":
            self.always.add(command)
        return choice != "deny", answer["by"]

    def _ask_on_tty(self, request: dict[str, Any], answer: dict[str, Any], lock: Any) -> None:
        from jail.supervisor import terminal

        if not terminal.available():  # no terminal: the CLI answers, or the timeout; say so, or it seems to hang
            self._say_waiting(request)
            return

        def settled() -> bool:
            with lock:
                return bool(answer)

        with self._tty_lock, terminal.paused(self._jail_processes) as held:
            if settled():
                return
            if not held:  # the jail still runs and could redraw the question: not asked here
                self._say_waiting(request, "the jail could not be paused to ask on this terminal; ")
                return
            preview = "\n" + _indented(shown_diff(request["preview"])) if request.get("preview") else ""
            line = (terminal.ask(f"{preview}\n\033[1;33mshelljail: approve?\033[0m {shown(request['command'])}\n"
                                 f"  {shown(request['reason'])} (rule {shown(request['rule'])}; id {request['id']})\n"
                                 f"  allow [o]nce, [a]lways in this session, or [d]eny? ", settled)
                    or "").lower()
            if settled():
                return
            choice = {"o": "once", "y": "once", "once": "once", "a": "always", "always": "always"}.get(line, "deny")
            with lock:
                answer.setdefault("answer", choice)
                answer.setdefault("by", {"once": "approved", "always": "approved always"}.get(choice, "denied")
                                  + " on the terminal")


    def _say_waiting(self, request: dict[str, Any], why: str = "") -> None:
        sys.stderr.write(f"shelljail: waiting for a person: {shown(request['command'])}\n  "
                         f"{why}{shown(request['reason'])}; "
                         f"answer with shelljail approve {request['id']} (or deny {request['id']}), or in "
                         "shelljail dashboard; "
                         f"denied in {self.timeout:g} s, or run with --ask deny\n")
        sys.stderr.flush()

    def _jail_processes(self) -> list[int]:
        """Every process of this session's jail (its holder and all under it), from the supervisor's
        session.json; none before the jail started, or once its holder is gone."""
        from jail.supervisor.procfs import start_time, tree

        try:
            with open(os.path.join(os.path.dirname(self.directory), STATE_NAME)) as f:
                state = json.load(f)
        except (OSError, ValueError):
            return []
        holder = state.get("holder_pid")
        if not isinstance(holder, int) or start_time(holder) != state.get("holder_start"):
            return []
        return tree(holder)


def _indented(text: str) -> str:
    return "".join("    " + line + ("\n" if not line.endswith("\n") else "") for line in text.splitlines(keepends=True))



def pending(sessions_root: str) -> list[dict[str, Any]]:
    """Every request waiting for an answer, in every session."""
    found = []
    try:
        sessions = sorted(os.listdir(sessions_root))
    except OSError:
        return []
    for session in sessions:
        directory = os.path.join(sessions_root, session, DIRECTORY)
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            if name.endswith(".json"):
                try:
                    with open(os.path.join(directory, name)) as f:
                        found.append({**json.load(f), "session": session})
                except (OSError, ValueError):
                    continue
    return found


def answer(sessions_root: str, request_id: str, choice: str, user: str, via: str = "shelljail") -> dict[str, Any]:
    """Answer a pending request from the command line or the dashboard (`via`); the request, or LookupError."""
    for request in pending(sessions_root):
        if request["id"] == request_id:
            path = os.path.join(sessions_root, request["session"], DIRECTORY, f"{request_id}.answer")
            write_json(path, {"answer": choice, "user": user, "pid": os.getpid(), "via": via})
            return request
    raise LookupError(f"no pending request {request_id!r} (shelljail approvals lists them)")
