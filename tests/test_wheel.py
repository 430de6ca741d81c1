"""The wheel (#25): built from the checkout by hatch_build.py, installed with its dependencies into a fresh
venv, it gives a `shelljail` whose jail judges shells through the compiled launcher; built where no C
compiler exists, it falls back to the Python launcher, and doctor says so."""

import os
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest
from conftest import PROJECT, guarded

pytestmark = pytest.mark.jail
PYPI = "https://pypi.org/simple/tomli-w/"


def build(into: Path, **env: str) -> Path:
    """The wheel pip builds from the checkout (hatchling from the project's venv, not fetched)."""
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(into), str(PROJECT)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    (wheel,) = into.glob("shelljail-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install(wheel, tmp_path_factory.mktemp("venv"))


def install(wheel: Path, venv: Path) -> Path:
    """A fresh venv with the wheel and its dependencies from PyPI (the pip cache makes it seconds)."""
    try:
        urllib.request.urlopen(PYPI, timeout=20).close()
    except OSError as exc:
        pytest.skip(f"PyPI is unreachable ({exc}): the wheel's dependencies cannot be installed")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                           str(wheel)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return venv


def shelljail(venv: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed command, with nothing of the checkout on its path."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    return subprocess.run([str(venv / "bin" / "shelljail"), *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=tmp_path, stdin=subprocess.DEVNULL)


def test_the_wheel_carries_the_compiled_launcher_and_the_profiles(wheel: Path) -> None:
    assert "-linux_" in wheel.name  # a binary inside: not py3-none-any
    with zipfile.ZipFile(wheel) as archive:
        entries = {entry.filename: entry for entry in archive.infolist()}
    launcher = entries["interposer/shelljail-launcher"]
    assert launcher.external_attr >> 16 & 0o111, "the launcher is not executable once installed"
    assert {"jail/profiles/coding-agent.toml", "jail/profiles/base.toml", "interposer/launcher.py"} <= set(entries)


def test_the_installed_wheel_judges_shells_through_the_compiled_launcher(installed: Path, tmp_path: Path) -> None:
    site = next(installed.glob("lib/python3*/site-packages"))
    launcher = site / "interposer" / "shelljail-launcher"
    origin = subprocess.run([str(installed / "bin" / "python"), "-c", "import jail; print(jail.__file__)"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert origin.stdout.strip() == str(site / "jail" / "__init__.py"), origin  # the wheel's, not the checkout's

    doctor = shelljail(installed, tmp_path, "doctor")
    assert f"compiled: {launcher}" in doctor.stdout, doctor.stdout

    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (tmp_path / "home" / "canary").mkdir(parents=True)
    denied = shelljail(installed, tmp_path, "run", "-w", str(workspace), "--", "/bin/bash", "-c",
                       guarded("rm -rf ~"))
    assert denied.returncode == 126, (denied.stdout, denied.stderr)
    assert "shelljail: denied: deletes" in denied.stderr
    assert (tmp_path / "home" / "canary").is_dir()
    # The jail's /bin/bash is the installed launcher (its size), not bash.
    size = shelljail(installed, tmp_path, "run", "-w", str(workspace), "--", "/bin/bash", "-c",
                     guarded("wc -c < /bin/bash"))
    assert size.stdout.split() == [str(launcher.stat().st_size)], (size.stdout, size.stderr)
    assert launcher.stat().st_size != Path("/bin/bash").stat().st_size


def test_without_a_compiler_the_wheel_falls_back_to_the_python_launcher(tmp_path: Path) -> None:
    wheel = build(tmp_path / "wheel", CC="/nonexistent/cc")
    assert wheel.name.endswith("-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "interposer/shelljail-launcher" not in names and "interposer/launcher.py" in names

    venv = install(wheel, tmp_path / "venv")
    doctor = shelljail(venv, tmp_path, "doctor")
    assert "the Python fallback" in doctor.stdout and "no compiled launcher was built" in doctor.stdout
    assert "install a C compiler" in doctor.stdout
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    denied = shelljail(venv, tmp_path, "run", "-w", str(workspace), "--", "/bin/bash", "-c", guarded("rm -rf ~"))
    assert denied.returncode == 126, (denied.stdout, denied.stderr)
    assert "shelljail: denied: deletes" in denied.stderr
