"""The parsed-profile cache (jail/policy/profile.py) trusts a file only while its identity holds.

A cached profile is keyed by every file's device, inode, size, mtime and ctime: a rewrite that keeps the
size and puts the old mtime back, or another file renamed over the old name, is read and validated again.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jail.policy import profile


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "shelljail" / "profiles"


def stat_mode(path: Path) -> int:
    return path.stat().st_mode


def _write(path: Path, processes: int) -> None:
    path.write_text(f'extends = "base"\n[limits]\nprocesses = {processes}\n')


def test_a_load_is_cached_and_an_unchanged_file_gives_the_same_profile(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "p.toml"
    _write(path, 64)
    first = profile.load(str(path))
    (stored,) = list(cache.iterdir())
    assert stored.name.endswith(".marshal") and stat_mode(cache) & 0o077 == 0
    assert profile.load(str(path)) == first


def test_a_rewrite_with_the_old_size_and_mtime_is_read_again(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "p.toml"
    _write(path, 64)
    assert profile.load(str(path)).limits.processes == 64
    before = path.stat()
    _write(path, 65)  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the old mtime back: only ctime tells
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
    assert profile.load(str(path)).limits.processes == 65


def test_another_file_renamed_over_it_is_read_again(tmp_path: Path, cache: Path) -> None:
    path, other = tmp_path / "p.toml", tmp_path / "q.toml"
    _write(path, 64)
    _write(other, 65)
    stamp = path.stat()
    os.utime(other, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert profile.load(str(path)).limits.processes == 64
    os.rename(other, path)  # a new inode, same size and mtime
    assert profile.load(str(path)).limits.processes == 65
