"""The reference agent: a loop over a local model (the `ollama` client), its tools run in the jail.

The model client runs here, in the supervisor, outside the jail; the tools run
in the jail (agent/toolserver.py), so `run` goes through the interposer and a
file write through the workspace's mount. The model's first turn is a plan
(approved by a person when there is a terminal); then it calls tools until
it answers without one. Bounded: steps, characters of tool output returned
to it (cut with a marker), wall time; and the same denial three times stops
the run rather than letting the model push on. Every turn is an audit event.
"""

from __future__ import annotations

import difflib
import json
import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

SYSTEM = """You are a careful coding agent working in the directory {workspace}.
Work only with the tools. Paths are relative to the workspace. Commands run in a sandbox: a command
refused with "shelljail: denied:" will stay refused; read the reason and do something else.
When the task is done, answer without calling a tool."""
PLAN = "Before using any tool, state your plan: a short numbered list. Do not call tools in this answer."
GO = "The plan is approved. Carry it out with the tools, then give a short final answer."

TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": {p: {"type": "string", "description": d} for p, d in params.items()},
        "required": list(params)}}}
    for name, description, params in (
        ("read_file", "Read a text file.", {"path": "the file"}),
        ("list_dir", "List a directory.", {"path": "the directory"}),
        ("search", "Search files for a regular expression.", {"pattern": "a Python regex", "path": "where"}),
        ("write_file", "Write a whole file (in the workspace).", {"path": "the file", "content": "its content"}),
        ("edit_file", "Replace one exact occurrence of old with new in a file.",
         {"path": "the file", "old": "the text to replace, exactly once in the file", "new": "the new text"}),
        ("run", "Run a shell command in the workspace; returns its exit status and output.",
         {"command": "the command line"}),
        ("run_tests", "Run the project's tests.", {}),
    )
]
NAMES = [tool["function"]["name"] for tool in TOOLS]


class Limits(NamedTuple):
    max_steps: int = 30
    max_tool_chars: int = 8000
    wall_time: float = 1800.0
    repeated_denials: int = 3


class AgentError(Exception):
    """The model cannot be used (unreachable host, unknown model): one line, and what to do."""


class Agent:
    def __init__(self, client: Any, model: str, tools: Callable[[str, dict[str, Any]], tuple[bool, str]],
                 log: Any, limits: Limits, workspace: str, test_command: str | None = None,
                 confirm: Callable[[str], bool] | None = None, mask: Callable[[str], str] = str,
                 say: Callable[[str], None] = print) -> None:
        self.client = client
        self.model = model
        self.tools = tools  # (tool, args) -> (ok, result), run in the jail
        self.log = log
        self.limits = limits
        self.workspace = workspace
        self.test_command = test_command
        self.confirm = confirm  # asks a person; None: nobody to ask, plans and writes go ahead
        self.mask = mask  # the run's secrets out of everything the model sees
        self.say = say
        self.denials: dict[str, int] = {}
        self.started = time.monotonic()

    def run(self, task: str) -> int:
        """0 when the model finished; 1 when it was stopped (limits, refusals, a plan not approved)."""
        started = self.started = time.monotonic()
        messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM.format(workspace=self.workspace)},
                                          {"role": "user", "content": f"{task}\n\n{PLAN}"}]
        plan = self._chat(messages, tools=False)
        messages.append({"role": "assistant", "content": plan.get("content") or ""})
        self.say(f"plan:\n{plan.get('content') or '(no plan given)'}")
        if self.confirm is not None and not self.confirm("carry out this plan?"):
            return self._stop("the person did not approve the plan")
        messages.append({"role": "user", "content": GO})
        for _step in range(self.limits.max_steps):
            if time.monotonic() - started > self.limits.wall_time:
                return self._stop(f"wall time of {self.limits.wall_time:g} s reached")
            message = self._chat(messages, tools=True)
            calls = message.get("tool_calls") or []
            messages.append({"role": "assistant", "content": message.get("content") or "", "tool_calls": calls})
            if not calls:
                self.say(message.get("content") or "(done)")
                self.log.event("agent-done", answer=message.get("content") or "")
                return 0
            for call in calls:
                name, result = self._call(call)
                messages.append({"role": "tool", "tool_name": name, "content": result})
                refused = next((line for line in result.splitlines() if line.startswith("shelljail: denied:")), None)
                if refused:
                    self.denials[refused] = self.denials.get(refused, 0) + 1
                    if self.denials[refused] >= self.limits.repeated_denials:
                        return self._stop(f"the model asked {self.denials[refused]} times for what was denied: "
                                          f"{refused}")
        return self._stop(f"step limit of {self.limits.max_steps} reached")

    # ---- the model -------------------------------------------------------------------------------

    def _chat(self, messages: list[dict[str, Any]], tools: bool) -> dict[str, Any]:
        import httpx
        import ollama

        try:
            response = self.client.chat(model=self.model, messages=messages, tools=TOOLS if tools else None)
        except ollama.ResponseError as exc:
            if exc.status_code == 404:
                raise AgentError(f"the model {self.model} is not on the Ollama server ({exc.error}); "
                                 f"pull it with: ollama pull {self.model}") from None
            raise AgentError(f"the Ollama server refused the request: {exc.error} (HTTP {exc.status_code})") from None
        except (httpx.HTTPError, ConnectionError) as exc:
            raise AgentError(f"cannot reach the Ollama server ({exc}); start it (ollama serve) or pass --host") \
                from None
        message = response.message
        calls = [{"function": {"name": c.function.name, "arguments": dict(c.function.arguments or {})}}
                 for c in (message.tool_calls or [])]
        turn = {"content": message.content or "", "tool_calls": calls}
        self.log.event("agent-turn", role="assistant", content=turn["content"], tool_calls=calls)
        return turn

    # ---- the tools -------------------------------------------------------------------------------

    def _call(self, call: dict[str, Any]) -> tuple[str, str]:
        function = call.get("function") or {}
        name = str(function.get("name") or "")
        args = function.get("arguments")
        if isinstance(args, str):
            try:
                args = json.loads(args or "{}")
            except ValueError:
                args = None
        if name not in NAMES:
            result = f"error: there is no tool {name!r}; the tools are: {', '.join(NAMES)}"
        elif not isinstance(args, dict):
            result = f"error: the arguments of {name} must be a JSON object"
        else:
            try:
                result = self._dispatch(name, {k: str(v) for k, v in args.items()})
            except KeyError as exc:
                result = f"error: {name} needs the argument {exc.args[0]}"
        result = self.mask(result)
        if len(result) > self.limits.max_tool_chars:
            left = len(result) - self.limits.max_tool_chars
            result = result[:self.limits.max_tool_chars] + f"\n[... {left} characters left out]"
        self.log.event("agent-tool", tool=name, args=args if isinstance(args, dict) else str(args), result=result)
        return name, result

    def _dispatch(self, name: str, args: dict[str, str]) -> str:
        if name == "run_tests":
            if not self.test_command:
                return "error: this project has no test command (shelljail agent --test CMD)"
            return self._tool("run", {"command": self.test_command, "timeout": self._time_left()})
        if name == "edit_file":
            ok, old = self.tools("read_file", {"path": args["path"]})
            if not ok:
                return f"error: {old}"
            count = old.count(args["old"])
            if count != 1:
                return f"error: the text to replace occurs {count} times in {args['path']}; it must occur once"
            return self._write(args["path"], old, old.replace(args["old"], args["new"]))
        if name == "write_file":
            ok, old = self.tools("read_file", {"path": args["path"]})
            return self._write(args["path"], old if ok else None, args["content"])
        known = {"read_file": ("path",), "list_dir": ("path",), "search": ("pattern", "path"), "run": ("command",)}
        chosen = {key: args[key] for key in known[name]}
        if name == "run":
            chosen["timeout"] = self._time_left()
        return self._tool(name, chosen)

    def _time_left(self) -> str:
        """A command may take what is left of the wall time (at most 10 minutes), so a hang ends the run in time.

        Rounded up to the tenth, not to the nearest: a command that hangs must end at or past the wall time,
        or the loop would call the model once more with a few milliseconds left.
        """
        left = self.limits.wall_time - (time.monotonic() - self.started)
        return f"{math.ceil(max(1.0, min(600.0, left)) * 10) / 10:.1f}"

    def _write(self, path: str, old: str | None, new: str) -> str:
        diff = "".join(difflib.unified_diff((old or "").splitlines(keepends=True), new.splitlines(keepends=True),
                                            "/dev/null" if old is None else f"a/{path}", f"b/{path}"))
        self.say(diff or f"{path}: unchanged")
        if self.confirm is not None and not self.confirm(f"apply this change to {path}?"):
            return "denied: the person did not approve this change"
        result = self._tool("write_file", {"path": path, "content": new})
        return f"{result}\n{diff}"

    def _tool(self, name: str, args: dict[str, str]) -> str:
        ok, result = self.tools(name, args)
        return result if ok else f"error: {result}"

    def _stop(self, why: str) -> int:
        self.say(f"shelljail agent: stopped: {why}")
        self.log.event("agent-stopped", reason=why)
        return 1
