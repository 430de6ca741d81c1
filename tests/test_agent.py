"""The reference agent: the real `ollama` client over real HTTP to a scripted model; tools in a real jail."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
from conftest import SHELLJAIL, Jail
from model_server import ModelServer, call, say

CALC = "def add(a, b):\n    return a - b\n"
TEST = "from calc import add\nassert add(2, 3) == 5, add(2, 3)\nprint('tests pass')\n"


@pytest.fixture
def servers() -> Iterator[list[ModelServer]]:
    made: list[ModelServer] = []
    yield made
    for server in made:
        server.close()


def _agent(jail: Jail, server: ModelServer, *options: str, task: str = "fix add in calc.py") -> \
        subprocess.CompletedProcess[str]:
    return subprocess.run([*SHELLJAIL, "agent", "--model", server.model, "--host", server.url, "--ask", "deny",
                           "-w", str(jail.workspace), "--test", "/usr/bin/python3 test_calc.py", *options, task],
                          capture_output=True, text=True, timeout=120, env=jail.env(), stdin=subprocess.DEVNULL)


def _events(jail: Jail) -> list[dict]:
    session = json.loads(jail.cli("sessions", "--json").stdout.splitlines()[0])["session"]
    return [json.loads(line) for line in jail.cli("log", session, "--json").stdout.splitlines()]


def test_a_full_task_plans_reads_edits_tests_and_finishes(jail: Jail, servers: list[ModelServer]) -> None:
    (jail.workspace / "calc.py").write_text(CALC)
    (jail.workspace / "test_calc.py").write_text(TEST)
    server = ModelServer([say("1. read calc.py\n2. fix add\n3. run the tests"), call("read_file", path="calc.py"),
                          call("edit_file", path="calc.py", old="a - b", new="a + b"), call("run_tests"),
                          say("add is fixed and the tests pass")])
    servers.append(server)
    result = _agent(jail, server)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (jail.workspace / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert "1. read calc.py" in result.stdout and "add is fixed" in result.stdout
    assert "-    return a - b\n+    return a + b" in result.stdout  # the diff, shown
    assert not server.requests[0].get("tools")  # the first turn is the plan, without tools
    assert [t["function"]["name"] for t in server.requests[1]["tools"]] == [
        "read_file", "list_dir", "search", "write_file", "edit_file", "run", "run_tests"]
    read, edit, tests = server.tool_results()
    assert read == CALC and "wrote" in edit and tests.startswith("exit status: 0") and "tests pass" in tests
    kinds = [e["event"] for e in _events(jail)]
    assert kinds.count("agent-tool") == 3 and "agent-done" in kinds and "agent-task" in kinds


def test_a_destructive_command_is_denied_and_the_model_recovers(jail: Jail, servers: list[ModelServer]) -> None:
    server = ModelServer([say("1. clean up"), call("run", command="rm -rf ~"), call("run", command="echo fine"),
                          say("done, without deleting the home directory")])
    servers.append(server)
    result = _agent(jail, server, task="clean up")
    assert result.returncode == 0, result.stdout + result.stderr
    denied, fine = server.tool_results()
    assert denied.startswith("exit status: 126") and "shelljail: denied: deletes" in denied
    assert fine.startswith("exit status: 0\nfine")
    decisions = [e for e in _events(jail) if e["event"] == "decision"]
    assert [(d["command"], d["decision"]) for d in decisions] == [("rm -rf ~", "deny"), ("echo fine", "allow")]


def test_the_same_denial_three_times_stops_the_run(jail: Jail, servers: list[ModelServer]) -> None:
    server = ModelServer([say("1. delete it")] + [call("run", command="rm -rf /etc")] * 5)
    servers.append(server)
    result = _agent(jail, server, task="delete /etc")
    assert result.returncode == 1 and "asked 3 times for what was denied" in result.stdout
    assert len(server.tool_results()) == 2  # the third denial stopped the run before the model saw it
    assert [e["event"] for e in _events(jail)].count("agent-tool") == 3


def test_malformed_and_unknown_tool_calls_are_tool_errors(jail: Jail, servers: list[ModelServer]) -> None:
    server = ModelServer([say("1. try"), call("format_disk", device="/dev/sda"), call("read_file"),
                          call("edit_file", path="missing.txt", old="a", new="b"), say("gave up")])
    servers.append(server)
    result = _agent(jail, server, task="try")
    assert result.returncode == 0, result.stdout + result.stderr
    unknown, missing, absent = server.tool_results()
    assert unknown.startswith("error: there is no tool 'format_disk'") and "read_file" in unknown
    assert missing == "error: read_file needs the argument path"
    assert absent.startswith("error: FileNotFoundError")


def test_the_step_limit_stops_the_run(jail: Jail, servers: list[ModelServer]) -> None:
    server = ModelServer([say("1. look around")] + [call("list_dir", path=".")] * 10)
    servers.append(server)
    result = _agent(jail, server, "--max-steps", "3", task="look")
    assert result.returncode == 1 and "step limit of 3 reached" in result.stdout


def test_the_wall_time_stops_a_hanging_command_and_the_run(jail: Jail, servers: list[ModelServer]) -> None:
    server = ModelServer([say("1. wait"), call("run", command="sleep 60 & sleep 60; echo never"), say("done")])
    servers.append(server)
    result = _agent(jail, server, "--timeout", "3", task="wait")
    assert result.returncode == 1 and "wall time of 3 s reached" in result.stdout, \
        (result.stdout + result.stderr, server.tool_results())
    [timed_out] = [e["result"] for e in _events(jail) if e["event"] == "agent-tool"]  # the run stopped before
    assert timed_out.startswith("exit status: timed out after") and "never" not in timed_out


def test_a_long_tool_result_is_cut_with_a_marker(jail: Jail, servers: list[ModelServer]) -> None:
    (jail.workspace / "big.txt").write_text("x" * 20000)
    server = ModelServer([say("1. read"), call("read_file", path="big.txt"), say("read")])
    servers.append(server)
    assert _agent(jail, server, task="read").returncode == 0
    [result] = server.tool_results()
    assert len(result) < 8100 and result.endswith("[... 12000 characters left out]")


def test_an_unknown_model_or_an_unreachable_host_is_one_clear_line(jail: Jail, servers: list[ModelServer]) -> None:
    server = ModelServer([], model="other")
    servers.append(server)
    result = subprocess.run([*SHELLJAIL, "agent", "--model", "missing", "--host", server.url, "--ask", "deny",
                             "-w", str(jail.workspace), "x"], capture_output=True, text=True, timeout=60,
                            env=jail.env())
    assert result.returncode == 125 and "ollama pull missing" in result.stdout
    result = subprocess.run([*SHELLJAIL, "agent", "--model", "m", "--host", "http://127.0.0.1:9", "--ask", "deny",
                             "-w", str(jail.workspace), "x"], capture_output=True, text=True, timeout=60,
                            env=jail.env())
    assert result.returncode == 125 and "cannot reach the Ollama server" in result.stdout


def test_a_secret_never_reaches_the_model(jail: Jail, servers: list[ModelServer]) -> None:
    server = ModelServer([say("1. use the token"), call("run", command="echo token=$API_TOKEN"), say("done")])
    servers.append(server)
    result = subprocess.run([*SHELLJAIL, "agent", "--model", server.model, "--host", server.url, "--ask", "deny",
                             "-w", str(jail.workspace), "--secret", "API_TOKEN", "use the token"],
                            capture_output=True, text=True, timeout=60, env=jail.env(API_TOKEN="s3cr3t-v4lue-123"))
    assert result.returncode == 0, result.stdout + result.stderr
    [seen] = server.tool_results()
    assert seen == "exit status: 0\ntoken=[secret:API_TOKEN]\n"  # the command had it; the model does not
    assert "s3cr3t-v4lue-123" not in json.dumps(server.requests) + jail.cli("log", "--json").stdout


def test_a_person_approves_the_plan_on_the_terminal(jail: Jail, servers: list[ModelServer]) -> None:
    """Through a pty that is the run's controlling terminal: the question is asked there, not on stdin."""
    from conftest import answer_on_a_terminal

    for answer, expected in (("n", 1), ("y", 0)):
        server = ModelServer([say("1. list the files"), call("list_dir", path="."), say("listed")])
        servers.append(server)
        argv = [*SHELLJAIL, "agent", "--model", server.model, "--host", server.url, "-w", str(jail.workspace), "list"]
        status, seen = answer_on_a_terminal(argv, jail.env(), b"carry out this plan?", answer.encode() + b"\n")
        assert b"1. list the files" in seen and b"carry out this plan?" in seen
        assert status == expected, seen.decode(errors="replace")
        assert (b"did not approve the plan" in seen) == (answer == "n")
        assert len(server.tool_results()) == (0 if answer == "n" else 1)


def test_the_scripted_server_speaks_both_protocols_streaming_or_not(servers: list[ModelServer]) -> None:
    """The helper the agent tests and the real agents' tests share: Ollama's and OpenAI's chat APIs."""
    import urllib.request

    import ollama

    script = [say("hello there, model"), call("run", command="ls")]
    server = ModelServer(script * 4)
    servers.append(server)
    client = ollama.Client(host=server.url)
    assert client.chat(model=server.model, messages=[]).message.content == "hello there, model"
    calls = [c for part in client.chat(model=server.model, messages=[], stream=True)
             for c in (part.message.tool_calls or [])]
    assert [(c.function.name, c.function.arguments) for c in calls] == [("run", {"command": "ls"})]
    streamed = "".join(part.message.content or "" for part in client.chat(model=server.model, messages=[],
                                                                          stream=True))
    assert streamed == "hello there, model"

    def openai(stream: bool) -> bytes:
        request = urllib.request.Request(f"{server.url}/v1/chat/completions", method="POST",
                                         data=json.dumps({"model": server.model, "messages": [],
                                                          "stream": stream}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()

    [tool_call] = json.loads(openai(False))["choices"][0]["message"]["tool_calls"]
    assert tool_call["function"] == {"name": "run", "arguments": '{"command": "ls"}'}
    events = [line[6:] for line in openai(True).decode().splitlines() if line.startswith("data: ")]
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "hello there, model" and events[-1] == "[DONE]"
