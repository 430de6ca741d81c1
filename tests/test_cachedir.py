"""The cache's files decide what later jails may do (a cached seccomp program, a validated profile): both
caches read them through one helper that trusts only a private regular file, bounded, no symlink followed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jail import cachedir


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "shelljail"


def test_a_written_entry_reads_back_private(cache: Path) -> None:
    cachedir.write("profiles", "a.marshal", b"data")
    assert cachedir.read("profiles", "a.marshal", 100) == b"data"
    assert (cache / "profiles" / "a.marshal").stat().st_mode & 0o777 == 0o600
    assert (cache / "profiles").stat().st_mode & 0o777 == 0o700


def test_what_is_not_a_private_regular_file_is_not_trusted(cache: Path, tmp_path: Path) -> None:
    cachedir.write("seccomp", "ok.bpf", b"x" * 8)
    folder = cache / "seccomp"
    (tmp_path / "elsewhere").write_bytes(b"y" * 8)
    os.symlink(tmp_path / "elsewhere", folder / "link.bpf")
    os.mkfifo(folder / "fifo.bpf")  # opened without blocking, then refused as no regular file
    (folder / "shared.bpf").write_bytes(b"z" * 8)
    os.chmod(folder / "shared.bpf", 0o666)
    assert cachedir.read("seccomp", "link.bpf", 100) is None
    assert cachedir.read("seccomp", "fifo.bpf", 100) is None
    assert cachedir.read("seccomp", "shared.bpf", 100) is None
    assert cachedir.read("seccomp", "ok.bpf", 7) is None  # larger than the caller's bound
    assert cachedir.read("seccomp", "ok.bpf", 8) == b"x" * 8


def test_a_symlinked_cache_folder_is_not_followed(cache: Path, tmp_path: Path) -> None:
    (tmp_path / "planted").mkdir()
    (tmp_path / "planted" / "a.marshal").write_bytes(b"planted")
    os.chmod(tmp_path / "planted" / "a.marshal", 0o600)
    cache.mkdir(parents=True)
    os.symlink(tmp_path / "planted", cache / "profiles")
    assert cachedir.read("profiles", "a.marshal", 100) is None
    cachedir.write("profiles", "b.marshal", b"new")  # refused too: nothing lands through the link
    assert not (tmp_path / "planted" / "b.marshal").exists()


def test_a_seccomp_program_is_compiled_again_when_the_code_that_compiles_it_changes(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key holds the compiling code's identity, not only its VERSION: an edit without a bump is seen."""
    from jail.seccomp import filters

    code = tmp_path / "filters.py"
    code.write_text("one")
    monkeypatch.setattr(filters, "__file__", str(code))
    compiled: list[int] = []

    def compile_() -> bytes:
        compiled.append(1)
        return b"\0" * 8

    assert filters.cached(b"policy\n", compile_) == b"\0" * 8
    assert filters.cached(b"policy\n", compile_) == b"\0" * 8 and len(compiled) == 1  # cached
    code.write_text("two")  # the same VERSION, other code
    filters.cached(b"policy\n", compile_)
    assert len(compiled) == 2
    assert len(list((cache / "seccomp").iterdir())) == 1  # the stale program was replaced, not kept beside
