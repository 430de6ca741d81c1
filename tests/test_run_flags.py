"""`run --read-only PATH`, `--allow HOST[:PORT]`, `--forward 127.0.0.1:PORT`: one-off additions to the
profile, each the same as the key it mirrors, checked by that key's validator, and in the setup event.
Real jails, a real HTTP server on the host's loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Jail
from model_server import echo_server

pytestmark = pytest.mark.jail


@pytest.fixture
def port() -> Iterator[int]:
    with echo_server() as number:
        yield number


def _profile(jail: Jail) -> str:
    """coding-agent where the name api.test is the host's loopback, which the proxy may reach: only an
    allow-list entry is missing for it."""
    path = jail.root / "flags.toml"
    path.write_text('extends = "coding-agent"\n[network]\nallow_addresses = ["127.0.0.1/32"]\n'
                    '[network.hosts]\n"api.test" = "127.0.0.1"\n')
    return str(path)


FETCH = """\
import json, sys, urllib.error, urllib.request
def get(url, proxy=True, method="GET"):
    opener = urllib.request.build_opener(*([] if proxy else [urllib.request.ProxyHandler({})]))
    try:
        with opener.open(urllib.request.Request(url, method=method), timeout=20) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError as e:
        return type(e).__name__
port = sys.argv[1]
print("allow", get(f"http://api.test:{port}/v1/models"))
print("forward", get(f"http://127.0.0.1:{port}/v1/models", proxy=False))
print("management", get(f"http://127.0.0.1:{port}/api/delete", proxy=False, method="DELETE"))
"""


def _fetch(jail: Jail, port: int, *flags: str) -> list[str]:
    (jail.workspace / "fetch.py").write_text(FETCH)
    result = jail.run("/usr/bin/python3", "fetch.py", str(port), options=("-p", _profile(jail), *flags))
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def _setup_event(jail: Jail) -> dict:
    session = json.loads(jail.cli("sessions", "--json").stdout.splitlines()[0])["session"]
    events = map(json.loads, jail.cli("log", session, "--json").stdout.splitlines())
    return next(e for e in events if e["event"] == "session-start")


def test_without_the_flags_the_host_and_the_port_are_out_of_reach(jail: Jail, port: int) -> None:
    lines = _fetch(jail, port)
    assert lines[0] == "allow 403"  # the proxy: api.test is not on the allow-list
    assert lines[1] in ("forward ConnectionRefusedError", "forward URLError")  # nothing listens on the port
    assert _setup_event(jail)["run_flags"] == []


def test_allow_and_forward_open_them_as_the_profile_keys_would(jail: Jail, port: int) -> None:
    lines = _fetch(jail, port, "--allow", f"api.test:{port}", "--forward", f"127.0.0.1:{port}")
    # The forward is the model forward, as a "127.0.0.1:PORT" entry of network.forward: management refused.
    assert lines == ["allow 200", "forward 200", "management 403"]
    assert _setup_event(jail)["run_flags"] == [f"--allow api.test:{port}", f"--forward 127.0.0.1:{port}"]


def test_the_interposer_judges_with_the_added_host(jail: Jail, port: int) -> None:
    """The interposer denies a line whose destination the network cannot reach; --allow reaches it too."""
    line = f"curl -s -o /dev/null -w '%{{http_code}}' http://api.test:{port}/v1/models"
    options = ("-p", _profile(jail))
    denied = jail.sh(line, options=options, interposer=True)
    assert denied.returncode == 126, denied.stderr
    allowed = jail.sh(line, options=(*options, "--allow", f"api.test:{port}"), interposer=True)
    assert (allowed.returncode, allowed.stdout) == (0, "200"), allowed.stderr


def test_read_only_shows_a_folder_that_cannot_be_written(jail: Jail, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "weights.txt").write_text("canary\n")
    script = f"cat {folder}/weights.txt; echo x > {folder}/new 2>/dev/null || echo refused"
    assert jail.sh(f"ls {folder} 2>/dev/null || echo absent").stdout == "absent\n"
    result = jail.sh(script, options=("--read-only", str(folder)))
    assert result.stdout == "canary\nrefused\n", result.stderr
    assert not (folder / "new").exists()
    assert _setup_event(jail)["run_flags"] == [f"--read-only {folder}"]


@pytest.mark.parametrize(("flags", "problem"), [
    (("--forward", "10.0.0.1:80"), "a forward is a port on the host's loopback"),
    (("--forward", "127.0.0.1:99999"), "a forward is a port on the host's loopback"),
    (("--allow", "https://api.test/"), "is not a destination"),
    (("--allow", "api.*.test"), "a wildcard may only lead"),
    (("--read-only", "/nonexistent/shelljail"), "does not exist"),
    (("--read-only", "/etc/passwd"), "shelljail generates this file"),
    (("-p", "base", "--allow", "api.test"), 'needs network.mode = "proxy", and profile base has "none"'),
    (("-p", "base", "--forward", "127.0.0.1:8080"), 'needs network.mode = "proxy"'),
])
def test_bad_values_are_refused_before_anything_starts(jail: Jail, flags: tuple[str, ...], problem: str) -> None:
    result = jail.run("/bin/true", options=flags)
    assert result.returncode == 2 and problem in result.stderr, result.stderr
    assert "\n" not in result.stderr.strip().splitlines()[-1]
    assert jail.cli("sessions", "--json").stdout == ""  # refused before a session began
