"""Secrets: given for one run, masked in the log and relayed output; credentials stay out of view."""

import base64
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Jail

from jail.policy.secrets import Redactor, Secret, parse

SECRET = "tok-7f3a9c2e41d8b6"


@pytest.fixture
def jail(tmp_path: Path) -> Jail:
    return Jail(tmp_path / "jail")


def run(jail: Jail, state: Path, *args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess[str]:
    env = jail.env(XDG_STATE_HOME=str(state), **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "jail.cli", "run", "-w", str(jail.workspace), *args],
                          env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def audit_text(state: Path) -> str:
    return "".join(p.read_text() for p in (state / "shelljail" / "sessions").glob("*/audit.jsonl"))


def test_a_secret_is_readable_inside_for_that_run_only(jail: Jail, tmp_path: Path) -> None:
    state = tmp_path / "state"
    (tmp_path / "token.txt").write_text(SECRET + "2\n")
    script = ("python3 -c 'import os, sys; sys.stderr.write(repr((os.environ.get(\"API_TOKEN\"), "
              "open(os.environ[\"FILE_TOKEN_FILE\"]).read())))'")
    result = run(jail, state, "--interposer", "off", "--secret", "API_TOKEN",
                 "--secret", f"FILE_TOKEN=file:{tmp_path / 'token.txt'}:file", "--", "/bin/sh", "-c", script,
                 env_extra={"API_TOKEN": SECRET})
    assert result.returncode == 0, result.stderr
    # The values reached the command (it compares them itself: what it prints back is masked)...
    check = (f"python3 -c 'import os; print(os.environ[\"API_TOKEN\"] == \"{SECRET}\", "
             f"open(\"/run/secrets/FILE_TOKEN\").read() == \"{SECRET}2\\n\")'")
    seen = run(jail, state, "--interposer", "off", "--secret", "API_TOKEN",
               "--secret", f"FILE_TOKEN=file:{tmp_path / 'token.txt'}:file", "--", "/bin/sh", "-c", check,
               env_extra={"API_TOKEN": SECRET})
    assert seen.stdout.split() == ["True", "True"], seen.stderr
    assert "[secret:API_TOKEN]" in result.stderr and "[secret:FILE_TOKEN]" in result.stderr
    # ...and only in that run: not inherited without --secret, no file left behind.
    later = run(jail, state, "--interposer", "off", "--", "/bin/sh", "-c",
                "echo ${API_TOKEN:-unset}; ls /run/secrets 2>&1", env_extra={"API_TOKEN": SECRET})
    assert later.stdout.splitlines()[0] == "unset" and "No such file" in later.stdout


def test_secrets_never_reach_the_log_or_relayed_output(jail: Jail, tmp_path: Path) -> None:
    state = tmp_path / "state"
    line = f"echo {SECRET}; printf %s {SECRET} | base64; printf %s x{SECRET}yz | base64"
    result = run(jail, state, "--secret", "API_TOKEN", "--ask", "deny", "--", "/bin/bash", "-c", line,
                 env_extra={"API_TOKEN": SECRET})
    everything = result.stdout + result.stderr
    assert SECRET not in everything
    assert base64.b64encode(SECRET.encode()).decode().rstrip("=") not in everything
    assert everything.count("[secret:API_TOKEN]") >= 3
    log = audit_text(state)
    assert SECRET not in log and "[secret:API_TOKEN]" in log  # the decision's command, masked


def test_credentials_in_the_callers_home_are_unreadable(jail: Jail, tmp_path: Path) -> None:
    from jail.policy.paths import CREDENTIALS

    canary = "canary-" + os.urandom(6).hex()
    for credential in CREDENTIALS:
        path = jail.home / credential
        if credential.startswith(".") and "." not in credential[1:] and "/" not in credential:
            path.mkdir(parents=True, exist_ok=True)
            path = path / "secret-file"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(canary)
    result = jail.sh(f"grep -r {canary} {jail.home} 2>/dev/null; ls -A {jail.home}; echo end")
    assert canary not in result.stdout
    assert result.stdout.strip() == "end"  # the jail's home is empty


def test_ssh_auth_sock_is_unreachable(jail: Jail, tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    with socket.socket(socket.AF_UNIX) as agent:
        agent.bind(str(path))
        agent.listen()
        script = ("import os, socket; s = socket.socket(socket.AF_UNIX)\n"
                  f"print(os.environ.get('SSH_AUTH_SOCK'), s.connect_ex('{path}'))")
        result = jail.run("/usr/bin/python3", "-c", script, env=jail.env(SSH_AUTH_SOCK=str(path)))
    sock_var, code = result.stdout.split()
    assert sock_var == "None" and int(code) != 0


def test_a_command_reading_a_workspace_env_file_is_asked_about(jail: Jail) -> None:
    (jail.workspace / ".env").write_text(f"TOKEN={SECRET}\n")
    result = jail.run("/bin/bash", "-c", "cat .env", interposer=True)
    assert result.returncode == 126 and "reads" in result.stderr and ".env" in result.stderr
    assert SECRET not in result.stdout


def test_secret_sources_and_errors(tmp_path: Path) -> None:
    assert parse("A=cmd:printf from-command", {}) == Secret("A", "from-command", False)
    assert parse("B:file", {"B": "value"}) == Secret("B", "value", True)
    for spec, problem in (("C", "not set"), ("D=file:/no/such", "cannot read"), ("E=cmd:false", "exited 1"),
                          ("F=http:x", "unknown source"), ("1X", "not a variable name")):
        with pytest.raises(Exception, match=problem):
            parse(spec, {})


def test_the_redactor_masks_every_alignment_of_base64() -> None:
    redactor = Redactor([Secret("T", SECRET, False)])
    for prefix in (b"", b"a", b"ab", b"abc"):
        for suffix in (b"", b"z", b"zz"):
            encoded = base64.b64encode(prefix + SECRET.encode() + suffix).decode()
            assert "[secret:T]" in redactor.text(encoded), (prefix, suffix)
    assert json.dumps(redactor.value({"a": [SECRET, {"b": f"x{SECRET}y"}]})).count("[secret:T]") == 2
    special = Redactor([Secret("U", "p@ss/w+rd&more", False)])
    assert special.text("q=p%40ss%2Fw%2Brd%26more and p%40ss%2Fw%2Brd%26more") == "q=[secret:U] and [secret:U]"
