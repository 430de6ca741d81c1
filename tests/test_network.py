"""The network: deny by default, allow-listed destinations through the proxy, forwards. Real sockets on loopback."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SHELLJAIL, Jail

pytestmark = pytest.mark.jail

BIG = b"x" * (4 << 20)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        body = BIG if self.path == "/big" else json.dumps({"path": self.path, "host": self.headers["Host"]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, *_args: object) -> None:
        pass


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


class _ThreadingHTTP(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512


class _ThreadingTCP(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512


@pytest.fixture
def servers() -> Iterator[dict[str, int]]:
    """An HTTP server and a TCP echo server (a stand-in for TLS: CONNECT carries any bytes) on 127.0.0.1."""
    http_server = _ThreadingHTTP(("127.0.0.1", 0), _Handler)
    echo = _ThreadingTCP(("127.0.0.1", 0), _Echo)
    for server in (http_server, echo):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"http": http_server.server_address[1], "echo": echo.server_address[1]}
    for server in (http_server, echo):
        server.shutdown()
        server.server_close()


def _profile(jail: Jail, servers: dict[str, int], extra: str = "", private: bool = True,
             interposer: bool = False) -> str:
    """The proxy's test profile. Without the interposer by default: it denies a literal URL the proxy would
    refuse before the proxy sees it, and these tests are about the proxy, the boundary that holds alone."""
    http, echo = servers["http"], servers["echo"]
    path = jail.root / "net.toml"
    path.write_text(f"""extends = "coding-agent"
[interposer]
enabled = {"true" if interposer else "false"}
[network]
mode = "proxy"
allow = ["pkg.test:{http}", "tls.test:{echo}", "denied.test:{http}", "*.wild.test:{http}", "inside.test:{http}"]
deny = ["denied.test"]
allow_addresses = [{'"127.0.0.1/32"' if private else ""}]
{extra}
[network.hosts]
"pkg.test" = "127.0.0.1"
"tls.test" = "127.0.0.1"
"denied.test" = "127.0.0.1"
"a.wild.test" = "127.0.0.1"
"other.test" = "127.0.0.1"
"inside.test" = "10.0.0.1"
""")
    return str(path)


def _python(jail: Jail, profile: str, script: str, timeout: float = 60) -> tuple[int, list[str], str]:
    (jail.workspace / "probe.py").write_text(script)
    result = jail.cli("run", "-p", profile, "-w", str(jail.workspace), "--ask", "deny", "--",
                      "/usr/bin/python3", "probe.py", timeout=timeout)
    return result.returncode, result.stdout.splitlines(), result.stderr


def _network_events(jail: Jail, kind: str = "network") -> list[dict]:
    session = json.loads(jail.cli("sessions", "--json").stdout.splitlines()[0])["session"]
    return [e for e in map(json.loads, jail.cli("log", session, "--json").stdout.splitlines())
            if e["event"] == kind]


FETCH = """\
import json, os, urllib.request, urllib.error
def get(url):
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, type(e).__name__
for name in ("pkg.test", "a.wild.test", "denied.test", "other.test", "inside.test"):
    status, body = get(f"http://{name}:{PORT}/x")
    print(name, status, body.strip().replace(chr(10), " "))
print("proxy", os.environ["HTTPS_PROXY"], os.environ["NO_PROXY"])
"""


def test_allowed_names_pass_and_the_rest_get_a_403_naming_the_rule(jail: Jail, servers: dict[str, int]) -> None:
    code, lines, err = _python(jail, _profile(jail, servers), FETCH.replace("{PORT}", str(servers["http"])))
    assert code == 0, err
    rows = {line.split()[0]: line for line in lines}
    assert rows["pkg.test"].startswith("pkg.test 200 ") and '"host": "pkg.test:' in rows["pkg.test"]
    assert rows["a.wild.test"].startswith("a.wild.test 200 ")  # *.wild.test
    assert rows["denied.test"].startswith("denied.test 403 ") and "network.deny 'denied.test'" in rows["denied.test"]
    assert rows["other.test"].startswith("other.test 403 ") and "network.allow" in rows["other.test"]
    assert rows["inside.test"].startswith("inside.test 403 ") and "private" in rows["inside.test"]  # 10.0.0.1
    assert rows["proxy"] == "proxy http://127.0.0.1:3128 localhost,127.0.0.1,::1"
    events = _network_events(jail)
    assert [(e["host"], e["decision"]) for e in events] == [
        ("pkg.test", "allowed"), ("a.wild.test", "allowed"), ("denied.test", "refused"), ("other.test", "refused"),
        ("inside.test", "refused")]
    assert events[0]["address"] == "127.0.0.1"
    closed = _network_events(jail, "network-closed")
    assert sorted(e["host"] for e in closed) == ["a.wild.test", "pkg.test"] and all(e["bytes_down"] > 0 for e in closed)


def test_a_name_that_resolves_to_loopback_is_refused_unless_allowed(jail: Jail, servers: dict[str, int]) -> None:
    profile = _profile(jail, servers, private=False)
    code, lines, err = _python(jail, profile, FETCH.replace("{PORT}", str(servers["http"])))
    assert code == 0, err
    assert lines[0].startswith("pkg.test 403 ") and "127.0.0.1 is a loopback, private or special address" in lines[0]
    assert "network.allow_addresses" in lines[0]


def test_curl_through_the_proxy_and_connect_tunnels(jail: Jail, servers: dict[str, int]) -> None:
    if not shutil.which("curl"):
        pytest.skip("curl is not installed on this machine")
    profile = _profile(jail, servers)
    http = servers["http"]
    script = (f"curl -sS -m 20 http://pkg.test:{http}/plain; echo; curl -sS -m 20 -p http://pkg.test:{http}/tunnel; "
              f"echo; curl -sS -m 20 http://other.test:{http}/; curl -sS -m 5 --noproxy '*' "
              f"http://127.0.0.1:{http}/direct; echo direct=$?")
    result = jail.cli("run", "-p", profile, "-w", str(jail.workspace), "--ask", "deny", "--", "/bin/sh", "-c", script)
    lines = result.stdout.splitlines()
    assert json.loads(lines[0])["path"] == "/plain" and json.loads(lines[1])["path"] == "/tunnel"
    assert lines[2].startswith("shelljail: refused other.test:") and "network.allow" in lines[2]
    assert f"run with --allow other.test:{http} " in lines[2]  # the run flag that lets it through
    assert lines[3] == "direct=7"  # the server on the host's loopback: not reachable without the proxy



def test_the_interposer_denies_what_the_network_cannot_reach_before_it_runs(jail: Jail,
                                                                            servers: dict[str, int]) -> None:
    """The same profile with the interposer: an allowed name still passes both; a name the proxy would refuse,
    and a client that would go around the proxy, are denied with the profile key before anything runs."""
    profile = _profile(jail, servers, interposer=True)
    http = servers["http"]

    def run(line: str) -> object:
        return jail.cli("run", "-p", profile, "-w", str(jail.workspace), "--ask", "deny", "--", "/bin/sh", "-c", line)

    allowed = run(f"curl -sS -m 20 http://pkg.test:{http}/plain")
    assert allowed.returncode == 0 and json.loads(allowed.stdout)["path"] == "/plain", allowed.stderr
    refused = run(f"touch before; curl -sS -m 20 http://other.test:{http}/; touch after")
    assert refused.returncode == 126
    assert f"other.test:{http} is not in the profile's network.allow" in refused.stderr
    assert "to network.allow in the profile" in refused.stderr  # what to change
    assert f"run with --allow other.test:{http} " in refused.stderr  # ... or the run flag, which does let it through
    assert not (jail.workspace / "before").exists() and not (jail.workspace / "after").exists()
    assert not [e for e in _network_events(jail) if e.get("host") == "other.test"]  # never reached the proxy
    direct = run(f"nc -w 2 10.0.0.1 {http} </dev/null")
    assert direct.returncode == 126 and "the jail's only way out is its HTTP proxy" in direct.stderr
    decisions = _network_events(jail, "decision")
    assert decisions[-1]["rule"] == "network-direct" and decisions[-1]["decision"] == "deny"
    flagged = jail.cli("run", "-p", profile, "-w", str(jail.workspace), "--ask", "deny", "--allow",
                       f"other.test:{http}", "--", "/bin/sh", "-c", f"curl -sS -m 20 http://other.test:{http}/x")
    assert flagged.returncode == 0 and json.loads(flagged.stdout)["path"] == "/x", flagged.stderr

CONCURRENT = """\
import socket, threading
PROXY = ("127.0.0.1", 3128)
ok = []
def tunnel(i):
    s = socket.create_connection(PROXY, timeout=30)
    s.sendall(b"CONNECT tls.test:{ECHO} HTTP/1.1\\r\\nHost: tls.test\\r\\n\\r\\n")
    head = b""
    while b"\\r\\n\\r\\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 200"), head
    payload = b"%d " % i * 1000
    s.sendall(payload)
    got = b""
    while len(got) < len(payload):
        got += s.recv(65536)
    s.close()
    ok.append(got == payload)
threads = [threading.Thread(target=tunnel, args=(i,)) for i in range(200)]
for t in threads: t.start()
for t in threads: t.join()
print("tunnels", sum(ok))
# A client that goes away in the middle of a 4 MB download.
s = socket.create_connection(PROXY, timeout=30)
s.sendall(b"GET http://pkg.test:{HTTP}/big HTTP/1.1\\r\\nHost: pkg.test\\r\\n\\r\\n")
s.recv(1000)
s.close()
# The proxy still serves.
import urllib.request
print("after", urllib.request.urlopen("http://pkg.test:{HTTP}/again", timeout=20).status)
"""


def test_200_concurrent_tunnels_and_a_client_that_leaves_mid_transfer(jail: Jail, servers: dict[str, int]) -> None:
    script = CONCURRENT.replace("{ECHO}", str(servers["echo"])).replace("{HTTP}", str(servers["http"]))
    code, lines, err = _python(jail, _profile(jail, servers), script, timeout=120)
    assert code == 0, err
    assert lines == ["tunnels 200", "after 200"]
    events = _network_events(jail)
    assert sum(1 for e in events if e["host"] == "tls.test" and e["decision"] == "allowed") == 200
    closed = _network_events(jail, "network-closed")
    assert sum(1 for e in closed if e["host"] == "tls.test") == 200
    assert any(e["host"] == "pkg.test" and 0 < e["bytes_down"] < len(BIG) for e in closed)  # the one that left


def test_a_forward_reaches_a_local_model_and_nothing_else(jail: Jail, servers: dict[str, int]) -> None:
    http = servers["http"]
    profile = _profile(jail, servers, extra=f'forward = ["127.0.0.1:{http}"]')
    script = f"""\
import json, socket, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({{}}))  # no proxy: the forward itself
print(json.load(opener.open("http://127.0.0.1:{http}/api/tags", timeout=20))["path"])
s = socket.socket()
print("other", s.connect_ex(("127.0.0.1", {servers["echo"]})) != 0)
"""
    code, lines, err = _python(jail, profile, script)
    assert code == 0, err
    assert lines == ["/api/tags", "other True"]
    assert any(e["decision"] == "forwarded" and e["port"] == http for e in _network_events(jail))


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:["):-1])
    return inodes


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def test_the_jails_listeners_are_held_by_the_supervisor_alone(jail: Jail, servers: dict[str, int]) -> None:
    """Pid 1 hands its listeners on the jail's loopback to the supervisor and keeps no copy: no process in the
    jail can accept the proxy's or a forward's connections, nor hand the supervisor listeners of its own
    (the bridge socket takes one), and connections still reach the proxy."""
    http = servers["http"]
    profile = _profile(jail, servers, extra=f'forward = ["127.0.0.1:{http}"]')
    (jail.workspace / "probe.py").write_text(f"""\
import socket, sys, urllib.request
print(urllib.request.urlopen("http://pkg.test:{http}/first", timeout=20).status, flush=True)
bridge = socket.socket(socket.AF_UNIX)
try:
    bridge.connect("/run/shelljail-net/proxy.sock")  # to pass a listener of its own
    print("bridge connected", flush=True)
except OSError as e:
    print("bridge", type(e).__name__, flush=True)
sys.stdin.readline()
""")
    run = subprocess.Popen([*SHELLJAIL, "run", "-p", profile, "-w", str(jail.workspace), "--", "/usr/bin/python3",
                            "probe.py"], env=jail.env(), cwd=jail.workspace, stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert run.stdout.readline().strip() == "200", run.stderr.read() if run.poll() is not None else ""
        assert run.stdout.readline().strip() == "bridge ConnectionRefusedError"  # pid 1 passed its one listener
        host_net = os.readlink("/proc/self/ns/net")
        inside = [pid for pid in _descendants(run.pid) if os.readlink(f"/proc/{pid}/ns/net") != host_net]
        assert inside, "no process of the jail was found"
        listening = {}
        for line in open(f"/proc/{inside[-1]}/net/tcp").read().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN, in the jail's network namespace
                listening[fields[9]] = int(fields[1].rpartition(":")[2], 16)
        assert {3128, http} <= set(listening.values())  # the proxy and the forward (and the profile's own)
        assert set(listening) <= _socket_inodes(run.pid)  # the supervisor holds them: the check can see them
        for pid in inside:
            assert not set(listening) & _socket_inodes(pid), f"jail process {pid} holds a listener"
    finally:
        run.communicate("\n", timeout=30)
    assert run.returncode == 0


def test_mode_none_has_no_proxy_and_dns_fails_at_once(jail: Jail) -> None:
    script = """\
import os, socket
print("proxy" if "HTTP_PROXY" in os.environ else "no proxy")
try:
    socket.getaddrinfo("pypi.org", 443)
    print("resolved")
except OSError as e:
    print("dns fails:", type(e).__name__)
"""
    code, lines, err = _python(jail, "offline", script, timeout=30)  # a 30-second resolver hang fails the test
    assert code == 0, err
    assert lines[0] == "no proxy" and lines[1].startswith("dns fails:")


@pytest.mark.parametrize("text, problem", [
    ('allow = ["https://pypi.org"]', "not a destination"),
    ('allow = ["py*.org"]', "a wildcard may only lead"),
    ('forward = ["10.0.0.1:80"]', "a forward is a port on the host's loopback"),
    ('hosts = { "a.test" = "nope" }', "not an IP address"),
    ('mode = "open"', "network"),
])
def test_bad_network_settings_are_refused(jail: Jail, tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f'extends = "coding-agent"\n[network]\n{text}\n')
    result = jail.cli("profile", "validate", str(path))
    assert result.returncode == 1 and problem in result.stderr, result.stderr


class _OneName:
    """network settings for a proxy served in the test's own process (its threads, real sockets)."""
    allow, deny, hosts, allow_addresses, forward = ["pkg.test"], [], {}, [], []


def test_a_client_that_stalls_in_its_request_head_is_dropped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The head has one deadline, however the bytes trickle in: a jailed client cannot hold the proxy's threads."""
    import socket
    import time

    from jail.supervisor import proxy

    monkeypatch.setattr(proxy, "HEAD_SECONDS", 0.5)
    server = proxy.Proxy(_OneName, str(tmp_path), None)
    try:
        for trickle in (False, True):
            client, served = socket.socketpair()
            done = threading.Event()
            threading.Thread(target=lambda s=served, d=done: (server._guarded(server._serve_proxy, s), d.set())).start()
            started = time.monotonic()
            client.sendall(b"GET http://pkg.test/ HTTP/1.1\r\n")
            while trickle and not done.is_set() and time.monotonic() - started < 5:
                client.sendall(b"X")  # one byte at a time, never the blank line that ends the head
                time.sleep(0.05)
            assert done.wait(5), "the proxy still waits for the head"
            assert time.monotonic() - started < 3
            client.settimeout(5)
            assert client.recv(100) == b""  # closed, nothing relayed
            client.close()
    finally:
        server.close()


def test_connections_beyond_the_cap_are_closed_at_once_and_logged(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    """Each connection holds a supervisor thread: past MAX_CONNECTIONS at once, a new one is closed and logged."""
    import socket
    import time

    from jail.supervisor import proxy

    class Log:
        def __init__(self) -> None:
            self.events: list[dict] = []

        def event(self, kind: str, **fields: object) -> None:
            self.events.append({"event": kind, **fields})

    monkeypatch.setattr(proxy, "MAX_CONNECTIONS", 2)
    log = Log()
    server = proxy.Proxy(_OneName, str(tmp_path), log)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    server.listeners.append(listener)
    threading.Thread(target=server._serve, args=(listener, server._serve_proxy), daemon=True).start()
    clients = [socket.create_connection(listener.getsockname(), timeout=5) for _ in range(3)]
    try:
        assert clients[2].recv(100) == b""  # the third: closed at once
        for held in clients[:2]:  # the first two wait for their request heads
            held.settimeout(0.3)
            with pytest.raises(TimeoutError):
                held.recv(100)
        assert [(e["decision"], e["port"], e["reason"]) for e in log.events] == [
            ("refused", listener.getsockname()[1], "more than 2 connections at once from the jail")]
        clients[0].close()  # a slot frees: the next is served again
        time.sleep(0.2)
        fourth = socket.create_connection(listener.getsockname(), timeout=5)
        fourth.sendall(b"GET http://other.test/ HTTP/1.1\r\n\r\n")
        assert fourth.recv(100).startswith(b"HTTP/1.1 403 ")
        fourth.close()
    finally:
        for client in clients:
            client.close()
        server.close()
