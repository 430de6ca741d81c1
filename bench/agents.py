"""Each real agent's wall time on one harmless three-turn task, interposer on against off (issue #25).

Every agent `make setup` installs into .agents/ runs unmodified in a real `shelljail run` (its profile picked
by program name, as docs/agents.md shows: no profile file; `--read-only` for its install, `--forward` for its
model) against the scripted model server of tests/model_server.py or tests/model_servers.py on 127.0.0.1 for
the API it speaks. The script is the same for every agent: turn 1 `ls`, turn 2 `printf 'hi\\n' > notes.txt`,
turn 3 `cat notes.txt`, then the final answer (mini-swe-agent's is its `echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT`,
aider's a fourth chat turn). A run counts only if it exited 0, notes.txt holds "hi" and the model got the
three results back; otherwise the bench stops with the agent's output.

Runs alternate on, off, on, off ... per agent, each in a fresh workspace with a fresh server (same script);
one warm-up run each way is not counted. The figure is the median wall time of `shelljail run`, and the
ratio on/off is set against the goal, 1.05. `--interposer off` turns off more than the shell judge: no
decision service (the launcher that every /bin/sh and /bin/bash is, and its round trip per shell), no
trash and no timeline (the checkpoint of the workspace before each command line), no approvals broker
(jail/run.py). The difference is therefore the whole per-command machinery, not the judging alone.

Where it goes is measured last, in the same run: `shelljail run -- /bin/true` on against off, and the wall
time of `bash -c true` started by a program in the jail, timed by that program (the first at once, the first
0.3 s in, ten more), on against off. A shell at once pays the judge's import (interposer.judge and its parser:
0.05-0.25 s of Python imports on a shared 2-core machine); once the command has run 20 ms the decision service
imports it in a thread (service.warm), so a shell that comes later, as an agent's does after its own start,
mostly does not. Each further shell adds a few ms (launcher, decision round trip, the timeline's checkpoint),
and the session itself 10-30 ms. An agent whose whole run takes a second (Codex here, which also starts eight
shells of its own: lsb_release, its shell snapshot, a 38 KB wrapper around each command, each judged) is
therefore the one furthest from the goal.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import ROOT, header, save

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from model_server import ModelServer, call, say  # noqa: E402
from model_servers import AnthropicServer, GeminiServer, ResponsesServer  # noqa: E402

from jail.kernel import beneath  # noqa: E402

SHELLJAIL = str(Path(sys.executable).parent / "shelljail")
AGENTS = ROOT / ".agents"
GOAL = 1.05
COMMANDS = ["ls", "printf 'hi\\n' > notes.txt", "cat notes.txt"]
FINAL = "the notes say hi"
TASK = "write hi into notes.txt and show it"
TIMEOUT = 180
# What `--interposer off` switches off besides the judge (jail/run.py): on/off is the whole per-command cost.
OFF_ALSO = ("the decision service (the launcher every /bin/sh and /bin/bash is, and its round trip per shell), "
            "the trash and the timeline's checkpoint of the workspace before each command line")


@dataclass
class Run:
    """One agent's command line and what it sends the model, for a server started for this run."""

    argv: list[str]
    env: dict[str, str]
    stdin: str | None
    results: Callable[[], list[str]]
    close: Callable[[], None]
    expected: int = 3  # command results the model gets back (aider sends none for a command that printed nothing)


def jail_args(workspace: Path, install: Path, url: str, interposer: str) -> list[str]:
    port = url.rsplit(":", 1)[1]
    return [SHELLJAIL, "run", "-w", str(workspace), "--ask", "deny", "--timeout", str(TIMEOUT - 30),
            "--interposer", interposer, "--read-only", str(install), "--forward", f"127.0.0.1:{port}"]


def pi(workspace: Path, scratch: Path, interposer: str) -> Run:
    server = ModelServer([*(call("bash", command=c) for c in COMMANDS), say(FINAL)], by_turn=True)
    config = scratch / "pi-agent"  # pi's models.json: the scripted model's OpenAI-compatible /v1
    config.mkdir(exist_ok=True)
    (config / "models.json").write_text(json.dumps({"providers": {"scripted": {
        "baseUrl": f"{server.url}/v1", "api": "openai-completions", "apiKey": "none",
        "compat": {"supportsDeveloperRole": False}, "models": [{"id": server.model}]}}}))
    argv = [*jail_args(workspace, AGENTS / "pi", server.url, interposer), "--read-only", str(config),
            "--env", f"PI_CODING_AGENT_DIR={config}", "--env", "PI_OFFLINE=1", "--env", "PI_TELEMETRY=0", "--",
            str(AGENTS / "pi" / "node_modules" / ".bin" / "pi"), "--no-session", "--no-context-files",
            "--no-extensions", "--no-skills", "--no-prompt-templates", "--provider", "scripted",
            "--model", server.model, "-p", TASK]
    return Run(argv, {}, None, server.tool_results, server.close)


def mini_swe_agent(workspace: Path, scratch: Path, interposer: str) -> Run:
    done = call("bash", command="echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT")  # how mini-swe-agent finishes
    server = ModelServer([*(call("bash", command=c) for c in COMMANDS), done], by_turn=True)
    settings = ["MSWEA_CONFIGURED=true", "LITELLM_LOCAL_MODEL_COST_MAP=True", "MSWEA_COST_TRACKING=ignore_errors",
                "OPENAI_API_KEY=none"]
    argv = [*jail_args(workspace, AGENTS / "mini-swe-agent", server.url, interposer),
            *(f"--env={s}" for s in settings), "--", str(AGENTS / "mini-swe-agent" / "bin" / "mini"), "-y",
            "--exit-immediately", "-c", "mini.yaml", "-c", f"model.model_kwargs.api_base={server.url}/v1",
            "-m", f"openai/{server.model}", "-t", TASK]

    def results() -> list[str]:  # each result is JSON: the exit status and the output
        return [json.loads(r)["output"] for r in server.tool_results()][:3]
    return Run(argv, {}, None, results, server.close)


def claude_code(workspace: Path, scratch: Path, interposer: str) -> Run:
    server = AnthropicServer([*(call("Bash", command=c, description="run it") for c in COMMANDS), say(FINAL)])
    argv = [*jail_args(workspace, AGENTS / "claude-code", server.url, interposer), "--secret", "ANTHROPIC_API_KEY",
            "--env", f"ANTHROPIC_BASE_URL={server.url}", "--env", f"ANTHROPIC_MODEL={server.model}",
            "--env", f"ANTHROPIC_SMALL_FAST_MODEL={server.model}", "--",
            str(AGENTS / "claude-code" / "node_modules" / ".bin" / "claude"), "-p", TASK,
            "--dangerously-skip-permissions", "--model", server.model]
    return Run(argv, {"ANTHROPIC_API_KEY": "sk-ant-scripted"}, None, server.tool_results, server.close)


def codex(workspace: Path, scratch: Path, interposer: str) -> Run:
    server = ResponsesServer([*(call("exec_command", cmd=c) for c in COMMANDS), say(FINAL)])
    provider = (f'model_providers.fake={{name="fake",base_url="{server.url}/v1",wire_api="responses",'
                'env_key="OPENAI_API_KEY"}')
    argv = [*jail_args(workspace, AGENTS / "codex", server.url, interposer), "--secret", "OPENAI_API_KEY", "--",
            str(AGENTS / "codex" / "node_modules" / ".bin" / "codex"), "exec", "--skip-git-repo-check",
            "--dangerously-bypass-approvals-and-sandbox", "-c", "model_provider=fake", "-c", provider,
            "-m", server.model, TASK]
    return Run(argv, {"OPENAI_API_KEY": "sk-scripted"}, None, server.tool_results, server.close)


def gemini(workspace: Path, scratch: Path, interposer: str) -> Run:
    server = GeminiServer([*(call("run_shell_command", command=c) for c in COMMANDS), say(FINAL)])
    argv = [*jail_args(workspace, AGENTS / "gemini", server.url, interposer), "--secret", "GEMINI_API_KEY",
            "--env", f"GOOGLE_GEMINI_BASE_URL={server.url}", "--",
            str(AGENTS / "gemini" / "node_modules" / ".bin" / "gemini"), "--yolo", "-m", "gemini-2.5-flash",
            "-p", TASK]
    return Run(argv, {"GEMINI_API_KEY": "scripted"}, None, server.tool_results, server.close)


def opencode(workspace: Path, scratch: Path, interposer: str) -> Run:
    server = ModelServer([*(call("bash", command=c, description="run it") for c in COMMANDS), say(FINAL)],
                         by_turn=True)  # OpenAI chat completions, streaming
    config = {"provider": {"scripted": {"npm": "@ai-sdk/openai-compatible",
                                        "options": {"baseURL": f"{server.url}/v1", "apiKey": "none"},
                                        "models": {server.model: {}}}}}
    argv = [*jail_args(workspace, AGENTS / "opencode", server.url, interposer),
            "--env", "OPENCODE_CONFIG_CONTENT=" + json.dumps(config), "--",
            str(AGENTS / "opencode" / "node_modules" / ".bin" / "opencode"), "run",
            "--model", f"scripted/{server.model}", TASK]
    return Run(argv, {}, None, server.tool_results, server.close)


def aider(workspace: Path, scratch: Path, interposer: str) -> Run:
    """aider proposes each command in a ```bash block; at the end of its input each question takes its default
    (yes to "Run shell command?"), so three chat turns, each with two empty lines, then a fourth for the answer."""
    server = ModelServer([*(say(f"I will run this.\n\n```bash\n{c}\n```\n") for c in COMMANDS), say(FINAL)])
    argv = [*jail_args(workspace, AGENTS / "aider", server.url, interposer), "--secret", "OPENAI_API_KEY", "--",
            str(AGENTS / "aider" / "bin" / "aider"), "--model", f"openai/{server.model}",
            "--openai-api-base", f"{server.url}/v1", "--edit-format", "diff", "--no-git",
            "--no-show-model-warnings", "--no-show-release-notes"]
    stdin = "".join(f"{TASK} (step {n})\n\n\n" for n in (1, 2, 3)) + "is it written?\n"

    def results() -> list[str]:  # the command outputs aider put in the chat of its last request
        last = server.requests[-1]["messages"] if server.requests else []
        return [m["content"] for m in last if m["role"] == "user" and m["content"].startswith("Output from ")]
    return Run(argv, {"OPENAI_API_KEY": "sk-scripted"}, stdin, results, server.close, expected=2)


# Each agent: how to run it, and the program `make setup` installs.
AGENT_RUNS: dict[str, tuple[Callable[[Path, Path, str], Run], Path]] = {
    "pi": (pi, AGENTS / "pi" / "node_modules" / ".bin" / "pi"),
    "mini-swe-agent": (mini_swe_agent, AGENTS / "mini-swe-agent" / "bin" / "mini"),
    "claude-code": (claude_code, AGENTS / "claude-code" / "node_modules" / ".bin" / "claude"),
    "codex": (codex, AGENTS / "codex" / "node_modules" / ".bin" / "codex"),
    "gemini": (gemini, AGENTS / "gemini" / "node_modules" / ".bin" / "gemini"),
    "opencode": (opencode, AGENTS / "opencode" / "node_modules" / ".bin" / "opencode"),
    "aider": (aider, AGENTS / "aider" / "bin" / "aider"),
}


class BenchError(Exception):
    """A run that did not do the task: no figure, the bench stops."""


def notes(workspace: Path) -> bytes | None:
    """notes.txt as the jail left it, read the one safe way (beneath the workspace, a regular file, bounded)."""
    directory = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return beneath.read_regular(directory, "notes.txt", 64)
    except OSError:  # missing, a symlink, a FIFO, too large: not the notes the task wrote
        return None
    finally:
        os.close(directory)


def check(name: str, interposer: str, result: subprocess.CompletedProcess[str], workspace: Path,
          results: list[str], expected: int) -> None:
    """The run did the work: exit 0, notes.txt holds hi, and the model got the commands' results back."""
    written = notes(workspace) == b"hi\n"
    problem = (f"exited {result.returncode}" if result.returncode != 0 else
               "notes.txt does not hold hi" if not written else
               f"the model got {len(results)} command results, not {expected}" if len(results) != expected else
               "the model did not get ls's output (README.md)" if "README.md" not in results[0] else
               "the model did not get cat's output (hi)" if "hi" not in results[-1] else "")
    if problem:
        tail = (result.stdout[-1500:] + result.stderr[-1500:]).strip()
        raise BenchError(f"{name} with --interposer {interposer}: {problem}\n{tail}")


def shells(env: dict[str, str]) -> int:
    """How many shells the interposer judged in the newest session (the agent's own lines included)."""
    listed = subprocess.run([SHELLJAIL, "sessions", "--json"], capture_output=True, text=True, env=env, timeout=60,
                            stdin=subprocess.DEVNULL, check=True)
    session = json.loads(listed.stdout.splitlines()[0])["session"]
    log = subprocess.run([SHELLJAIL, "log", session, "--json"], capture_output=True, text=True, env=env, timeout=60,
                         stdin=subprocess.DEVNULL, check=True)
    return sum(json.loads(line).get("event") == "decision" for line in log.stdout.splitlines())


def time_once(name: str, root: Path, number: int, interposer: str) -> tuple[float, int]:
    """One run in a fresh workspace against a fresh server: its wall time in seconds, checked; and the
    shells judged in it (0 with the interposer off)."""
    workspace = root / f"{name}-{number}-{interposer}" / "project"
    workspace.mkdir(parents=True)
    (workspace / "README.md").write_text("what ls shows\n")
    build, _ = AGENT_RUNS[name]
    run = build(workspace, workspace.parent, interposer)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(root / "home"), "LANG": "C.UTF-8", **run.env}
    try:
        started = time.perf_counter()
        result = subprocess.run(run.argv, input=run.stdin, stdin=subprocess.DEVNULL if run.stdin is None else None,
                                capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=workspace)
        elapsed = time.perf_counter() - started
        check(name, interposer, result, workspace, run.results(), run.expected)
    finally:
        run.close()
    shutil.rmtree(workspace.parent, ignore_errors=True)
    return elapsed, shells(env) if interposer == "on" else 0


# Where the difference goes: a session with no shell (the whole run, on against off), and the shells' own wall
# time measured inside the jail by the program that starts them, as an agent does: the first at once and the
# first 0.3 s in (by then the judge is imported: service.warm), then ten more. Timed inside, the shells' figures
# do not carry the start-up's noise on a loaded machine. A shell's own child shells are not judged again.
SHELLS = ("import subprocess, sys, time\ntime.sleep(float(sys.argv[1]))\nstarted = time.perf_counter()\n"
          "subprocess.run(['/bin/bash', '-c', 'true'], check=True)\nfirst = time.perf_counter()\n"
          "for _ in range(10): subprocess.run(['/bin/bash', '-c', 'true'], check=True)\n"
          "print((first - started) * 1000, (time.perf_counter() - first) * 100)")


def shell_cost(root: Path, runs: int) -> dict[str, float]:
    """ms that --interposer on adds to a session, to its first shell (at once, and 0.3 s in) and to each
    further shell (medians of interleaved runs): what an agent's on/off difference is made of."""
    workspace = root / "shells" / "project"
    workspace.mkdir(parents=True)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(root / "home"), "LANG": "C.UTF-8"}
    cases = {"no shell": ["/bin/true"], "at once": ["/usr/bin/python3", "-c", SHELLS, "0"],
             "0.3 s in": ["/usr/bin/python3", "-c", SHELLS, "0.3"]}
    samples: dict[tuple[str, str], list[Any]] = {(case, way): [] for case in cases for way in ("on", "off")}
    for number in range(runs + 1):  # the first round is a warm-up
        for (case, way), values in samples.items():
            started = time.perf_counter()
            result = subprocess.run([SHELLJAIL, "run", "-w", str(workspace), "--ask", "deny", "--interposer", way,
                                     "--", *cases[case]], env=env, cwd=workspace, check=True, capture_output=True,
                                    text=True, stdin=subprocess.DEVNULL, timeout=TIMEOUT)
            elapsed = (time.perf_counter() - started) * 1000
            if number:
                values.append(elapsed if case == "no shell" else [float(x) for x in result.stdout.split()])

    def added(case: str, index: int | None = None) -> float:
        on, off = ([v if index is None else v[index] for v in samples[case, way]] for way in ("on", "off"))
        return statistics.median(on) - statistics.median(off)

    return {"session with no shell": round(added("no shell"), 1),
            "its first shell": round(added("at once", 0), 1),
            "its first shell, 0.3 s in": round(added("0.3 s in", 0), 1),
            "each further shell": round(added("0.3 s in", 1), 1)}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=5, help="runs each way per agent (default: 5)")
    parser.add_argument("-o", "--output", default=str(ROOT / "bench" / "results" / "agents.json"))
    parser.add_argument("--agents", nargs="+", choices=list(AGENT_RUNS), default=list(AGENT_RUNS),
                        help="measure only these (default: all; a partial run writes no results file "
                             "unless -o names one)")
    return parser.parse_args()


def main() -> int:
    args = arguments()
    missing = [f"{name} ({program.relative_to(ROOT)})" for name, (_, program) in AGENT_RUNS.items()
               if name in args.agents and not program.exists()]
    if missing:  # a figure left out without a word is no result: say which, loudly
        print(f"bench/agents.py: an agent is not installed: {'; '.join(missing)}. Install it (make setup)",
              file=sys.stderr)
        return 1
    partial = args.agents != list(AGENT_RUNS) and args.output == str(ROOT / "bench" / "results" / "agents.json")
    root = Path(tempfile.mkdtemp(prefix="shelljail-bench-agents-"))
    (root / "home").mkdir()
    samples: dict[str, dict[str, list[float]]] = {}
    judged: dict[str, list[int]] = {}
    try:
        for name in args.agents:
            for interposer in ("on", "off"):  # warm-up: page cache, .pyc files, the agent's first-run files
                time_once(name, root, 0, interposer)
            samples[name], judged[name] = {"on": [], "off": []}, []
            for number in range(1, args.runs + 1):
                for interposer in ("on", "off"):
                    seconds, count = time_once(name, root, number, interposer)
                    samples[name][interposer].append(seconds)
                    if interposer == "on":
                        judged[name].append(count)
            print(f"  {name}: on {statistics.median(samples[name]['on']):.2f} s, "
                  f"off {statistics.median(samples[name]['off']):.2f} s", flush=True)
        cost = shell_cost(root, args.runs)
    except (BenchError, subprocess.TimeoutExpired, subprocess.CalledProcessError) as error:
        print(f"bench/agents.py: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(root, ignore_errors=True)

    results: dict[str, Any] = {**header("agents", args.runs), "task": "; ".join(COMMANDS) + "; final answer",
                               "goal": GOAL, "agents": {}, "interposer off also turns off": OFF_ALSO}
    print(f"agents, three-turn task, median of {args.runs} interleaved runs each way (s)")
    for name, runs in samples.items():
        on, off = statistics.median(runs["on"]), statistics.median(runs["off"])
        ratio = on / off
        results["agents"][name] = {
            **{way: {"median": round(statistics.median(v), 3), "min": round(min(v), 3), "max": round(max(v), 3)}
               for way, v in runs.items()},
            "ratio": round(ratio, 3), "within goal": ratio <= GOAL, "shells judged": statistics.median(judged[name]),
            "ms added per shell": round((on - off) * 1000 / max(statistics.median(judged[name]), 1), 1)}
        verdict = "within the goal" if ratio <= GOAL else "over the goal"
        print(f"  {name:15} on {on:7.2f}   off {off:7.2f}   on/off {ratio:5.3f}   {verdict} (<= {GOAL})   "
              f"{statistics.median(judged[name])} shells judged, "
              f"{results['agents'][name]['ms added per shell']} ms added per shell")
    results["ms --interposer on adds"] = cost
    print(f"  --interposer on adds (ms): {', '.join(f'{k} {v}' for k, v in cost.items())}")
    print(f"  --interposer off also turns off {OFF_ALSO}")
    if partial:
        print("  (only some agents: no results file written; pass -o to write one)")
    else:
        save(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
