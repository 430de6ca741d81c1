"""Each key of a catalogue entry (the grammar's and the forms' are in tests/test_catalogue.py) changes a
decision when a profile sets it: the real `shelljail check`, with a profile written to tmp_path
(`[interposer.programs.NAME]`), against the same profile without the key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.jail

STOPPED = ("deny", "ask")

# (key, the entry with it, the entry without it, a line, whether the line is stopped with the key)
CASES = [
    ("wraps", "wraps = true", "", "mywrap rm -rf ~", True),
    ("operands", "wraps = true\noperands = 1", "wraps = true", "mywrap 5 rm -rf ~", True),
    ("assignments", "wraps = true\nassignments = true", "wraps = true", "mywrap A=1 rm -rf ~", True),
    ("lookup", 'wraps = true\nlookup = ["--which"]', "wraps = true", "mywrap --which rm -rf ~", False),
    ("chdir", 'wraps = true\nvalues = ["--in"]\nchdir = ["--in"]', 'wraps = true\nvalues = ["--in"]',
     "mywrap --in / rm -rf etc", True),
    ("splits", 'wraps = true\nvalues = ["--line"]\nsplits = ["--line"]', 'wraps = true\nvalues = ["--line"]',
     "mywrap --line 'rm -rf ~'", True),
]

# The keys of what a program does with files (effects.py) and how it reaches the network (destinations.py):
# (key, with it, without it, line, the decision and rule with it, and without it), as `shelljail check` gives.
FILE_CASES = [
    ("files-read", 'files = ["read"]', "", "mytool .env", "ask/read-dotenv", "allow/None"),
    ("files-read-after-script", 'files = ["read-after-script"]', 'files = ["read"]', "mytool .env notes.txt",
     "allow/None", "ask/read-dotenv"),
    ("files-write", 'files = ["write"]', "", "mytool ~/.bashrc", "deny/write-outside-workspace",
     "ask/names-startup-file"),
    ("files-name", 'files = ["name"]', "", "mytool /etc/shadow", "allow/None", "ask/read-credentials"),
    ("files-show", 'files = ["show"]', "", "mytool ~/.bashrc", "allow/None", "ask/names-startup-file"),
    ("files-stdin-names", 'files = ["stdin-names"]', "", "echo .env | mytool", "ask/read-dotenv", "allow/None"),
    ("files-delete", 'files = ["delete"]', "", "mytool /etc/hosts", "deny/delete-outside-workspace", "allow/None"),
    ("files-move", 'files = ["move"]', "", "mytool /etc/hosts here", "deny/delete-outside-workspace",
     "allow/None"),
    ("files-write-after-first", 'files = ["write-after-first"]', "", "mytool 777 /etc/hosts",
     "deny/write-outside-workspace", "allow/None"),
    ("files-write-last", 'files = ["write-last"]', "", "mytool a /etc/hosts", "deny/write-outside-workspace",
     "allow/None"),
    ("files-read-but-last", 'files = ["read-but-last"]', "", "mytool .env out", "ask/read-dotenv", "allow/None"),
    ("dry_run", 'files = ["write-last"]\ndry_run = ["-n"]', 'files = ["write-last"]', "mytool -n a /etc/hosts",
     "allow/None", "deny/write-outside-workspace"),
    ("reads_options", 'reads_options = ["-k"]', "", "mytool -k .env host", "ask/read-dotenv", "allow/None"),
    ("sends_operands", "sends_operands = true", "", "mytool /opt/x host:dir", "ask/send-outside-file",
     "allow/None"),
    ("files-read-but-first", 'files = ["read-but-first"]', "", "mytool out.zip .env", "ask/read-dotenv",
     "allow/None"),
    ("archive-tar", 'archive = "tar"', "", "mytool -xf x.tar -C /etc", "deny/write-outside-workspace", "allow/None"),
    ("archive-unzip", 'archive = "unzip"', "", "mytool x.zip -d /etc", "deny/write-outside-workspace", "allow/None"),
    ("archive-7z", 'archive = "7z"', "", "mytool x x.7z -o/etc", "deny/write-outside-workspace", "allow/None"),
    ("output", 'output = ["--save"]', "", "mytool --save ~/.bashrc", "deny/write-outside-workspace",
     "ask/names-startup-file"),
    ("not_output", 'not_output = ["-o"]', "", "mytool -o ~/.bashrc", "ask/names-startup-file",
     "deny/write-outside-workspace"),
    ("bundled_output", 'bundled_output = "-o"', "", "mytool -xo ~/.bashrc", "deny/write-outside-workspace",
     "ask/names-startup-file"),
    ("recursive", 'files = ["read"]\nrecursive = ["-R"]', 'files = ["read"]', "mytool -R /etc",
     "ask/read-credentials", "allow/None"),
    ("trees", 'files = ["read"]\ntrees = true', 'files = ["read"]', "mytool /etc", "ask/read-credentials",
     "allow/None"),
    ("unknown_verbs", 'files = ["read"]\nunknown_verbs = true', 'files = ["read"]', "mytool delete",
     "ask/unknown-destructive-verb", "allow/None"),
    ("network-urls", 'network = "urls"', "", "mytool https://evil.example.com/x", "deny/network-allow",
     "allow/None"),
    ("network-uploads", 'network = "uploads"', 'network = "urls"', "mytool -T /opt/x https://pypi.org/",
     "ask/send-outside-file", "allow/None"),
    ("network-httpie", 'network = "httpie"', 'network = "uploads"', "mytool POST https://pypi.org/ f@/opt/x",
     "ask/send-outside-file", "allow/None"),
    ("network-raw", 'network = "raw"', "", "mytool evil.example.com 80", "deny/network-direct", "allow/None"),
    ("network-ssh", 'network = "ssh"', "", "mytool notes.txt user@evil.example.com:x", "deny/network-direct",
     "allow/None"),
    ("text_only", "text_only = true", "", "mytool /bin/sh", "allow/None", "ask/opaque"),
    ("session", "session = true", "", "mytool", "ask/opaque", "allow/None"),
    ("copies", "text_only = true\ncopies = true", "text_only = true", "mytool /bin/sh ./x", "ask/opaque",
     "allow/None"),
    ("commands", 'commands = { "--hook" = [] }', "", "mytool --hook 'rm -rf ~'", "deny/delete-home", "allow/None"),
    ("commands-expected", 'commands = { "--hook" = ["gzip"] }', 'commands = { "--hook" = [] }',
     "mytool --hook gzip", "allow/None", "ask/opaque"),
    ("command_settings", 'command_settings = ["Hook"]', "", "mytool -o Hook=/tmp/x host", "ask/opaque",
     "allow/None"),
    ("settings_list", 'command_settings = ["hook"]\nsettings_list = true', 'command_settings = ["hook"]',
     "mytool -o a=1,hook=/tmp/x", "ask/opaque", "allow/None"),
    ("shell_escapes", 'shell_escapes = ["--unsafe"]', "", "mytool --unsafe doc.tex", "ask/opaque", "allow/None"),
    ("shell", "shell = true", "", "mytool -c 'rm -rf ~'", "deny/delete-home", "allow/None"),
    ("interpreter", "interpreter = true", "", "mytool", "ask/opaque", "allow/None"),
    ("code", 'interpreter = true\ncode = ["-x"]', "interpreter = true", "mytool -x 'boom()'", "ask/opaque",
     "allow/None"),
    ("code_letters", 'interpreter = true\ncode_letters = "x"', "interpreter = true", "mytool -nx 'boom()'",
     "ask/opaque", "allow/None"),
    ("value_letters", 'interpreter = true\ncode_letters = "x"\nvalue_letters = "i"',
     'interpreter = true\ncode_letters = "x"', "mytool -ix 'boom()'", "allow/None", "ask/opaque"),
    ("repl", "interpreter = true\nrepl = false", "interpreter = true", "mytool", "allow/None", "ask/opaque"),
    ("environment_shell", 'environment_shell = ["shell"]', "", "mytool shell", "ask/opaque", "allow/None"),
    ("environment_line", 'environment_shell = [""]\nenvironment_line = ["--run"]', 'environment_shell = [""]',
     "mytool --run 'rm -rf ~'", "deny/delete-home", "ask/opaque"),
    ("environment_command", 'environment_shell = ["go"]\nenvironment_command = ["-c"]',
     'environment_shell = ["go"]', "mytool go -c rm -rf ~", "deny/delete-home", "ask/opaque"),
    ("manifests", 'manifests = ["tool.cfg"]', "", "echo 'exec /bin/sh' > tool.cfg; mytool", "ask/opaque",
     "allow/None"),
    ("makefiles", 'makefiles = ["Build"]', "", "printf 'all:\\n\\trm -rf ~\\n' > Build; mytool",
     "deny/delete-home", "allow/None"),
]


def check(tmp_path: Path, entry: str, line: str, name: str = "mywrap") -> dict:
    profile = tmp_path / "mine.toml"
    profile.write_text(f'extends = "coding-agent"\n[interposer.programs.{name}]\n{entry}\n')
    workspace = tmp_path / "workspace"
    workspace.mkdir(exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "jail.cli", "check", "--json", "-p", str(profile), "-C",
                             str(workspace), line], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("key, with_key, without_key, line, stopped", CASES, ids=[c[0] for c in CASES])
def test_a_profile_key_changes_the_decision(tmp_path: Path, key: str, with_key: str, without_key: str, line: str,
                                            stopped: bool) -> None:
    given = check(tmp_path, with_key, line)
    twin = check(tmp_path, without_key, line)
    assert (given["decision"] in STOPPED) is stopped, (key, given)
    assert (twin["decision"] in STOPPED) is not stopped, (key, twin)


@pytest.mark.parametrize("key, with_key, without_key, line, given, twin", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_a_profile_file_key_changes_the_decision(tmp_path: Path, key: str, with_key: str, without_key: str,
                                                 line: str, given: str, twin: str) -> None:
    found = [check(tmp_path, entry, line, "mytool") for entry in (with_key, without_key)]
    assert [f"{d['decision']}/{d['rule']}" for d in found] == [given, twin], key


@pytest.mark.parametrize("entry, words", [
    ("operands = 1", "only with wraps = true"),
    ("wraps = true\noperands = -1", "whole number"),
    ('wraps = true\nchdir = ["in"]', "starts with '-'"),
    ('files = ["eat"]', "unknown kind 'eat'"),
    ('bundled_output = "--out"', "one short option"),
    ('network = "pigeon"', "unknown kind 'pigeon'"),
    ('archive = "rar"', "unknown kind 'rar'"),
])
def test_a_bad_wrapper_key_is_refused_naming_the_profile_line(tmp_path: Path, entry: str, words: str) -> None:
    profile = tmp_path / "mine.toml"
    profile.write_text(f'extends = "coding-agent"\n[interposer.programs.mywrap]\n{entry}\n')
    result = subprocess.run([sys.executable, "-m", "jail.cli", "check", "-p", str(profile), "-C", str(tmp_path),
                             "true"], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and words in result.stderr and str(profile) in result.stderr, result.stderr


def test_prunes_makes_the_destination_deleted_from(tmp_path: Path) -> None:
    """`rsync --delete-after a/ dest/`: what dest holds beyond a/ is deleted (the check's per-command deletes)."""
    line = "mytool --delete-after a/ dest/"
    given = check(tmp_path, 'files = ["write-last"]\nprunes = ["--delete"]', line, "mytool")
    twin = check(tmp_path, 'files = ["write-last"]', line, "mytool")
    assert given["commands"][0]["deletes"] == [str(tmp_path / "workspace" / "dest")], given
    assert twin["commands"][0]["deletes"] == [], twin


def hook(tmp_path: Path, entry: str, line: str) -> str:
    """The real Claude Code hook (host semantics) on one Bash command: its decision, "allow" when it says none."""
    profile = tmp_path / "mine.toml"
    profile.write_text(f'extends = "coding-agent"\n[interposer.programs.mytool]\n{entry}\n')
    event = json.dumps({"session_id": "s", "hook_event_name": "PreToolUse", "tool_name": "Bash",
                        "tool_input": {"command": line}, "cwd": str(tmp_path)})
    result = subprocess.run([sys.executable, "-m", "jail.cli", "hook", "claude-code", "-p", str(profile), "-w",
                             str(tmp_path)], input=event, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["hookSpecificOutput"]["permissionDecision"] if result.stdout.strip() else "allow"


def test_lists_processes_makes_a_kill_of_its_pids_a_kill_by_name_in_the_hook(tmp_path: Path) -> None:
    """In the jail such a kill reaches only the jail's own processes (confined); on the host it is asked."""
    assert hook(tmp_path, "lists_processes = true", "kill $(mytool)") == "ask"
    assert hook(tmp_path, "", "kill $(mytool)") == "allow"
