"""`make setup`'s link of `shelljail` onto PATH (the `link` target, with a PREFIX of the test's own):
it never silently takes the command over from another clone, and says what it replaced."""

import subprocess
from pathlib import Path

import pytest
from conftest import PROJECT

OURS = PROJECT / ".venv" / "bin" / "shelljail"


def link(prefix: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-s", "-C", str(PROJECT), "link", f"PREFIX={prefix}", *options],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def prefix(tmp_path: Path) -> Path:
    (tmp_path / "bin").mkdir()
    return tmp_path


def test_no_command_yet_is_linked(prefix: Path) -> None:
    result = link(prefix)
    assert result.returncode == 0, result.stderr
    assert (prefix / "bin" / "shelljail").readlink() == OURS
    assert result.stdout == f"shelljail is ready: {prefix}/bin/shelljail (try: shelljail doctor)\n"


def test_another_clone_that_works_is_left_alone_and_named(prefix: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-clone" / ".venv" / "bin" / "shelljail"
    other.parent.mkdir(parents=True)
    other.write_text("#!/bin/sh\n")
    (prefix / "bin" / "shelljail").symlink_to(other)
    result = link(prefix)
    assert result.returncode == 0, result.stderr
    assert (prefix / "bin" / "shelljail").readlink() == other
    assert f"runs another clone's shelljail ({other}): left alone" in result.stdout
    assert "LINK=force" in result.stdout

    taken = link(prefix, "LINK=force")
    assert (prefix / "bin" / "shelljail").readlink() == OURS
    assert f"pointed to {other}: now to {OURS}" in taken.stdout


def test_a_link_to_a_deleted_clone_is_replaced_and_said(prefix: Path, tmp_path: Path) -> None:
    gone = tmp_path / "deleted-clone" / ".venv" / "bin" / "shelljail"
    (prefix / "bin" / "shelljail").symlink_to(gone)
    result = link(prefix)
    assert (prefix / "bin" / "shelljail").readlink() == OURS
    assert f"pointed to {gone}, which no longer exists: now to {OURS}" in result.stdout


def test_a_file_that_is_not_a_link_is_never_overwritten(prefix: Path) -> None:
    installed = prefix / "bin" / "shelljail"
    installed.write_text("#!/bin/sh\necho another install\n")
    result = link(prefix, "LINK=force")
    assert installed.read_text() == "#!/bin/sh\necho another install\n" and not installed.is_symlink()
    assert "is a file, not a link to a clone: left alone" in result.stdout


def test_unlink_removes_only_this_clones_link(prefix: Path, tmp_path: Path) -> None:
    link(prefix)
    subprocess.run(["make", "-s", "-C", str(PROJECT), "unlink", f"PREFIX={prefix}"], check=True, timeout=60)
    assert not (prefix / "bin" / "shelljail").is_symlink()
    other = tmp_path / "elsewhere"
    (prefix / "bin" / "shelljail").symlink_to(other)
    subprocess.run(["make", "-s", "-C", str(PROJECT), "unlink", f"PREFIX={prefix}"], check=True, timeout=60)
    assert (prefix / "bin" / "shelljail").readlink() == other
