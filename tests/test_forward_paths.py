"""`network.forward_paths`: each agent profile names the API its agent speaks, so that `run --forward
127.0.0.1:PORT` under it (the profile picked by the program's name, no profile file) lets through exactly
those paths beyond the inference endpoints, and nothing else. Real jails, stand-in agents named as the real
ones, a real HTTP server on the host's loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from conftest import Jail, guarded
from model_server import echo_server

from jail.errors import ProfileError
from jail.policy import agentconfig, profile

pytestmark = pytest.mark.jail


@pytest.fixture
def port() -> Iterator[int]:
    with echo_server() as number:
        yield number


# Every agent API's path, asked of the forward; each profile must pass its own and refuse the others'.
ASKED = ["POST /v1/messages", "POST /v1/messages/count_tokens", "POST /v1/responses",
         "POST /v1beta/models/gemini-2.5-flash:streamGenerateContent", "POST /v1/chat/completions",
         "GET /v1/models", "DELETE /api/delete", "POST /v1/files"]

FETCH = """\
import http.client, sys
port = int(sys.argv[1])
for line in sys.argv[2:]:
    method, path = line.split(" ", 1)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    connection.request(method, path, body=b"{}" if method == "POST" else None)
    print(line, connection.getresponse().status)
"""

# The program name that picks the profile, and what its forward answers beyond the inference endpoints.
PASSED = {"claude": {"POST /v1/messages", "POST /v1/messages/count_tokens"},
          "codex": {"POST /v1/responses"},
          "gemini": {"POST /v1beta/models/gemini-2.5-flash:streamGenerateContent"},
          "opencode": {"POST /v1/messages", "POST /v1/messages/count_tokens", "POST /v1/responses"},
          "aider": {"POST /v1/messages", "POST /v1/messages/count_tokens"}}
INFERENCE = {"POST /v1/chat/completions", "GET /v1/models"}


@pytest.mark.parametrize("program", sorted(PASSED))
def test_a_forward_passes_the_agents_api_and_refuses_the_rest(jail: Jail, port: int, program: str) -> None:
    (jail.workspace / "fetch.py").write_text(FETCH)
    agent = jail.workspace / program
    agent.write_text("#!/bin/sh\n" + guarded('exec /usr/bin/python3 fetch.py "$@"\n'))
    agent.chmod(0o755)
    result = jail.run(f"./{program}", str(port), *ASKED, options=("--forward", f"127.0.0.1:{port}"))
    assert result.returncode == 0, result.stderr
    answers = dict(line.rsplit(" ", 1) for line in result.stdout.splitlines())
    expected = {asked: "200" if asked in PASSED[program] | INFERENCE else "403" for asked in ASKED}
    assert answers == expected
    picked = profile.load(str(agentconfig.pick(program)))
    paths = ", ".join(picked.network.forward_paths)
    assert (f"shelljail: --forward 127.0.0.1:{port} lets through the model's inference and read-only endpoints "
            f"(Ollama, OpenAI chat completions) and {paths} (network.forward_paths of profile {picked.name})"
            in result.stderr.splitlines()), result.stderr
    session = json.loads(jail.cli("sessions", "--json").stdout.splitlines()[0])["session"]
    start = next(e for e in map(json.loads, jail.cli("log", session, "--json").stdout.splitlines())
                 if e["event"] == "session-start")
    assert start["run_flags"] == [f"--forward 127.0.0.1:{port} (also {paths})"]


def test_a_forwards_own_allow_paths_replace_the_profiles(jail: Jail, port: int) -> None:
    """A table naming allow_paths says all of what that forward passes: the profile's forward_paths do not add."""
    (jail.workspace / "fetch.py").write_text(FETCH)
    custom = jail.root / "custom.toml"
    custom.write_text(f'extends = "claude-code"\n[network]\n'
                      f'forward = [{{ address = "127.0.0.1:{port}", allow_paths = ["POST /v1/files"] }}]\n')
    result = jail.run("/usr/bin/python3", "fetch.py", str(port), "POST /v1/files", "POST /v1/messages",
                      options=("-p", str(custom)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["POST /v1/files 200", "POST /v1/messages 403"]


def test_without_an_agent_profile_a_forward_passes_the_inference_endpoints_only(jail: Jail, port: int) -> None:
    (jail.workspace / "fetch.py").write_text(FETCH)
    result = jail.run("/usr/bin/python3", "fetch.py", str(port), "POST /v1/chat/completions", "POST /v1/messages",
                      options=("--forward", f"127.0.0.1:{port}"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["POST /v1/chat/completions 200", "POST /v1/messages 403"]
    assert (f"shelljail: --forward 127.0.0.1:{port} lets through the model's inference and read-only endpoints "
            "(Ollama, OpenAI chat completions) only" in result.stderr.splitlines()), result.stderr


@pytest.mark.parametrize("value", ['["FETCH /v1/messages"]', '["POST v1/messages"]', '["POST /v1/../x"]',
                                   '["POST /v1/%2e"]', '"POST /v1/messages"', '["POST /v1/*/x"]'])
def test_a_bad_forward_paths_value_is_refused_in_one_line_before_anything_starts(jail: Jail, value: str) -> None:
    bad = jail.root / "bad.toml"
    bad.write_text(f'extends = "coding-agent"\n[network]\nforward_paths = {value}\n')
    with pytest.raises(ProfileError, match="network.forward_paths"):
        profile.load(str(bad))
    result = jail.run("/bin/sh", "-c", "touch started", options=("-p", str(bad)))
    assert result.returncode == 125, result.stderr  # a profile's error, as every key's (docs/profiles.md)
    line, = result.stderr.splitlines()
    assert line.startswith(f"shelljail: {bad}:3: network.forward_paths: ") and "docs/profiles.md" in line, line
    assert not (jail.workspace / "started").exists()
