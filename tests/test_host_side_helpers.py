"""The helpers every host-side reader of jail-made data goes through: real files, FIFOs, symlinks."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from jail.display import shown, shown_lines
from jail.kernel import beneath


@pytest.fixture
def root(tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    yield tmp_path, fd
    os.close(fd)


def test_symlinks_are_never_followed_beneath(root, tmp_path_factory):
    path, fd = root
    outside = tmp_path_factory.mktemp("canary")
    (outside / "secret").write_text("host")
    (path / "d").symlink_to(outside)
    (path / "f").symlink_to(outside / "secret")
    for name in ("d/secret", "f"):
        with pytest.raises(OSError):
            beneath.read_regular(fd, name, 100)
    with pytest.raises(OSError):
        beneath.open_directory(fd, "d")
    with pytest.raises(OSError):
        beneath.read_regular(fd, "../" + os.path.basename(outside) + "/secret", 100)
    with pytest.raises(OSError):
        os.close(beneath.make_directories(fd, "d/new"))
    assert os.listdir(outside) == ["secret"]


def test_a_fifo_is_refused_without_blocking(root):
    path, fd = root
    os.mkfifo(path / "pipe")
    result: list[BaseException] = []

    def read() -> None:
        try:
            beneath.read_regular(fd, "pipe", 100)
        except OSError as exc:
            result.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "opening a FIFO blocked"
    assert isinstance(result[0], beneath.NotRegular) and result[0].kind == "fifo"


def test_reads_are_bounded(root):
    path, fd = root
    (path / "big").write_bytes(b"x" * 1000)
    assert beneath.read_regular(fd, "big", 1000) == b"x" * 1000
    with pytest.raises(beneath.TooLarge):
        beneath.read_regular(fd, "big", 999)


def test_in_jail_root_resolves_absolute_symlinks_in_that_root(root, tmp_path_factory):
    path, fd = root
    outside = tmp_path_factory.mktemp("hostside")
    (outside / "f").write_text("host")
    (path / "etc").mkdir()
    (path / "etc" / "f").write_text("jail")
    (path / "link").symlink_to(str(outside / "f"))  # absolute: names a host file
    (path / "good").symlink_to("/etc/f")
    assert beneath.read_regular(fd, "good", 10, beneath.IN_JAIL_ROOT) == b"jail"
    with pytest.raises(FileNotFoundError):
        beneath.read_regular(fd, "link", 10, beneath.IN_JAIL_ROOT)


def test_make_directories_and_safe_mode(root):
    path, fd = root
    os.close(beneath.make_directories(fd, "a/b/c"))
    assert (path / "a/b/c").is_dir()
    assert beneath.safe_mode(0o106755) == 0o755
    assert beneath.safe_mode(0o1777) == 0o1777


def test_copy_keeps_holes(root):
    path, fd = root
    with open(path / "sparse", "wb") as f:
        f.seek(32 << 20)
        f.write(b"end")
    source = beneath.open_regular(fd, "sparse")
    destination = os.open(path / "copy", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        assert beneath.copy_sparse(source, destination) < 1 << 20
    finally:
        os.close(source)
        os.close(destination)
    copied = os.stat(path / "copy")
    assert copied.st_size == (32 << 20) + 3 and copied.st_blocks * 512 < 1 << 20
    assert (path / "copy").read_bytes()[-3:] == b"end"


def test_write_copy_makes_a_new_file_without_setid_bits(root, tmp_path_factory):
    path, fd = root
    (path / "setuid").write_bytes(b"program")
    os.chmod(path / "setuid", 0o6755)
    os.utime(path / "setuid", ns=(1_000_000_000, 2_000_000_000))
    canary = tmp_path_factory.mktemp("canary") / "keep"
    canary.write_text("host")
    os.symlink(canary, path / "planted")
    source = beneath.open_regular(fd, "setuid")
    try:
        made = beneath.write_copy(source, fd, "copy", os.stat(path / "setuid"))
        for existing in ("planted", "setuid"):  # a symlink is never written through, a file never replaced
            with pytest.raises(FileExistsError):
                beneath.write_copy(source, fd, existing, os.stat(path / "setuid"))
    finally:
        os.close(source)
    assert stat.S_IMODE(made.st_mode) == 0o755 and made.st_mtime_ns == 2_000_000_000
    assert (path / "copy").read_bytes() == b"program" and canary.read_text() == "host"


def test_kind_names_file_types(root):
    path, fd = root
    os.mkfifo(path / "p")
    assert beneath.kind(os.lstat(path / "p").st_mode) == "fifo"
    assert beneath.kind(stat.S_IFSOCK) == "socket"


@pytest.mark.parametrize("raw, visible", [
    ("rm -rf x\x1b[2K\rls", "rm -rf x\\x1b[2K\\x0dls"),
    ("approve \u202etxt.exe", "approve \\u202etxt.exe"),
    ("hidden\x1b[8mtext", "hidden\\x1b[8mtext"),
    ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
    ("bad byte \udcff", "bad byte \\xff"),
    ("c1 \x9b2J del \x7f", "c1 \\x9b2J del \\x7f"),
    ("tag \U000e0041", "tag \\U000e0041"),
    ("plain café 中文 ✓", "plain café 中文 ✓"),
])
def test_shown_escapes_controls_and_invisibles(raw, visible):
    assert shown(raw) == visible


def test_shown_lines_keeps_newlines_only():
    assert shown_lines("a\nb\x1b") == "a\nb\\x1b"
    assert shown(b"\xffname") == "\\xffname"
    assert shown("a\nb") == "a\\x0ab"
