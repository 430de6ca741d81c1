"""The model forward is HTTP, not bytes: inference and reading pass, management and every trick are refused.

A scripted Ollama-like server on the host's 127.0.0.1 (a random port) records every request it
gets; a real jail forwards that port (a test profile extending coding-agent); programs in the
jail (behind the namespace guard) call it with curl and with raw sockets. Streams are checked
chunk by chunk: the server sends a chunk and waits until the client has said it saw it (a
marker request) before it sends the next, so a forward that buffered the response would starve
it (no timing is asserted).
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import Jail

pytestmark = pytest.mark.jail

CHUNKS = 3
MARKER_SECONDS = 20  # how long the server waits for the client to have seen a chunk (a buffered stream starves)
ALLOWED = {("GET", "/api/tags"), ("POST", "/api/chat"), ("POST", "/v1/chat/completions"), ("GET", "/api/version")}


class Ollama:
    """Answers like Ollama: /api/chat (NDJSON), /v1/chat/completions (SSE), /api/tags, and management."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.markers: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.http.daemon_threads = True
        self.port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def marker(self, name: str) -> threading.Event:
        with self._lock:
            return self.markers.setdefault(name, threading.Event())

    def saw(self, method: str, path: str) -> bool:
        return any(m == method and p.partition("?")[0] == path for m, p in self.requests)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = b""
                    while size := int(self.rfile.readline().strip() or b"0", 16):
                        body += self.rfile.read(size)
                        self.rfile.readline()
                    self.rfile.readline()
                    return body
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self) -> None:
                body = self._body()
                server.requests.append((self.command, self.path))
                path, _, query = self.path.partition("?")
                if path == "/api/tags":
                    if query.startswith("seen="):
                        server.marker(query[len("seen="):]).set()
                    return self._json({"models": [{"name": "scripted:latest"}]})
                if path == "/api/chat" and json.loads(body or b"{}").get("stream"):
                    return self._stream("application/x-ndjson", "chat", lambda i: json.dumps(
                        {"message": {"role": "assistant", "content": f"part{i}"}, "done": i == CHUNKS - 1}) + "\n")
                if path == "/v1/chat/completions":
                    return self._stream("text/event-stream", "sse", lambda i: "data: " + json.dumps(
                        {"choices": [{"delta": {"content": f"part{i}"}}]}) + "\n\n")
                self._json({"path": path, "method": self.command})  # anything else: "done", as Ollama would

            def _json(self, data: dict) -> None:
                payload = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _stream(self, kind: str, name: str, chunk: object) -> None:
                """A chunk, then wait for the client's marker that it saw it, then the next."""
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i in range(CHUNKS):
                    data = chunk(i).encode()  # type: ignore[operator]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    if not server.marker(f"{name}-{i}").wait(MARKER_SECONDS):
                        data = b"STARVED: the client never saw the chunk before\n"
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                        break
                self.wfile.write(b"0\r\n\r\n")

            do_GET = do_POST = do_DELETE = do_HEAD = do_PUT = _handle  # noqa: N815 - the standard library's names

            def log_message(self, *_args: object) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def ollama() -> Iterator[Ollama]:
    server = Ollama()
    yield server
    server.close()


def _profile(jail: Jail, port: int, forward: str = "") -> Path:
    """coding-agent with the scripted server forwarded: by its address alone (the default protocol), or a table."""
    path = jail.root / "model.toml"
    path.write_text(f'extends = "coding-agent"\n[network]\nforward = [{forward or json.dumps(f"127.0.0.1:{port}")}]\n')
    return path


def _events(jail: Jail, port: int) -> list[dict]:
    session = json.loads(jail.cli("sessions", "--json").stdout.splitlines()[0])["session"]
    return [e for e in map(json.loads, jail.cli("log", session, "--json").stdout.splitlines())
            if e["event"] in ("network", "network-closed", "network-forward") and e.get("port") == port]


STREAMS = """\
import http.client, json, sys
PORT = int(sys.argv[1])

def mark(name):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    c.request("GET", f"/api/tags?seen={name}")
    c.getresponse().read()
    c.close()

def stream(path, name):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    c.request("POST", path, body=json.dumps({"model": "scripted", "stream": True}),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    got = []
    for line in r:  # a line as soon as it is there
        if line.strip():
            got.append(line.decode().strip())
            mark(f"{name}-{len(got) - 1}")
    print(json.dumps([path, r.status, r.getheader("Content-Type"), got]))

stream("/api/chat", "chat")
stream("/v1/chat/completions", "sse")
"""


def test_streams_arrive_chunk_by_chunk_and_reading_passes(jail: Jail, ollama: Ollama) -> None:
    """NDJSON and SSE are relayed as they come (each chunk is seen before the server sends the next);
    /api/tags and /api/version pass; each connection is one `network` event, its requests counted."""
    if not shutil.which("curl"):
        pytest.skip("curl is not installed on this machine")
    (jail.workspace / "streams.py").write_text(STREAMS)
    port = ollama.port
    result = jail.sh(f"python3 streams.py {port} && curl -sS -m 20 http://127.0.0.1:{port}/api/tags && echo && "
                     f"curl -sS -m 20 -o /dev/null -w '%{{http_code}}\\n' http://127.0.0.1:{port}/api/version",
                     options=("-p", str(_profile(jail, port))), timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    chat, sse = json.loads(lines[0]), json.loads(lines[1])
    assert chat[:3] == ["/api/chat", 200, "application/x-ndjson"]
    assert [json.loads(line)["message"]["content"] for line in chat[3]] == ["part0", "part1", "part2"]
    assert sse[:3] == ["/v1/chat/completions", 200, "text/event-stream"]
    assert [json.loads(line[len("data: "):])["choices"][0]["delta"]["content"] for line in sse[3]] == [
        "part0", "part1", "part2"]
    assert json.loads(lines[2]) == {"models": [{"name": "scripted:latest"}]}
    assert lines[3] == "200"
    events = _events(jail, port)
    assert not [e for e in events if e.get("decision") == "refused"]
    # The first request to each endpoint is an event; all are counted in the run's summary.
    assert sorted((e["method"], e["path"]) for e in events if e["event"] == "network") == [
        ("GET", "/api/tags"), ("GET", "/api/version"), ("POST", "/api/chat"), ("POST", "/v1/chat/completions")]
    [summary] = [e for e in events if e["event"] == "network-forward"]
    assert summary["requests"] == {"POST /api/chat": 1, "GET /api/tags": 2 * CHUNKS + 1, "POST /v1/chat/completions": 1,
                                   "GET /api/version": 1}
    assert summary["connections"] == 2 * CHUNKS + 4 and summary["refused"] == 0
    assert summary["bytes_down"] > 0 and summary["bytes_up"] > 0


ATTACKS = """\
import json, re, socket, sys
PORT = int(sys.argv[1])
H = f"Host: 127.0.0.1:{PORT}\\r\\n"

def raw(label, data, then=None):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=30)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
            if then is not None and out.endswith(b"}"):  # the first answer is in: the next on the same connection
                try:
                    s.sendall(then)
                except OSError:
                    out += b" SEND-FAILED"
                then = None
    except OSError as e:
        out += f" {type(e).__name__}".encode()
    codes = [c.decode() for c in re.findall(rb"HTTP/1\\.[01] (\\d{3})", out)]
    keys = sorted(set(re.findall(r"(allow_management|allow_paths|protocol)", out.decode("latin-1"))))
    print(json.dumps([label, codes, keys]))

body = b'{"model": "scripted"}'
post = lambda path: f"POST {path} HTTP/1.1\\r\\n{H}Content-Length: {len(body)}\\r\\n\\r\\n".encode() + body
get = lambda path, method="GET": f"{method} {path} HTTP/1.1\\r\\n{H}\\r\\n".encode()
raw("delete", get("/api/delete", "DELETE"))
raw("pull", post("/api/pull"))
raw("push", post("/api/push"))
raw("create", post("/api/create"))
raw("copy", post("/api/copy"))
raw("blobs", post("/api/blobs/sha256:0123"))
raw("blobs-head", get("/api/blobs/sha256:0123", "HEAD"))
raw("percent", get("/api/%64elete", "DELETE"))
raw("percent-slash", get("/api%2fdelete", "DELETE"))
raw("dot-dot", get("/api/chat/../delete", "DELETE"))
raw("dot", get("/api/./delete", "DELETE"))
raw("double-slash", get("//api/delete", "DELETE"))
raw("trailing-slash", get("/api/delete/", "DELETE"))
raw("backslash", get("/api\\\\delete", "DELETE"))
raw("case", get("/API/DELETE", "DELETE"))
raw("lower-method", get("/api/delete", "delete"))
raw("get-delete", get("/api/delete"))
raw("unknown", get("/api/anything"))
raw("absolute", get(f"http://127.0.0.1:{PORT}/api/delete", "DELETE"))
raw("control", get("/api/tags\\x01", "GET"))
raw("bare-lf", f"DELETE /api/delete HTTP/1.1\\n{H}\\r\\n".encode())
raw("smuggled", get("/api/tags") + get("/api/delete", "DELETE"))
raw("keep-alive", get("/api/tags"), then=get("/api/delete", "DELETE"))
raw("chunk-hides", f"POST /api/chat HTTP/1.1\\r\\n{H}Transfer-Encoding: chunked\\r\\n\\r\\n".encode()
    + b'11\\r\\n{"stream": false}\\r\\n0\\r\\n\\r\\n' + post("/api/pull"))
raw("cl-te", f"POST /api/chat HTTP/1.1\\r\\n{H}Content-Length: 4\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n".encode()
    + b"0\\r\\n\\r\\n" + get("/api/delete", "DELETE"))
raw("te-twice", f"POST /api/chat HTTP/1.1\\r\\n{H}Transfer-Encoding: chunked\\r\\n"
    f"Transfer-Encoding: identity\\r\\n\\r\\n".encode() + b"0\\r\\n\\r\\n")
raw("te-odd", f"POST /api/chat HTTP/1.1\\r\\n{H}Transfer-Encoding: xchunked\\r\\n\\r\\n".encode() + b"0\\r\\n\\r\\n")
raw("te-space", f"POST /api/chat HTTP/1.1\\r\\n{H}Transfer-Encoding : chunked\\r\\n\\r\\n".encode() + b"0\\r\\n\\r\\n")
raw("cl-twice", f"POST /api/chat HTTP/1.1\\r\\n{H}Content-Length: 2\\r\\nContent-Length: 2\\r\\n\\r\\n{{}}".encode())
raw("cl-list", f"POST /api/chat HTTP/1.1\\r\\n{H}Content-Length: 2, 2\\r\\n\\r\\n{{}}".encode())
raw("obs-fold", f"POST /api/chat HTTP/1.1\\r\\n{H}X-A: b\\r\\n Transfer-Encoding: chunked\\r\\n"
    f"Content-Length: 2\\r\\n\\r\\n{{}}".encode())
raw("chunk-extension", f"POST /api/chat HTTP/1.1\\r\\n{H}Transfer-Encoding: chunked\\r\\n\\r\\n".encode()
    + b"2;x=1\\r\\n{}\\r\\n0\\r\\n\\r\\n" + get("/api/delete", "DELETE"))
raw("blank-value", f"GET /api/tags HTTP/1.1\\r\\n{H}X-A: ".encode() + b" \\t" * 30000 + b"x\\x01\\r\\n\\r\\n")
raw("too-large", f"POST /api/chat HTTP/1.1\\r\\n{H}Content-Length: {(64 << 20) + 1}\\r\\n\\r\\n".encode())
raw("h2c", f"GET /api/tags HTTP/1.1\\r\\n{H}Connection: Upgrade, HTTP2-Settings\\r\\nUpgrade: h2c\\r\\n"
    f"HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\\r\\n\\r\\n".encode())
"""

# label: (the status codes the client gets, the profile keys its answers name)
EXPECTED = {
    "delete": (["403"], ["allow_management"]), "pull": (["403"], ["allow_management"]),
    "push": (["403"], ["allow_management"]), "create": (["403"], ["allow_management"]),
    "copy": (["403"], ["allow_management"]), "blobs": (["403"], ["allow_management"]),
    "blobs-head": (["403"], ["allow_management"]),
    "percent": (["403"], ["protocol"]), "percent-slash": (["403"], ["protocol"]), "dot-dot": (["403"], ["protocol"]),
    "dot": (["403"], ["protocol"]), "double-slash": (["403"], ["protocol"]),
    "trailing-slash": (["403"], ["protocol"]), "backslash": (["403"], ["protocol"]),
    "case": (["403"], ["allow_paths"]), "lower-method": (["403"], ["allow_paths"]),
    "get-delete": (["403"], ["allow_paths"]), "unknown": (["403"], ["allow_paths"]),
    "absolute": (["400"], ["protocol"]), "control": (["400"], ["protocol"]), "bare-lf": (["400"], ["protocol"]),
    "smuggled": (["200", "403"], ["allow_management"]),
    "chunk-hides": (["200", "403"], ["allow_management"]),
    "cl-te": (["400"], ["protocol"]), "te-twice": (["400"], ["protocol"]), "te-odd": (["400"], ["protocol"]),
    "te-space": (["400"], ["protocol"]), "cl-twice": (["400"], ["protocol"]), "cl-list": (["400"], ["protocol"]),
    "obs-fold": (["400"], ["protocol"]), "chunk-extension": ([], []),  # cut off mid-body: the server answers nothing
    "h2c": (["400"], ["protocol"]), "too-large": (["413"], []),
    "blank-value": (["400"], ["protocol"]),  # 60 KB of blanks and a control: once 28 s in a regular expression
}


def test_management_and_every_trick_are_refused_before_the_server_sees_them(jail: Jail, ollama: Ollama) -> None:
    """curl -X DELETE, /api/pull and the rest of management, encoded and dot-segment paths, method games,
    a second request smuggled behind an allowed one or hidden after a chunked body, ambiguous framing:
    a 403 (400 for what is not plain HTTP) naming the key, an audit event, and the server never sees it."""
    if not shutil.which("curl"):
        pytest.skip("curl is not installed on this machine")
    (jail.workspace / "attacks.py").write_text(ATTACKS)
    port = ollama.port
    url = f"http://127.0.0.1:{port}"
    answer = "-o /tmp/answer -w '%{http_code} '; cat /tmp/answer"
    script = (f"curl -sS -m 20 -X DELETE {url}/api/delete -d '{{\"model\": \"scripted\"}}' {answer}; "
              f"curl -sS -m 20 {url}/api/pull -d '{{\"model\": \"huge\"}}' {answer}; python3 attacks.py {port}")
    result = jail.sh(script, options=("-p", str(_profile(jail, port))), timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for line, path in zip(lines[:2], ("/api/delete", "/api/pull"), strict=True):
        code, _, body = line.partition(" ")
        assert code == "403", line
        assert "allow_management = true" in json.loads(body)["error"] and path in body
    got = {label: (codes, keys) for label, codes, keys in map(json.loads, lines[2:])}
    # After an answer with nothing pipelined behind it the connection ends; a request sent after the answer
    # was read finds it closed, or (had it come in first) is read and refused: never forwarded either way.
    later = got.pop("keep-alive")
    assert later in ((["200"], []), (["200", "403"], ["allow_management"])), later
    assert got == EXPECTED
    assert set(ollama.requests) <= {("GET", "/api/tags"), ("POST", "/api/chat")}, ollama.requests
    assert not ollama.saw("DELETE", "/api/delete") and not ollama.saw("POST", "/api/pull")
    refused = [e for e in _events(jail, port) if e["event"] == "network" and e["decision"] == "refused"]
    shown = {(e["method"], e["path"]) for e in refused}
    assert {("DELETE", "/api/delete"), ("POST", "/api/pull"), ("DELETE", "/api/%64elete"),
            ("DELETE", "/api/chat/../delete"), ("DELETE", "//api/delete"), ("delete", "/api/delete"),
            ("POST", "/api/blobs/sha256:0123"), ("GET", "/api/tags\\x01")} <= shown
    assert sum(e["key"] == "allow_management" for e in refused) >= 2 + 7 + 2  # curl's two, seven, two smuggled
    answered = sum(1 for codes, _ in EXPECTED.values() if set(codes) & {"400", "403", "413"})
    assert len(refused) == 2 + answered + 1 + len(later[0]) - 1  # curl's, the answered, the cut-off chunked body
    [summary] = [e for e in _events(jail, port) if e["event"] == "network-forward"]
    assert summary["refused"] == len(refused) and set(summary["requests"]) == {"GET /api/tags", "POST /api/chat"}

def test_allow_management_and_allow_paths_let_their_requests_through(jail: Jail, ollama: Ollama) -> None:
    """The keys the 403s name do what they say: with allow_management = true the delete reaches the server,
    with allow_paths the endpoint named; what neither names is still refused."""
    if not shutil.which("curl"):
        pytest.skip("curl is not installed on this machine")
    port = ollama.port
    profile = _profile(jail, port, f'{{ address = "127.0.0.1:{port}", allow_management = true, '
                                   f'allow_paths = ["POST /v1/responses", "GET /api/extra/*"] }}')
    url = f"http://127.0.0.1:{port}"
    code = "-o /dev/null -w '%{http_code}\\n'"
    result = jail.sh(f"curl -sS -m 20 -X DELETE {url}/api/delete -d '{{\"model\": \"scripted\"}}' -o /tmp/answer "
                     f"-w '%{{http_code}} '; cat /tmp/answer; echo; "
                     f"curl -sS -m 20 {code} {url}/v1/responses -d '{{}}'; curl -sS -m 20 {code} {url}/api/extra/one; "
                     f"curl -sS -m 20 {code} {url}/api/extra/one/two; curl -sS -m 20 {code} {url}/api/unknown",
                     options=("-p", str(profile)), timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    answer, _, body = lines[0].partition(" ")
    assert answer == "200" and json.loads(body) == {"path": "/api/delete", "method": "DELETE"}
    assert lines[1:] == ["200", "200", "403", "403"]  # "*" is one segment; the rest is still checked
    assert ollama.saw("DELETE", "/api/delete") and ollama.saw("POST", "/v1/responses")
    assert ollama.saw("GET", "/api/extra/one") and not ollama.saw("GET", "/api/unknown")


def test_protocol_tcp_relays_bytes_unchecked(jail: Jail, ollama: Ollama) -> None:
    """`protocol = "tcp"` is the raw relay of before, when a profile asks for it by name."""
    if not shutil.which("curl"):
        pytest.skip("curl is not installed on this machine")
    port = ollama.port
    profile = _profile(jail, port, f'{{ address = "127.0.0.1:{port}", protocol = "tcp" }}')
    result = jail.sh(f"curl -sS -m 20 --path-as-is -X DELETE -o /dev/null -w '%{{http_code}}\\n' "
                     f"http://127.0.0.1:{port}/api/%64elete", options=("-p", str(profile)), timeout=60)
    assert result.returncode == 0 and result.stdout == "200\n", result.stderr
    assert ollama.saw("DELETE", "/api/%64elete")


@pytest.mark.parametrize("forward, problem", [
    ('{ address = "127.0.0.1:11434", protocol = "http" }', "expected one of 'ollama', 'tcp'"),
    ('{ address = "127.0.0.1:11434", allow_management = ["/api/remove"] }', "allow_management is true, false or"),
    ('{ address = "127.0.0.1:11434", allow_management = "yes" }', "allow_management is true, false or"),
    ('{ address = "127.0.0.1:11434", allow_paths = ["POST /api/%64elete"] }', 'is not "METHOD /path"'),
    ('{ address = "127.0.0.1:11434", allow_paths = ["POST /api/../delete"] }', 'is not "METHOD /path"'),
    ('{ address = "127.0.0.1:11434", allow_paths = ["delete /api/delete"] }', 'is not "METHOD /path"'),
    ('{ address = "127.0.0.1:11434", protocol = "tcp", allow_management = true }', 'protocol "tcp" relays bytes'),
    ('{ address = "127.0.0.1:11434", allow = true }', "unknown key 'allow'"),
    ('{ protocol = "ollama" }', "needs address"),
    ('{ address = "10.0.0.1:11434" }', "a forward is a port on the host's loopback"),
])
def test_bad_forward_settings_are_refused_with_the_file_and_line(jail: Jail, tmp_path: Path, forward: str,
                                                                  problem: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f'extends = "coding-agent"\n[network]\nmode = "proxy"\nforward = [{forward}]\n')
    result = jail.cli("profile", "validate", str(path))
    assert result.returncode == 1, result.stdout
    assert f"{path}:4: network.forward: " in result.stderr and problem in result.stderr, result.stderr


def test_the_default_and_a_childs_forward_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """coding-agent's forward is filtered; an address alone is filtered too; a child's table for the same
    address replaces its parent's (and survives the profile cache)."""
    from jail.policy import profile

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    assert [f.protocol for f in profile.load("coding-agent").network.forward_settings] == ["ollama"]
    child = tmp_path / "child.toml"
    child.write_text('extends = "coding-agent"\n[network]\nforward = ["127.0.0.1:8080", '
                     '{ address = "127.0.0.1:11434", allow_management = ["/api/pull"] }]\n')
    before = set((tmp_path / "cache").rglob("*.marshal"))  # coding-agent's
    for cached in (False, True):  # read, then from the cache
        assert bool(set((tmp_path / "cache").rglob("*.marshal")) - before) == cached
        network = profile.load(str(child)).network
        assert network.forward == ("127.0.0.1:8080", "127.0.0.1:11434")
        assert [(f.address, f.protocol, f.allow_management) for f in network.forward_settings] == [
            ("127.0.0.1:8080", "ollama", ()), ("127.0.0.1:11434", "ollama", ("/api/pull",))]


class _Log:
    def __init__(self) -> None:
        self.events: list[dict] = []

    def event(self, kind: str, **fields: object) -> None:
        self.events.append({"event": kind, **fields})


@pytest.mark.parametrize("stall", ["head", "body", "chunk"])
def test_a_client_that_stalls_is_dropped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ollama: Ollama,
                                         stall: str) -> None:
    """A request head has one deadline and its body another, however the bytes trickle: a jailed client
    cannot hold the supervisor's threads (nor the model server's connection) by never finishing a request.
    In-process: the forward's own handler on a real socket pair, the scripted server on loopback."""
    import socket
    import time

    from jail.policy.profile import Forward
    from jail.supervisor import modelforward, proxy

    monkeypatch.setattr(proxy, "HEAD_SECONDS", 0.5)
    monkeypatch.setattr(modelforward, "BODY_SECONDS", 0.5)
    address = f"127.0.0.1:{ollama.port}"

    class Net:
        allow, deny, hosts, allow_addresses, forward = [], [], {}, [], [address]
        forward_settings, forward_paths = (Forward(address),), ()

    log = _Log()
    server = proxy.Proxy(Net, str(tmp_path), log)
    rules = modelforward.ModelEndpoints(Forward(address), Net)
    client, served = socket.socketpair()
    done = threading.Event()
    threading.Thread(target=lambda: (server._guarded(
        lambda c: server._serve_model(c, "127.0.0.1", ollama.port, rules), served), done.set()), daemon=True).start()
    try:
        sent = {"head": b"POST /api/chat HTTP/1.1\r\nHost: x\r\n",
                "body": b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{",
                "chunk": b"POST /api/chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n{"}[stall]
        client.sendall(sent)
        started = time.monotonic()
        while not done.is_set() and time.monotonic() - started < 5:
            try:
                client.sendall(b" ")  # a byte at a time, never the end of the head or of the body
            except OSError:
                break  # closed by the forward
            time.sleep(0.05)
        assert done.wait(5), "the forward still waits for the request"
        client.settimeout(5)
        try:
            assert client.recv(100) == b""  # closed, no answer
        except ConnectionResetError:
            pass  # closed with the trickled bytes unread: a reset, no answer either
    finally:
        client.close()
        server.close()
    assert not [e for e in log.events if e.get("decision") == "refused"]
    assert ollama.requests == ([] if stall == "head" else [("POST", "/api/chat")])  # its body cut short


def test_nothing_goes_out_once_the_audit_log_is_full(tmp_path: Path, ollama: Ollama) -> None:
    """A session whose audit log is full (limits.audit_bytes) fails closed: the model forward and the proxy
    refuse what they could no longer log. In-process, with a real AuditLog filled past its cap."""
    import socket

    from jail.policy.profile import Forward
    from jail.supervisor import audit, modelforward, proxy

    address = f"127.0.0.1:{ollama.port}"

    class Net:
        allow, deny, hosts, allow_addresses, forward = ["pkg.test"], [], {}, [], [address]
        forward_settings, forward_paths = (Forward(address),), ()

    log = audit.AuditLog(directory=str(tmp_path / "log"), max_bytes=5000)
    while not log.full:
        log.event("filler", text="x" * 500)
    server = proxy.Proxy(Net, str(tmp_path), log)
    rules = modelforward.ModelEndpoints(Forward(address), Net)
    try:
        for handler, request in (
                (lambda c: server._serve_model(c, "127.0.0.1", ollama.port, rules),
                 b"GET /api/tags HTTP/1.1\r\nHost: x\r\n\r\n"),
                (server._serve_proxy, b"GET http://pkg.test/ HTTP/1.1\r\nHost: pkg.test\r\n\r\n")):
            client, served = socket.socketpair()
            thread = threading.Thread(target=server._guarded, args=(handler, served), daemon=True)
            thread.start()
            client.sendall(request)
            client.settimeout(10)
            answer = b""
            while chunk := client.recv(65536):
                answer += chunk
            client.close()
            thread.join(10)
            assert answer.startswith(b"HTTP/1.1 403 ") and b"audit log is full (limits.audit_bytes)" in answer, answer
    finally:
        server.close()
        log.close()
    assert ollama.requests == []
