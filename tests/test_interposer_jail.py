"""The interposer in a real jail: the launcher over /bin/sh and /bin/bash, the decision service outside."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Jail, guarded

pytestmark = pytest.mark.jail

LAUNCHERS = {
    "c": Path(__file__).resolve().parents[1] / "interposer" / "shelljail-launcher",
    "python": Path(__file__).resolve().parents[1] / "interposer" / "launcher.py",
}


@pytest.fixture(params=["c", "python"])
def launcher(request: pytest.FixtureRequest) -> str:
    if not LAUNCHERS[request.param].exists():
        pytest.fail(f"{LAUNCHERS[request.param]} is missing: run make setup")
    return request.param


def run(jail: Jail, launcher: str, *command: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = jail.env(SHELLJAIL_PYTHON_LAUNCHER="1" if launcher == "python" else "0")
    return jail.run(*command, options=options, interposer=True, env=env)


def test_a_destructive_command_is_denied_with_126_and_a_reason(jail: Jail, launcher: str) -> None:
    result = run(jail, launcher, "bash", "-c", "rm -rf ~")
    assert result.returncode == 126
    line = result.stderr.strip()
    assert line.startswith("shelljail: denied: deletes ") and "home directory" in line and "instead:" in line
    assert line.count("\n") == 0


def test_denial_reaches_the_agent_as_a_failed_command(jail: Jail, launcher: str) -> None:
    # An agent's tool runs `bash -c CMD` and reads the status and stderr.
    script = ("import subprocess; r = subprocess.run(['/bin/bash', '-c', 'rm -rf /etc'], capture_output=True, "
              "text=True); print(r.returncode); print(r.stderr.strip())")
    result = run(jail, launcher, "/usr/bin/python3", "-c", script)
    assert result.returncode == 0, result.stderr
    status, message = result.stdout.splitlines()[:2]
    assert status == "126" and message.startswith("shelljail: denied: deletes /etc")


def test_ordinary_build_work_runs(jail: Jail, launcher: str) -> None:
    (jail.workspace / "Makefile").write_text(
        "all: build/out.txt\n\nbuild/out.txt: src.txt\n\tmkdir -p build\n\ttr a-z A-Z < src.txt > $@\n\n"
        "clean:\n\trm -rf build\n")
    (jail.workspace / "src.txt").write_text("hello\n")
    script = ("make && cat build/out.txt && make clean && ls && git init -q . && git add -A && "
              "git -c user.email=a@b -c user.name=a commit -qm init && git log --oneline | wc -l && "
              "for i in 1 2 3; do sh -c 'echo loop' >/dev/null; done && echo done")
    result = run(jail, launcher, "bash", "-c", script)
    assert result.returncode == 0, result.stderr
    assert "HELLO" in result.stdout and "done" in result.stdout
    assert not (jail.workspace / "build").exists()
    assert (jail.workspace / ".git").is_dir()


def test_writes_in_the_jails_own_home_run_and_vanish(jail: Jail, launcher: str) -> None:
    result = run(jail, launcher, "bash", "-c", "mkdir -p ~/notes && echo kept > ~/notes/a && cat ~/notes/a")
    assert result.returncode == 0 and result.stdout == "kept\n", result.stderr
    assert not (jail.home / "notes").exists()  # the jail's home was its own
    result = run(jail, launcher, "bash", "-c", "echo 'alias ls=rm' >> ~/.bashrc")
    assert result.returncode == 126 and "writes" in result.stderr and ".bashrc" in result.stderr


def test_the_real_shells_have_no_path_in_the_jail(jail: Jail) -> None:
    result = run(jail, "c", "/usr/bin/python3", "-c",
                 "import os, hashlib; h = lambda p: hashlib.sha256(open(p, 'rb').read()).hexdigest();"
                 "print(h('/usr/bin/bash') == h('/usr/bin/dash') == h('/bin/sh')); print(os.listdir('/run/shelljail'))")
    assert result.returncode == 0, result.stderr
    same, listing = result.stdout.splitlines()
    assert same == "True"  # bash, dash and sh are all the launcher
    assert sorted(eval(listing)) == ["decide.sock", "shells"]  # the socket, and dev/ino of the real shells


def test_a_shell_reading_its_input_is_not_silently_allowed(jail: Jail, launcher: str) -> None:
    result = run(jail, launcher, "/usr/bin/python3", "-c",
                 "import subprocess; r = subprocess.run(['/bin/sh'], input='rm -rf /etc', text=True, "
                 "capture_output=True); print(r.returncode, r.stderr)")
    assert result.stdout.startswith("126 shelljail: denied:")


def test_child_shells_are_judged_when_the_profile_says_so(jail: Jail, launcher: str, tmp_path: Path) -> None:
    (jail.workspace / "cleanup.sh").write_text("#!/bin/sh\nrm -rf /etc\n")
    os.chmod(jail.workspace / "cleanup.sh", 0o755)
    strict = tmp_path / "strict.toml"
    strict.write_text('extends = "coding-agent"\n[interposer]\njudge_child_shells = true\n')
    # By default a script started by an allowed shell is its business (and the jail's: /etc is read-only).
    relaxed = run(jail, launcher, "bash", "-c", "./cleanup.sh; echo status=$?")
    assert "status=1" in relaxed.stdout and "Read-only file system" in relaxed.stderr
    judged = run(jail, launcher, "bash", "-c", "./cleanup.sh; echo status=$?", options=("-p", str(strict)))
    assert "status=126" in judged.stdout
    assert "shelljail: denied: deletes /etc" in judged.stderr


def test_a_script_the_line_writes_is_judged_before_anything_runs(jail: Jail, launcher: str) -> None:
    # Its shell is a child of the allowed line's and would not be judged again: the line's judgment sees it.
    result = run(jail, launcher, "bash", "-c", "printf 'echo ran > marker\\nrm -rf /etc\\n' > wipe.sh; sh wipe.sh")
    assert result.returncode == 126, result.stdout + result.stderr
    assert "shelljail: denied: deletes /etc" in result.stderr
    assert not (jail.workspace / "wipe.sh").exists() and not (jail.workspace / "marker").exists()
    result = run(jail, launcher, "bash", "-c", "printf 'echo ran > marker\\n' > ok.sh; sh ok.sh; cat marker")
    assert result.returncode == 0 and result.stdout == "ran\n", result.stderr


def test_a_makefile_the_line_writes_is_judged_before_make_runs(jail: Jail, launcher: str) -> None:
    # make's recipe shells are children of the allowed line's shell: without this, `make` ran rm unseen.
    line = "printf 'all:\\n\\techo ran > marker\\n\\trm -rf /etc\\n' > Makefile; make"
    result = run(jail, launcher, "bash", "-c", line)
    assert result.returncode == 126, result.stdout + result.stderr
    assert "shelljail: denied: deletes /etc" in result.stderr
    assert not (jail.workspace / "Makefile").exists() and not (jail.workspace / "marker").exists()
    line = "printf 'all:\\n\\techo ran > marker\\n' > Makefile; make -s; cat marker"
    result = run(jail, launcher, "bash", "-c", line)
    assert result.returncode == 0 and result.stdout == "ran\n", result.stderr


def test_a_shell_that_execs_an_agent_does_not_vouch_for_its_shells(jail: Jail, launcher: str) -> None:
    # `sh -c 'exec agent'`: the agent replaces the shell, so its own shells are top-level again.
    tool = jail.workspace / "agent.py"
    tool.write_text("#!/usr/bin/python3\nimport subprocess\n"
                    "r = subprocess.run(['/bin/bash', '-c', 'rm -rf /etc'], capture_output=True, text=True)\n"
                    "print(r.returncode, r.stderr.strip())\n")
    os.chmod(tool, 0o755)
    result = run(jail, launcher, "sh", "-c", "exec ./agent.py")
    assert result.stdout.startswith("126 shelljail: denied: deletes /etc"), result.stdout + result.stderr
    # While a shell that stays the parent does vouch for its children (judge_child_shells = false).
    result = run(jail, launcher, "sh", "-c", "./agent.py; true")
    assert result.stdout.startswith("1 ") and "Read-only file system" in result.stdout


def test_interposer_off_runs_the_real_shell(jail: Jail) -> None:
    result = jail.run("bash", "-c", "echo $BASH_VERSION; ls /run/shelljail 2>&1 || true", interposer=False)
    assert result.returncode == 0 and result.stdout.split()[0][0].isdigit()
    assert "No such file" in result.stdout


@pytest.mark.parametrize("launcher_name", ["c", "python"])
def test_the_launcher_fails_closed_without_the_service(launcher_name: str) -> None:
    path = LAUNCHERS[launcher_name]
    if not path.exists():
        pytest.fail(f"{path} is missing: run make setup")
    argv = [str(path), "-c", "echo should-not-run"] if launcher_name == "c" else \
        [sys.executable, "-I", str(path), "-c", "echo should-not-run"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert result.returncode == 126
    assert "should-not-run" not in result.stdout
    assert result.stderr.startswith("shelljail: denied: the interposer cannot judge this command")


def test_directories_of_killed_supervisors_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jail.supervisor import rundir

    stale = tmp_path / "shelljail-2147483646-0badcafe"  # no such pid
    stale.mkdir()
    (stale / "decide.sock").write_text("")
    alive = tmp_path / f"shelljail-{os.getpid()}-00c0ffee"
    alive.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    made = rundir.private_directory()
    assert not stale.exists() and alive.exists() and os.path.dirname(made) == str(tmp_path)


@pytest.mark.parametrize("line, reason", [
    ('ssh deploy@h "rm -rf $X/*"', "deletes /,"),  # $X unset in the jail's shell: rm -rf /* on the other side
    ("docker exec web rm -rf /data", "deletes /data,"),
    ("pwsh -Command 'Remove-Item -Recurse -Force C:\\Users\\me'", "deletes /mnt/c/Users/me,"),
    ("cmd.exe /c 'rd /s /q C:\\'", "deletes /mnt/c,"),
])
def test_remote_and_windows_commands_are_judged_in_the_jail(jail: Jail, line: str, reason: str) -> None:
    """Issue #23 families 4 and 5: what runs elsewhere is judged by the jail's own shell, before it runs."""
    result = run(jail, "c", "bash", "-c", guarded(line))
    assert result.returncode == 126, (result.stdout, result.stderr)
    assert result.stderr.startswith("shelljail: denied: ") and reason in result.stderr, result.stderr
