"""Profiles: loading, inheritance, validation with file/line/key, and the `profile` commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Jail

from jail.errors import JailError, ProfileError
from jail.policy import profile, view


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("name", ["base", "coding-agent", "offline", "readonly", "lab"])
def test_builtin_profiles_load(name: str) -> None:
    loaded = profile.load(name)
    assert loaded.name == name
    assert loaded.network.mode == ("none" if name in ("base", "offline") else "proxy")
    assert "/usr" in loaded.filesystem.read_only


def test_default_is_coding_agent() -> None:
    assert profile.DEFAULT_PROFILE == "coding-agent"
    assert profile.load().filesystem.workspace == "read-write"
    assert profile.load("readonly").filesystem.workspace == "read-only"


def test_profiles_are_immutable() -> None:
    loaded = profile.load("base")
    with pytest.raises(AttributeError):
        loaded.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        loaded.environment.set["PATH"] = "/evil"  # type: ignore[index]


def test_extends_appends_lists_merges_tables_and_replaces_values(tmp_path: Path) -> None:
    path = write(tmp_path / "child.toml", """
extends = "base"
description = "child"
[filesystem]
read_only_optional = ["/srv/data"]
[environment.set]
EDITOR = "vi"
[limits]
open_files = 99
""")
    base = profile.load("base")
    child = profile.load(path)
    assert child.filesystem.read_only_optional == (*base.filesystem.read_only_optional, "/srv/data")
    assert child.environment.set["EDITOR"] == "vi"
    assert child.environment.set["PATH"] == base.environment.set["PATH"]
    assert child.limits.open_files == 99
    assert child.limits.processes == base.limits.processes
    assert child.description == "child"


def test_extends_a_relative_file_and_detects_loops(tmp_path: Path) -> None:
    write(tmp_path / "a.toml", 'extends = "b.toml"\n')
    write(tmp_path / "b.toml", 'extends = "./a.toml"\n')
    with pytest.raises(ProfileError, match="loop"):
        profile.load(str(tmp_path / "a.toml"))
    write(tmp_path / "c.toml", 'extends = "coding-agent"\n')
    write(tmp_path / "d.toml", 'extends = "c.toml"\n[limits]\nprocesses = 7\n')
    assert profile.load(str(tmp_path / "d.toml")).limits.processes == 7


@pytest.mark.parametrize("text, key, line, problem", [
    ('extends = "base"\n\n[filesystem]\nread_olny = ["/x"]\n', "filesystem.read_olny", 4, "unknown key"),
    ('[limits]\nprocesses = "many"\n', "limits.processes", 2, "expected a positive integer"),
    ('[limits]\nprocesses = -3\n', "limits.processes", 2, "expected a positive integer"),
    ('[limits]\naddress_space = "lots"\n', "limits.address_space", 2, "expected a size"),
    ('[filesystem]\nread_only = "/usr"\n', "filesystem.read_only", 2, "expected a list of strings"),
    ('[filesystem]\nread_only = ["usr"]\n', "filesystem.read_only", 2, "absolute path"),
    ('[filesystem]\nhidden = ["{workspace}/../x"]\n', "filesystem.hidden", 2, "'..'"),
    ('[filesystem]\ntmpfs = ["{hom}/x"]\n', "filesystem.tmpfs", 2, "unknown placeholder {hom}"),
    ('[filesystem]\nread_only = ["/etc/passwd"]\n', "filesystem.read_only", 2, "generates this file"),
    ('[filesystem]\nworkspace = "rw"\n', "filesystem.workspace", 2, "expected one of"),
    ('[network]\nmode = "open"\n', "network.mode", 2, "expected one of 'none'"),
    ('colour = "red"\n', "colour", 1, "unknown key"),
    ('filesystem = 3\n', "filesystem", 1, "expected a table"),
    ('extends = "nonesuch"\n', "extends", 1, "no built-in profile"),
])
def test_a_broken_profile_names_file_line_key_and_problem(tmp_path: Path, text: str, key: str, line: int,
                                                          problem: str) -> None:
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(ProfileError) as caught:
        profile.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: {key}: "), message
    assert problem in message


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.toml", '[limits]\nprocesses = = 3\n')
    with pytest.raises(ProfileError, match=r"bad.toml:2: not valid TOML"):
        profile.load(path)


def test_an_error_in_a_parent_names_the_parent_file(tmp_path: Path) -> None:
    parent = write(tmp_path / "parent.toml", 'extends = "base"\n[limits]\nopen_files = 0\n')
    child = write(tmp_path / "child.toml", 'extends = "parent.toml"\n')
    with pytest.raises(ProfileError) as caught:
        profile.load(child)
    assert str(caught.value).startswith(f"{parent}:3: limits.open_files")


def test_sizes() -> None:
    assert profile.parse_size("512M") == 512 << 20
    assert profile.parse_size("4GiB") == 4 << 30
    assert profile.parse_size("10k") == 10 << 10
    assert profile.parse_size(1234) == 1234
    for bad in ("0", "-1G", "1X", True, 0, "1.5G"):
        with pytest.raises(ValueError):
            profile.parse_size(bad)


def test_view_resolves_placeholders_symlinks_and_order(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    home = str(tmp_path / "home")
    resolved = view.resolve(profile.load("coding-agent"), str(workspace), home, "me")
    targets = [m.target for m in resolved.mounts]
    depths = [len([p for p in t.split("/") if p]) for t in targets]
    hidden_from = len([m for m in resolved.mounts if not isinstance(m, view.Hide)])
    assert depths[:hidden_from] == sorted(depths[:hidden_from])  # parents before children
    assert view.Tmpfs(home) in resolved.mounts
    assert view.Bind(str(workspace), str(workspace), True) in resolved.mounts
    assert view.Bind("/usr", "/usr", False) in resolved.mounts
    assert any(isinstance(m, view.Symlink) and m.target == "/bin" for m in resolved.mounts) or \
        not Path("/bin").is_symlink()


def test_view_refuses_a_missing_required_path(tmp_path: Path) -> None:
    path = write(tmp_path / "p.toml", 'extends = "base"\n[filesystem]\nread_only = ["/no/such/dir"]\n')
    with pytest.raises(JailError, match="/no/such/dir does not exist"):
        view.resolve(profile.load(path), str(tmp_path), "/nonexistent-home", "me")


def test_cli_profile_list_show_validate(jail: Jail, tmp_path: Path) -> None:
    listed = jail.cli("profile", "list")
    assert listed.returncode == 0
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert {"base", "coding-agent", "offline", "readonly"} <= set(names)
    assert "(default)" in listed.stdout

    shown = jail.cli("profile", "show", "readonly")
    assert shown.returncode == 0
    assert 'workspace = "read-only"' in shown.stdout and '"/usr"' in shown.stdout

    good = write(tmp_path / "good.toml", 'extends = "coding-agent"\ndescription = "mine"\n')
    assert jail.cli("profile", "validate", good).returncode == 0
    bad = write(tmp_path / "bad.toml", '[limits]\ncpu_seconds = "soon"\n')
    refused = jail.cli("profile", "validate", bad)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (f"shelljail: {bad}:2: limits.cpu_seconds: "
                                      "expected a positive integer, got 'soon'")


def test_run_refuses_a_broken_profile_before_starting(jail: Jail, tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.toml", '[filesystem]\nread_only = 5\n')
    marker = jail.workspace / "ran"
    result = jail.cli("run", "-p", bad, "-w", str(jail.workspace), "--", "touch", str(marker))
    assert result.returncode == 125
    assert f"{bad}:2: filesystem.read_only" in result.stderr
    assert not marker.exists()


def test_run_without_a_command_shows_usage(jail: Jail) -> None:
    result = jail.cli("run")
    assert result.returncode == 2
    assert "needs a command" in result.stderr


def test_help_teaches(jail: Jail) -> None:
    result = jail.cli("run", "--help")
    assert result.returncode == 0
    assert "examples:" in result.stdout and "exit status" in result.stdout


def test_doctor_reports_a_working_machine(jail: Jail) -> None:
    result = jail.cli("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    for feature in ("user namespaces", "seccomp", "landlock", "overlayfs", "cgroups", "network namespaces"):
        assert feature in result.stdout
    assert "shelljail run works here." in result.stdout
    # Whether Landlock's denials can be recorded at all: the kernel's audit status, read for real.
    assert "landlock denial log" in result.stdout and "the kernel's audit is" in result.stdout
