"""A clone passes its own tests anywhere: nothing in tests/, bench/ or the Makefile reads outside the checkout.

The corpora and Docker's seccomp profile once lived in a folder beside the checkout (../shared), which a
clone does not have; they are vendored under tests/data with their source and license notes. This test
keeps it so: a path that climbs out of the checkout, or names that old folder, fails it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Patterns of a path leaving the checkout, written so that this file does not match itself.
OUTSIDE = re.compile("|".join((
    r"\.\./shared",  # the old folder beside the checkout
    r"/work/",  # the folder this project was first developed in
    r"""["']shared["']""",  # a path built as parent / "shared"
    r"\bROOT\.parent\b",  # above the checkout's root (tests/ and bench/ name the root ROOT)
    r"\.parents\[[2-9]\]",  # from tests/x.py or bench/x.py, parents[2] is above the checkout
)))
SUFFIXES = {".py", ".sh", ".toml", ".cfg", ".ini", ".mk"}


def scanned(root: Path) -> list[Path]:
    """The files the tests, benches and make targets run: code and configuration, not vendored data."""
    files = [root / "Makefile"] if (root / "Makefile").is_file() else []
    for folder in ("tests", "bench"):
        for path in sorted((root / folder).rglob("*")):
            if path.suffix in SUFFIXES and path.is_file() and (root / "tests" / "data") not in path.parents:
                files.append(path)
    return files


def outside_references(root: Path) -> list[str]:
    """`path:line: text` for every line of a scanned file that points outside the checkout."""
    found = []
    for path in scanned(root):
        if path.resolve() == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    return found


def test_tests_benches_and_makefile_read_nothing_outside_the_checkout() -> None:
    assert outside_references(ROOT) == []


@pytest.mark.parametrize("line", [
    'CORPORA = ROOT.parent / "shared" / "corpora"',
    'DOCKER = Path(__file__).resolve().parents[2] / "data" / "docker-default.json"',
    "\tpython bench/x.py --corpora ../shared/corpora",
    'open("/work/shared/data/seccomp/docker-default.json")',
])
def test_each_way_out_of_the_checkout_is_caught(tmp_path: Path, line: str) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(f"{line}\n")
    assert outside_references(tmp_path) == [f"tests/test_x.py:1: {line.strip()}"]


def test_vendored_data_is_there_with_its_notes() -> None:
    """What the readers expect, with source and license beside it (the GTFOBins-derived file apart)."""
    data = ROOT / "tests" / "data"
    for name in ("corpora/SOURCE.md", "corpora/dcg_corpus.tsv", "corpora/nl2bash_unique.txt",
                 "corpora/redcode_exec_bash.tsv", "corpora/secbash_harmless.txt",
                 "corpora/tldr_common_linux_unique.txt", "corpora/gtfobins/secbash_gtfobins_risky.tsv",
                 "corpora/gtfobins/LICENSE", "corpora/gtfobins/NOTICE.md", "seccomp/docker-default.json",
                 "seccomp/LICENSE", "seccomp/NOTICE.md"):
        assert (data / name).is_file(), name
    assert len(list((data / "corpora" / "redcode_bash").glob("*.sh"))) == 600
    assert "GNU GENERAL PUBLIC LICENSE" in (data / "corpora" / "gtfobins" / "LICENSE").read_text()
    assert "Apache License" in (data / "seccomp" / "LICENSE").read_text()
