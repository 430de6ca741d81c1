"""Helpers to run the real `shelljail` CLI, as root or as an ordinary user."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SHELLJAIL = [sys.executable, "-m", "jail.cli"]
PROJECT = Path(__file__).resolve().parent.parent
# coding-agent without the timeline: the profile for tests that need truncate or chmod -R to ask a person.
ASKS = str(PROJECT / "tests" / "data" / "profiles" / "asks.toml")
JUDGE_WORKSPACE, JUDGE_HOME = "/home/user/project", "/home/user"
NOBODY = 65534
NAMESPACES = ("user", "mnt", "pid")


def judge_policy(workspace: str = JUDGE_WORKSPACE, home: str = JUDGE_HOME, home_binds: tuple[str, ...] | None = None,
                 network: object = None) -> object:
    """coding-agent's interposer policy for pure judge tests, for user `user` with `home`. home_binds None
    and network None: a hook's view (the real home, no network check); else the jail's."""
    from interposer.judge import Policy
    from jail.policy import environment, profile

    loaded = profile.load("coding-agent")
    env = environment.build(loaded.environment, {}, {"workspace": workspace, "home": home, "user": "user"})
    return Policy(loaded.interposer, workspace, home, env, home_binds, network)


# The judge's two semantics in pure tests: the jail's (its private home, with the home's binds) and a hook's
# (the real home, no jail): judged(line, "jail") / judged(line, "hook").
SEMANTICS: dict[str, tuple[str, ...] | None] = {"jail": (JUDGE_HOME,), "hook": None}


def judged(line: str, semantics: str) -> Any:
    """coding-agent's decision for `line` run in JUDGE_WORKSPACE, in the jail's or a hook's semantics."""
    from interposer.judge import decide

    return decide(line, JUDGE_WORKSPACE, judge_policy(home_binds=SEMANTICS[semantics]))  # type: ignore[arg-type]


def host_namespaces() -> dict[str, str]:
    return {name: os.readlink(f"/proc/self/ns/{name}") for name in NAMESPACES}


def guarded(script: str) -> str:
    """`script` preceded by a check that it runs in other user, mount and pid
    namespaces than the host's: an escape test must never touch the host."""
    checks = " && ".join(
        f'[ "$(readlink /proc/self/ns/{name})" != "{ident}" ]' for name, ident in host_namespaces().items()
    )
    # not `if ! { ...; }`: tree-sitter-bash misreads `! {` (the interposer then reads the line with bashlex)
    return f'if {{ {checks}; }}; then :; else echo "REFUSED: not jailed" >&2; exit 99; fi\n{script}'


class Jail:
    """Runs commands through `shelljail run` with a fake caller home and workspace. `install`: the copy of
    the project an ordinary user runs (see readable_install), None for root, who runs the checkout."""

    def __init__(self, root: Path, user: int | None = None, install: Path | None = None) -> None:
        self.root = root
        self.user = user
        self.project = install or PROJECT
        self.command = [str(install / VENV_PYTHON), "-m", "jail.cli"] if install else SHELLJAIL
        self.home = root / "home"
        self.workspace = root / "workspace"
        for path in (self.home, self.workspace):
            path.mkdir(parents=True, exist_ok=True)
        if user is not None:
            for path in (root, self.home, self.workspace):
                os.chown(path, user, user)

    def env(self, **extra: str) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home), "LANG": "C.UTF-8"}
        env["PYTHONPATH"] = str(self.project)
        env.update(extra)
        return env

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *args], capture_output=True, text=True, timeout=timeout,
            env=env or self.env(), cwd=cwd or self.workspace, stdin=subprocess.DEVNULL,
            user=self.user, group=self.user, extra_groups=[] if self.user is not None else None,
        )

    def run(self, *command: str, options: tuple[str, ...] = (), interposer: bool = False,
            **kwargs) -> subprocess.CompletedProcess[str]:
        """`shelljail run`; the interposer is off unless asked for: jail tests attack the kernel layer,
        which must hold whatever runs inside."""
        switch = ("--interposer", "on", "--ask", "deny") if interposer else ("--interposer", "off")
        return self.cli("run", "-w", str(self.workspace), *switch, *options, "--", *command, **kwargs)

    def sh(self, script: str, options: tuple[str, ...] = (), **kwargs) -> subprocess.CompletedProcess[str]:
        """Run a shell script inside the jail, behind the namespace guard."""
        return self.run("/bin/sh", "-c", guarded(script), options=options, **kwargs)


@pytest.fixture
def jail(tmp_path: Path) -> Jail:
    return Jail(tmp_path)


@pytest.fixture(params=["root", "nobody"])
def any_jail(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Jail]:
    """The same test as root and as an ordinary user."""
    if request.param == "root":
        yield Jail(tmp_path)
    else:
        yield from _nobody_jail(request.getfixturevalue("readable_install"))


@pytest.fixture
def nobody_jail(readable_install: Path) -> Iterator[Jail]:
    yield from _nobody_jail(readable_install)


def _nobody_jail(install: Path) -> Iterator[Jail]:
    """A jail run by an ordinary user (nobody), in a directory it owns."""
    root = Path(tempfile.mkdtemp(prefix="shelljail-nobody-"))
    os.chmod(root, 0o755)
    try:
        yield Jail(root, user=NOBODY, install=install)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# What an ordinary user's shelljail is made of: the packages, the profiles and the venv (sys.prefix).
INSTALLED = ("jail", "interposer", "agent", "profiles")
# Not needed to run shelljail (test and packaging tools, the checkout's own editable-install path).
NOT_INSTALLED = shutil.ignore_patterns("playwright", "pip", "setuptools", "_editable_impl_*.pth")
VENV_PYTHON = Path("venv/bin/python")


@pytest.fixture(scope="session")
def readable_install(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The project's code and venv where any user can read them, as an installed shelljail is: the
    ordinary-user tests run it from here, so that a checkout in a private folder (mode 700, as `~/src`
    under root's home is) passes them too. Files are hard links where other users can already read them,
    copies made readable where not."""
    if sys.prefix == sys.base_prefix:
        pytest.fail("the tests run in the project's venv (make setup; make test): the ordinary-user tests "
                    "copy it where nobody can read it")
    install = Path(tempfile.mkdtemp(prefix="shelljail-install-"))
    try:
        for name in INSTALLED:
            shutil.copytree(PROJECT / name, install / name, symlinks=True, copy_function=_readable_copy)
        shutil.copytree(sys.prefix, install / "venv", symlinks=True, copy_function=_readable_copy,
                        ignore=NOT_INSTALLED)
        for directory, _, _ in os.walk(install):
            os.chmod(directory, 0o755)
        yield install
    finally:
        shutil.rmtree(install, ignore_errors=True)


def _readable_copy(source: str, target: str) -> None:
    """A hard link if every user may read `source` (fast, and the same inode, as the launcher check
    wants nothing else), else a copy readable by all, executable by all if it was by its owner."""
    mode = os.lstat(source).st_mode
    if mode & 0o004 and (not mode & 0o100 or mode & 0o001):
        try:
            os.link(source, target, follow_symlinks=False)
            return
        except OSError:  # another filesystem: copy
            pass
    shutil.copy2(source, target)
    os.chmod(target, 0o755 if mode & 0o100 else 0o644)


# Rates measured by the corpus tests, printed at the end of the run.
CORPUS_REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest's hook signature
    if CORPUS_REPORT:
        terminalreporter.section("shelljail corpus rates")
        for line in CORPUS_REPORT:
            terminalreporter.write_line(line)


def sleepers(seconds: str) -> list[int]:
    """Host pids running exactly `sleep SECONDS`: a distinctive duration marks a test's own processes."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if f.read() == f"sleep\0{seconds}\0".encode():
                        found.append(int(entry))
            except OSError:
                pass
    return found


def accept_in_background(server, accepted: list) -> None:  # noqa: ANN001
    """Record any connection the jail manages to make; quiet once the test closes the server."""
    import threading

    def accept() -> None:
        try:
            accepted.append(server.accept()[0])
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()


def answer_on_a_terminal(argv: list[str], env: dict[str, str], question: bytes, answer: bytes,
                         timeout: float = 60) -> tuple[int, bytes]:
    """Run argv with a pty as its controlling terminal, answer `question` when it shows; (status, all output)."""
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, env)
    seen = b""
    deadline = time.monotonic() + timeout
    while question not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 1)[0]:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    if question in seen:
        os.write(fd, answer)
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), seen


JAIL_FIXTURES = frozenset({"jail", "any_jail", "nobody_jail"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that takes a jail fixture starts real jails: marked `jail`, so `make test-fast` (-m "not jail")
    runs the pure tests alone. Tests that start jails otherwise carry the mark themselves."""
    for item in items:
        if JAIL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.jail)
