"""`shelljail agent`: the reference agent's model loop here, its tools in a jail on the workspace."""

from __future__ import annotations

import _thread
import json
import os
from pathlib import Path
from typing import Any

from .loop import Agent, AgentError, Limits


class ToolChannel:
    """JSON lines to and from agent/toolserver.py, running as the jail's command."""

    def __init__(self, to_jail: int, from_jail: int) -> None:
        self.writer = os.fdopen(to_jail, "w", buffering=1)
        self.reader = os.fdopen(from_jail, "r")
        self.next_id = 0

    def __call__(self, tool: str, args: dict[str, Any]) -> tuple[bool, str]:
        self.next_id += 1
        try:
            self.writer.write(json.dumps({"id": self.next_id, "tool": tool, "args": args}) + "\n")
            self.writer.flush()
        except OSError:
            raise AgentError("the jail running the tools has ended (see shelljail log)") from None
        line = self.reader.readline()
        if not line:
            raise AgentError("the jail running the tools has ended (see shelljail log)")
        answer = json.loads(line)
        return bool(answer["ok"]), str(answer["result"])

    def close(self) -> None:
        self.writer.close()  # the tool server reads end of file, and the jail ends


def run(args: Any) -> int:
    import ollama

    from jail.errors import EXIT_SETUP, JailError
    from jail.policy import profile, spec
    from jail.run import RunOptions, supervise

    loaded = profile.load(args.profile)
    loaded = loaded._replace(limits=loaded.limits._replace(output_bytes=None))  # the channel is not output
    workspace = os.path.realpath(args.workspace or os.getcwd())
    source = (Path(__file__).parent / "toolserver.py").read_text()
    to_jail_r, to_jail_w = os.pipe2(os.O_CLOEXEC)
    from_jail_r, from_jail_w = os.pipe2(os.O_CLOEXEC)
    jail_spec = spec.build(loaded, workspace, ["/usr/bin/python3", "-I", "-c", source, workspace], os.environ,
                           secret_specs=args.secret)
    jail_spec = jail_spec._replace(stdin_fd=to_jail_r, stdout_fd=from_jail_w,
                                   supervisor_fds=(to_jail_w, from_jail_r))  # or the tool server never sees EOF
    logs: list[Any] = []
    started = _thread.allocate_lock()
    started.acquire()
    finished = _thread.allocate_lock()
    finished.acquire()
    result = {"code": EXIT_SETUP}

    def work() -> None:
        """The model loop, in a thread: the supervisor needs the main thread (signals)."""
        started.acquire()
        channel = ToolChannel(to_jail_w, from_jail_r)
        try:
            if not logs:
                return  # the jail did not start: the main thread says why
            redactor = getattr(logs[0], "redactor", None)
            agent = Agent(ollama.Client(host=args.host), args.model, channel, logs[0],
                          Limits(max_steps=args.max_steps, wall_time=args.timeout), workspace, args.test,
                          confirm=_confirm if args.ask == "tty" and _has_terminal() else None,
                          mask=redactor.text if redactor else str, say=_say)
            logs[0].event("agent-task", task=args.task, model=args.model, host=args.host or "default")
            result["code"] = agent.run(args.task)
        except AgentError as exc:
            _say(f"shelljail agent: {exc}")
            logs[0].event("agent-stopped", reason=str(exc))
        except Exception as exc:  # noqa: BLE001 - one line and a status, never a thread's traceback
            _say(f"shelljail agent: failed: {type(exc).__name__}: {exc}")
            logs[0].event("agent-stopped", reason=f"{type(exc).__name__}: {exc}")
        finally:
            channel.close()
            finished.release()

    _thread.start_new_thread(work, ())
    try:
        supervise(loaded, jail_spec, RunOptions(loaded.interposer.enabled, args.timeout + 60, args.ask,
                                                on_log=lambda log: (logs.append(log), started.release())))
    except JailError:
        if not logs:
            started.release()
        raise
    finally:
        os.close(from_jail_w)  # our copies: the model loop reads the end once the jail is gone
        os.close(to_jail_r)
        finished.acquire()
    return int(result["code"])


def _has_terminal() -> bool:
    from jail.supervisor import terminal

    return terminal.available()


def _say(text: str) -> None:
    """The model's words and the diffs of the jail's files, on the terminal: every control character but
    newline and tab escaped (jail.display), so neither can redraw what the person reads."""
    from jail.display import shown_diff

    print(shown_diff(text), flush=True)


def _confirm(question: str) -> bool:
    """A person's yes, on the terminal (never on the agent's input); the model's plan in it escaped."""
    from jail.display import shown_diff
    from jail.supervisor import terminal

    answer = terminal.ask(f"\033[1;33mshelljail agent:\033[0m {shown_diff(question)} [y/N] ")
    return (answer or "").lower() in ("y", "yes")
