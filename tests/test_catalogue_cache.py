"""The catalogue's cache (interposer/programs/catalogue.py: load): a changed file is read again, a bad cache
file is ignored; the cache lives in the test's own XDG_CACHE_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from interposer.programs.catalogue import load


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "shelljail" / "catalogue"


def test_a_changed_catalogue_is_read_again(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "catalogue.toml"
    path.write_text('[programs.one]\nvalues = ["-n"]\n')
    assert set(load(str(path))) == {"one"}
    [stored] = list(cache.iterdir())
    assert stored.stat().st_mode & 0o777 == 0o600
    assert set(load(str(path))) == {"one"}  # from the cache
    path.write_text('[programs.one]\nvalues = ["-n"]\n[programs.two]\nwraps = true\n')
    loaded = load(str(path))
    assert set(loaded) == {"one", "two"} and loaded["two"].wraps


def test_a_bad_or_foreign_cache_file_is_not_believed(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "catalogue.toml"
    path.write_text('[programs.one]\nvalues = ["-n"]\n')
    load(str(path))
    [stored] = list(cache.iterdir())
    stored.write_bytes(b"\x00garbage")
    assert set(load(str(path))) == {"one"}
    os.chmod(stored, 0o666)  # writable by others: not read (cachedir.read), the file is parsed again
    assert set(load(str(path))) == {"one"}
