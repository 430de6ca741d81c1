"""Agents installed in the home run in the jail (filesystem.path_targets): the real place of a program
linked from ~/.local/bin, or on the caller's PATH, is bound read-only; a credential location never is.
Real jails with a fake caller home (conftest.Jail sets HOME); every path is under the test's tmp_path."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import Jail

from jail.policy import pathtargets, profile, view

pytestmark = pytest.mark.jail


def _program(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def _link(link: Path, target: Path | str) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


@pytest.fixture
def installed(jail: Jail) -> Jail:
    """A home as the installers leave it: a tool in ~/.local/share linked from ~/.local/bin (relative, as
    pipx and a hand-made link do), a uv-tool venv whose python is a uv-managed interpreter, a bun-style
    folder on the PATH whose programs link into its node_modules, and a link into ~/.ssh."""
    home = jail.home
    _link(home / ".local/bin/tool", "../share/tool/bin/tool")
    _program(home / ".local/share/tool/bin/tool", "#!/bin/sh\necho tool-ran\n")

    interpreter = _program(home / ".local/share/uv/python/cpython-3.11/bin/python3",
                           '#!/bin/sh\nexec /usr/bin/python3 "$@"\n')
    venv = home / ".local/share/uv/tools/venvtool"
    (venv / "pyvenv.cfg").parent.mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(f"home = {interpreter.parent}\n")
    _link(venv / "bin/python", interpreter)
    _program(venv / "bin/venvtool", f"#!{venv}/bin/python\nprint('venvtool-ran')\n")
    _link(home / ".local/bin/venvtool", venv / "bin/venvtool")

    _program(home / ".bun/install/global/node_modules/bunpkg/cli.sh",
             "#!/bin/sh\n. \"$(dirname \"$(readlink -f \"$0\")\")/../helper/lib.sh\"; echo \"bunpkg-ran $LIB\"\n")
    _program(home / ".bun/install/global/node_modules/helper/lib.sh", "LIB=helper-read\n")
    _link(home / ".bun/bin/bunpkg", "../install/global/node_modules/bunpkg/cli.sh")

    _program(home / ".ssh/steal", "#!/bin/sh\necho stolen\n")
    (home / ".ssh/id_ed25519").write_text("PRIVATE KEY canary\n")
    _link(home / ".local/bin/steal", home / ".ssh/steal")
    return jail


def _env(jail: Jail) -> dict[str, str]:
    return jail.env(PATH=f"{jail.home}/.bun/bin:{os.environ.get('PATH', '/usr/bin:/bin')}",
                    XDG_STATE_HOME=str(jail.root / "state"))


def _setup_event(jail: Jail, program: str) -> dict:
    """The session-start event of the run of `program`."""
    for session in (jail.root / "state" / "shelljail" / "sessions").iterdir():
        events = [json.loads(line) for line in (session / "audit.jsonl").read_text().splitlines()]
        start = next(e for e in events if e["event"] == "session-start")
        if start["argv"][0] == program:
            return start
    raise AssertionError(f"no run of {program}")


def test_programs_linked_from_the_path_run_in_the_jail(installed: Jail) -> None:
    jail = installed
    for command, expected in (("tool", "tool-ran"), ("venvtool", "venvtool-ran"),
                              ("bunpkg", "bunpkg-ran helper-read")):
        result = jail.run(command, env=_env(jail))
        assert (result.returncode, result.stdout.strip()) == (0, expected), (command, result.stderr)
    programs = _setup_event(jail, "bunpkg")["programs"]
    added = {a["path"]: a["why"] for a in programs["added"]}
    home = str(jail.home)
    assert added == {
        f"{home}/.local/share/tool": "~/.local/bin/tool runs it",
        f"{home}/.local/share/uv/tools/venvtool": "~/.local/bin/venvtool runs it",
        f"{home}/.local/share/uv/python/cpython-3.11":
            "~/.local/share/uv/tools/venvtool/bin/python runs ~/.local/share/uv/tools/venvtool/bin/venvtool",
        f"{home}/.bun": "~/.bun/bin is on your PATH",
    }
    assert f"{home}/.bun/bin" in programs["path"]


def test_what_the_jail_sees_of_them_is_read_only(installed: Jail) -> None:
    jail = installed
    result = jail.sh("echo x >> ~/.local/share/tool/bin/tool 2>/dev/null || echo refused; "
                     "touch ~/.bun/new 2>/dev/null || echo refused", env=_env(jail))
    assert result.stdout == "refused\nrefused\n", result.stderr
    assert (jail.home / ".local/share/tool/bin/tool").read_text() == "#!/bin/sh\necho tool-ran\n"
    assert not (jail.home / ".bun/new").exists()


def test_a_link_into_a_credential_location_is_not_bound(installed: Jail) -> None:
    jail = installed
    result = jail.run("steal", env=_env(jail))
    assert result.returncode == 127 and "stolen" not in result.stdout
    listed = jail.sh("cat ~/.ssh/id_ed25519 2>/dev/null || echo absent", env=_env(jail))
    assert listed.stdout == "absent\n"
    refused = _setup_event(jail, "steal")["programs"]["refused"]
    assert refused == [{"path": str(jail.home / ".ssh/steal"), "why": "~/.ssh is a credential location"}]


def test_check_sees_the_same_binds_as_the_jail(installed: Jail) -> None:
    """A write into a bound program folder is a write to the real home for both (view.home_binds)."""
    jail = installed
    line = "touch ~/.local/share/tool/bin/planted"
    checked = jail.cli("check", "--json", "-w", str(jail.workspace), line, env=_env(jail))
    assert json.loads(checked.stdout)["decision"] == "deny", checked.stderr
    ran = jail.run("/bin/bash", "-c", line, interposer=True, env=_env(jail))
    assert ran.returncode == 126, ran.stderr
    assert not (jail.home / ".local/share/tool/bin/planted").exists()


def test_the_home_and_the_data_folders_are_never_bound_whole(tmp_path: Path) -> None:
    """A program directly in ~, ~/.local or ~/.config, or on a PATH that names ~ itself, is refused:
    those folders hold everything else; what the profile hides stays hidden."""
    home, workspace = tmp_path / "home", tmp_path / "home/project"
    workspace.mkdir(parents=True)
    _program(home / "at-home", "#!/bin/sh\n")
    _program(home / ".config/tool", "#!/bin/sh\n")
    _program(home / ".secret-tools/bin/hidden-tool", "#!/bin/sh\n")
    _program(home / "project-tools/bin/x", "#!/bin/sh\n")
    for name in ("at-home", ".config/tool", ".secret-tools/bin/hidden-tool"):
        _link(home / ".local/bin" / os.path.basename(name), home / name)
    found = pathtargets.find(f"{home}:{home}/.local/bin", [str(home / ".local/bin")], str(home), str(workspace),
                             [str(home / ".local/bin"), str(workspace)], [str(home / ".secret-tools")])
    assert found.added == ()
    assert {r.path: r.why for r in found.refused} == {
        str(home): "not a folder inside the home",
        str(home / "at-home"): "not a folder inside the home",
        str(home / ".config/tool"): "~/.config holds other programs' data, not one program",
        str(home / ".secret-tools/bin/hidden-tool"): "the profile hides it",
    }


def test_without_path_targets_nothing_is_added(installed: Jail) -> None:
    loaded = profile.load("base")
    assert not loaded.filesystem.path_targets and profile.load("coding-agent").filesystem.path_targets
    resolved = view.resolve(loaded, str(installed.workspace), str(installed.home), "user", f"{installed.home}/.bun/bin")
    assert resolved.programs == pathtargets.Found()


def test_doctor_says_what_is_added_and_refused(installed: Jail) -> None:
    jail = installed
    result = jail.cli("doctor", env={**_env(jail), "COLUMNS": "400"})
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("programs in the home")]
    assert "~/.local/share/tool (~/.local/bin/tool runs it)" in line
    assert "~/.bun (~/.bun/bin is on your PATH)" in line
    assert "Not bound, so not runnable in the jail: ~/.ssh/steal (~/.ssh is a credential location)" in line
