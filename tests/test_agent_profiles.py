"""The built-in agent profiles (claude-code, codex, gemini, opencode, aider), picked by the agent's name,
and the agent's configuration in the jail: read-only from the real home, or a per-workspace copy that
persists and leaves the real one unchanged. Real jails for the modes; the agents themselves are stand-in
scripts named as they are (the real ones run end to end in tests/test_five_agents.py)."""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path

import pytest
from conftest import Jail, guarded

from jail.errors import ProfileError
from jail.policy import agentconfig, profile, view

AGENTS = {"claude-code": ("claude", "api.anthropic.com", "{home}/.claude/"),
          "codex": ("codex", "api.openai.com", "{home}/.codex/"),
          "gemini": ("gemini", "generativelanguage.googleapis.com", "{home}/.gemini/"),
          "opencode": ("opencode", "api.anthropic.com", "{home}/.config/opencode/"),
          "aider": ("aider", "api.openai.com", "{home}/.aider/")}


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_each_agent_profile_extends_coding_agent_with_its_host_and_config(name: str) -> None:
    program, host, config = AGENTS[name]
    loaded, default = profile.load(name), profile.load("coding-agent")
    assert loaded.agent.programs == (program,) and loaded.agent.config == "copy"
    assert config in loaded.agent.config_paths
    assert host in loaded.network.allow and set(default.network.allow) <= set(loaded.network.allow)
    assert [r.id for r in loaded.interposer.rules] == [r.id for r in default.interposer.rules]
    assert loaded.agent.secrets and not set(loaded.agent.secrets) & set(loaded.environment.set)
    assert not any(s.rstrip("*") and k.startswith(s.rstrip("*")) for k in loaded.agent.secrets
                   for s in loaded.environment.keep), "a key would be inherited from the environment"
    assert agentconfig.pick(f"/usr/local/bin/{program}") == name


def test_other_programs_pick_no_profile() -> None:
    assert agentconfig.pick("bash") is None and agentconfig.pick("/usr/bin/python3") is None
    assert agentconfig.pick("") is None


def test_claude_code_is_told_it_is_sandboxed() -> None:
    env = profile.load("claude-code").environment.set
    assert env["IS_SANDBOX"] == "1" and env["CLAUDE_CONFIG_DIR"] == "{home}/.claude"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("body, key, problem", [
    ('config = "rw"', "agent.config", "expected one of 'copy', 'read-only', 'none'"),
    ('config_paths = ["/etc/claude/"]', "agent.config_paths", "a path inside the home"),
    ('config_paths = ["{home}/../x/"]', "agent.config_paths", "no '..'"),
    ('config_paths = ["{home}/.ssh/"]', "agent.config_paths", "holds credentials"),
    ('config_paths = ["{home}/.config/"]', "agent.config_paths", "holds credentials"),
    ('config_paths = ["{home}/.a/", "{home}/.a/b/"]', "agent.config_paths", "is inside"),
    ('programs = ["bin/claude"]', "agent.programs", "not a program name"),
    ('secrets = ["A-B"]', "agent.secrets", "not an environment variable name"),
    ('config_paths = ["{home}/.a/"]\n[agent.seed."{home}/.b/s.json"]\nx = 1', "agent.seed",
     "not inside a directory of agent.config_paths"),
    ('config_paths = ["{home}/.a/"]\n[agent.seed."{home}/.a/s.yml"]\nx = 1', "agent.seed", "ending in .json or .toml"),
    ('colour = "blue"', "agent.colour", "unknown key"),
    ('copy_skip = ["{home}/.elsewhere/"]', "agent.copy_skip", "not inside a directory of agent.config_paths"),
])
def test_bad_agent_keys_are_refused_with_file_and_line(tmp_path: Path, body: str, key: str, problem: str) -> None:
    path = _write(tmp_path / "bad.toml", f'extends = "claude-code"\n\n[agent]\n{body}\n')
    with pytest.raises(ProfileError) as caught:
        profile.load(str(path))
    text = str(caught.value)
    assert str(path) in text and key in text and problem in text, text
    assert caught.value.line == 4 or key in ("agent.seed", "agent.copy_skip"), text


def test_profile_show_writes_the_agent_table(tmp_path: Path, jail: Jail) -> None:
    shown = jail.cli("profile", "show", "gemini")
    assert shown.returncode == 0, shown.stderr
    data = tomllib.loads(shown.stdout)
    assert data["agent"]["config"] == "copy"
    assert data["agent"]["seed"]["{home}/.gemini/settings.json"]["security"]["auth"]["selectedType"] == "gemini-api-key"


def test_the_resolved_views_bind_the_configuration_by_mode(tmp_path: Path) -> None:
    home, workspace = tmp_path / "home", tmp_path / "work"
    (home / ".claude").mkdir(parents=True)
    workspace.mkdir()
    loaded = profile.load("claude-code")

    def config_mounts(mode: str) -> list[view.Bind]:
        resolved = view.resolve(agentconfig.with_mode(loaded, mode), str(workspace), str(home), "me", "")
        return [m for m in resolved.mounts if isinstance(m, view.Bind) and m.target == f"{home}/.claude"]

    copy, = config_mounts("copy")
    assert copy.writable and copy.source.endswith("/.claude") and "/shelljail/agents/claude-" in copy.source
    read_only, = config_mounts("read-only")
    assert read_only == view.Bind(str(home / ".claude"), f"{home}/.claude", False)
    assert config_mounts("none") == []


def _agent(jail: Jail, name: str, script: str) -> str:
    """A stand-in agent: a shell script in the workspace with the agent's program name."""
    path = jail.workspace / name
    path.write_text("#!/bin/sh\n" + guarded(script))
    path.chmod(0o755)
    return f"./{name}"


def test_run_and_check_pick_the_profile_by_the_agent_name_and_say_so(jail: Jail) -> None:
    agent = _agent(jail, "claude", 'echo "sandbox=$IS_SANDBOX"')
    picked = jail.run(agent)
    assert picked.returncode == 0, picked.stderr
    assert "shelljail: using profile claude-code for claude (choose another with -p)" in picked.stderr.splitlines()
    assert "sandbox=1" in picked.stdout
    chosen = jail.run(agent, options=("-p", "coding-agent"))
    assert chosen.returncode == 0 and "using profile" not in chosen.stderr and "sandbox=\n" in chosen.stdout
    dry = jail.run(agent, options=("--dry-run",), interposer=True)
    assert "shelljail: using profile claude-code for claude (choose another with -p)" in dry.stderr
    checked = jail.cli("check", "codex exec hello")
    assert checked.returncode == 0 and "shelljail: using profile codex for codex" in checked.stderr
    plain = jail.run("/bin/true")
    assert plain.returncode == 0 and "using profile" not in plain.stderr


def test_read_only_config_is_read_and_a_write_fails(jail: Jail) -> None:
    real = jail.home / ".claude"
    real.mkdir()
    (real / "settings.json").write_text('{"theme": "dark"}\n')
    (real / ".credentials.json").write_text('{"token": "login"}\n')
    agent = _agent(jail, "claude", 'cat ~/.claude/settings.json ~/.claude/.credentials.json\n'
                                   'if echo x >> ~/.claude/settings.json; then echo WROTE; else echo REFUSED; fi\n'
                                   'touch ~/.claude/new 2>/dev/null || echo NOT-CREATED\n')
    result = jail.run(agent, options=("--agent-config", "read-only"))
    assert result.returncode == 0, result.stderr
    assert '{"theme": "dark"}' in result.stdout and "REFUSED" in result.stdout and "NOT-CREATED" in result.stdout
    assert "login" not in result.stdout  # hidden: the login file is /dev/null in the jail
    assert (real / "settings.json").read_text() == '{"theme": "dark"}\n' and not (real / "new").exists()


def test_copy_config_persists_across_runs_and_the_real_one_is_unchanged(jail: Jail) -> None:
    real = jail.home / ".claude"
    real.mkdir()
    (real / "settings.json").write_text('{"theme": "dark"}\n')
    (real / ".credentials.json").write_text('{"token": "login"}\n')
    os.mkfifo(real / "pipe")  # never opened by the copy
    (real / "projects" / "-other-project").mkdir(parents=True)  # agent.copy_skip: not copied
    (real / "projects" / "-other-project" / "session.jsonl").write_text("another project's transcript\n")
    (real / "history.jsonl").write_text("a prompt of another project\n")
    helper = real / "helper"
    helper.write_text("#!/bin/sh\n")
    helper.chmod(0o4755)
    first = _agent(jail, "claude", 'echo more >> ~/.claude/settings.json && echo hello > ~/.claude/new\n'
                                   'ls -a ~/.claude\n[ -s ~/.claude/.credentials.json ] && echo CREDENTIALS\n'
                                   'echo "dir=$CLAUDE_CONFIG_DIR"')
    result = jail.run(first)
    assert result.returncode == 0, result.stderr
    assert "CREDENTIALS" not in result.stdout and "pipe" not in result.stdout.split()
    assert f"dir={jail.home}/.claude" in result.stdout
    second = _agent(jail, "claude", "cat ~/.claude/settings.json ~/.claude/new")
    again = jail.run(second)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == ['{"theme": "dark"}', "more", "hello"]
    assert (real / "settings.json").read_text() == '{"theme": "dark"}\n' and not (real / "new").exists()
    store, = (jail.home / ".local/state/shelljail/agents").iterdir()
    assert store.name.startswith("claude-")
    session = json.loads(jail.cli("sessions", "--json").stdout.splitlines()[0])["session"]
    start = next(e for e in map(json.loads, jail.cli("log", session, "--json").stdout.splitlines())
                 if e["event"] == "session-start")
    assert start["agent_config"] == {"mode": "copy", "paths": ["{home}/.claude/"], "copy": str(store / "home")}
    copied = store / "home/.claude"
    assert not (copied / ".credentials.json").exists() and not (copied / "pipe").exists()
    assert not (copied / "projects" / "-other-project").exists() and not (copied / "history.jsonl").exists()
    assert not os.stat(copied / "helper").st_mode & (stat.S_ISUID | stat.S_ISGID)
    other = jail.root / "other"
    other.mkdir()
    (other / "claude").write_bytes((jail.workspace / "claude").read_bytes())
    (other / "claude").chmod(0o755)
    elsewhere = jail.cli("run", "-w", str(other), "--interposer", "off", "--", "./claude", cwd=other)
    assert elsewhere.stdout.splitlines() == ['{"theme": "dark"}'], elsewhere.stdout  # its own copy, fresh


def test_none_shows_no_configuration(jail: Jail) -> None:
    (jail.home / ".claude").mkdir()
    (jail.home / ".claude" / "settings.json").write_text("{}\n")
    agent = _agent(jail, "claude", "ls ~/.claude 2>/dev/null || echo ABSENT")
    result = jail.run(agent, options=("--agent-config", "none"))
    assert result.returncode == 0 and "ABSENT" in result.stdout, result.stdout + result.stderr


def test_seeds_make_the_headless_mode_work_and_the_users_file_wins(jail: Jail) -> None:
    agent = _agent(jail, "gemini", 'cat ~/.gemini/settings.json; echo "trust=$GEMINI_CLI_TRUST_WORKSPACE"')
    result = jail.run(agent)
    assert result.returncode == 0, result.stderr
    settings, trust = result.stdout.rsplit("\n", 2)[:2]
    assert json.loads(settings)["security"]["auth"]["selectedType"] == "gemini-api-key"
    assert trust == "trust=true"
    opencode = jail.run(_agent(jail, "opencode", "cat ~/.config/opencode/opencode.json"))
    assert opencode.returncode == 0, opencode.stderr
    assert json.loads(opencode.stdout)["permission"] == {"external_directory": "allow"}
    (jail.home / ".codex").mkdir()
    (jail.home / ".codex" / "config.toml").write_text('model = "mine"\n')
    codex = _agent(jail, "codex", "cat ~/.codex/config.toml")
    own = jail.run(codex)
    assert own.returncode == 0 and own.stdout == 'model = "mine"\n', own.stdout + own.stderr


def test_a_seed_path_the_jail_made_a_link_is_not_written_through(jail: Jail, tmp_path: Path) -> None:
    canary, absent = tmp_path / "canary.json", tmp_path / "absent.toml"
    canary.write_text("mine\n")
    planted = (("gemini", "~/.gemini/settings.json", canary), ("codex", "~/.codex/config.toml", absent))
    for name, seed, target in planted:
        plant = _agent(jail, name, f"rm -f {seed} && ln -s {target} {seed}")  # to a file; dangling
        assert jail.run(plant).returncode == 0
        look = _agent(jail, name, f"ls -l {seed}")
        result = jail.run(look)  # the next run's seeding finds the link and leaves it
        assert result.returncode == 0 and "->" in result.stdout, result.stdout + result.stderr
    assert canary.read_text() == "mine\n" and not absent.exists()


def test_the_key_is_never_inherited_only_passed_with_secret(jail: Jail) -> None:
    agent = _agent(jail, "claude", 'echo "key=${ANTHROPIC_API_KEY:-unset}"')
    env = jail.env(ANTHROPIC_API_KEY="sk-ant-from-the-environment")
    inherited = jail.cli("run", "-w", str(jail.workspace), "--interposer", "off", "--", agent, env=env)
    assert inherited.returncode == 0 and "key=unset" in inherited.stdout, inherited.stdout + inherited.stderr
    assert ("shelljail: ANTHROPIC_API_KEY is set in your environment and the jail does not inherit it: give it "
            "with --secret ANTHROPIC_API_KEY") in inherited.stderr.splitlines()
    passed = jail.cli("run", "-w", str(jail.workspace), "--interposer", "off", "--secret", "ANTHROPIC_API_KEY",
                      "--", agent, env=env)
    assert passed.returncode == 0 and "key=[secret:ANTHROPIC_API_KEY]" in passed.stdout, passed.stdout
    assert "does not inherit" not in passed.stderr


def test_an_ordinary_users_copy_persists_in_its_own_state_dir(nobody_jail: Jail) -> None:
    jail = nobody_jail
    real = jail.home / ".gemini"
    real.mkdir()
    (real / "settings.json").write_text('{"mine": true}\n')
    os.chown(real, jail.user, jail.user)
    write = _agent(jail, "gemini", "echo kept > ~/.gemini/note && cat ~/.gemini/settings.json")
    os.chown(jail.workspace / "gemini", jail.user, jail.user)
    first = jail.run(write)
    assert first.returncode == 0 and json.loads(first.stdout) == {"mine": True}, first.stdout + first.stderr
    read = _agent(jail, "gemini", "cat ~/.gemini/note")
    again = jail.run(read)
    assert again.returncode == 0 and again.stdout == "kept\n", again.stdout + again.stderr
    assert not (real / "note").exists()
    store, = (jail.home / ".local/state/shelljail/agents").iterdir()
    assert os.stat(store / "home/.gemini").st_uid == jail.user


@pytest.mark.parametrize("name, endpoint", [("claude-code", "POST /v1/messages"), ("codex", "POST /v1/responses")])
def test_the_ollama_forward_also_passes_the_agents_api_and_never_management(name: str, endpoint: str) -> None:
    loaded = profile.load(name)
    forward, = loaded.network.forward_settings
    assert forward.address == "127.0.0.1:11434" and forward.protocol == "ollama"
    assert endpoint in profile.forward_allow_paths(loaded.network, forward) and forward.allow_management == ()


def test_a_linked_dotfile_is_copied_not_bound_through_its_link(jail: Jail, tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "aider.conf.yml").write_text("model: mine\n")
    (jail.home / ".aider.conf.yml").symlink_to(dotfiles / "aider.conf.yml")
    write = _agent(jail, "aider", "cat ~/.aider.conf.yml && echo 'model: jail' > ~/.aider.conf.yml")
    first = jail.run(write)
    assert first.returncode == 0 and first.stdout == "model: mine\n", first.stdout + first.stderr
    again = jail.run(_agent(jail, "aider", "cat ~/.aider.conf.yml"))
    assert again.returncode == 0 and again.stdout == "model: jail\n", again.stdout + again.stderr
    assert (dotfiles / "aider.conf.yml").read_text() == "model: mine\n"
    copied, = (jail.home / ".local/state/shelljail/agents").glob("aider-*/home/.aider.conf.yml")
    assert not copied.is_symlink()
