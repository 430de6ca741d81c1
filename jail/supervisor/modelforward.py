"""The model forward's HTTP filter: a local model server's port in the jail, served request by request.

Each request on a forwarded connection is parsed strictly (`parse_request`): plain HTTP/1.1, one
framing, a plain path; only the inference and read-only endpoints (`MODEL_ENDPOINTS`) and what the
profile adds (`allow_management`, `allow_paths`, else `forward_paths`) pass (`ModelEndpoints`); its body
is relayed as far as it is well-formed (`forward_request`). The proxy (proxy.py) accepts the connections, logs each
answer and counts the use.
"""

from __future__ import annotations

import _socket
import _thread
from typing import Any

from jail.display import shown
from jail.policy.profile import MODEL_MANAGEMENT, Forward, Network, forward_allow_paths
from jail.supervisor.relay import MAX_HEAD, response, splice

MAX_SHOWN = 200  # characters of a refused request's path in its audit event and answer


# The model forward (protocol "ollama"): what a request may be, and what passes without a profile's leave.
MAX_BODY = 64 << 20  # a request's body (a chat with images is a few MB): more is refused, 413


BODY_SECONDS = 60.0  # for a request's whole body once its head is in


# Inference and reading: what an agent needs of a local model. HEAD passes wherever GET does; "*" is one segment.
MODEL_ENDPOINTS = (("POST", "/api/chat"), ("POST", "/api/generate"), ("POST", "/api/embed"),
                   ("POST", "/api/embeddings"), ("POST", "/api/show"), ("GET", "/api/tags"), ("GET", "/api/ps"),
                   ("GET", "/api/version"), ("GET", "/"), ("POST", "/v1/chat/completions"),
                   ("POST", "/v1/completions"), ("POST", "/v1/embeddings"), ("GET", "/v1/models"),
                   ("GET", "/v1/models/*"))


class ModelEndpoints:
    """What one filtered forward lets through: the inference and read-only endpoints, and the profile's extras."""

    def __init__(self, forward: Forward, network: Network) -> None:
        allowed = {*MODEL_ENDPOINTS, *(e for e in MODEL_MANAGEMENT if e[1] in forward.allow_management),
                   *(tuple(e.split(" ", 1)) for e in forward_allow_paths(network, forward))}
        self.allowed = frozenset(allowed | {("HEAD", path) for method, path in allowed if method == "GET"})
        self.address = forward.address

    def _matches(self, endpoints: Any, method: str, path: str) -> str | None:
        """The endpoint ("METHOD /path", or its "/*" pattern) among `endpoints` that the request is, if any."""
        if (method, path) in endpoints:
            return f"{method} {path}"
        parent, _, last = path.rpartition("/")
        return f"{method} {parent}/*" if last and (method, f"{parent}/*") in endpoints else None

    def match(self, method: str, path: str) -> str | None:
        """The allowed endpoint this request is, or None."""
        return self._matches(self.allowed, method, path)

    def refusal(self, method: str, path: str) -> Refusal:
        """Why a request that matches no allowed endpoint is refused, and the key that would let it through."""
        where = f"the table of the forward {self.address} in network.forward"
        managed = [p for m, p in MODEL_MANAGEMENT if self._matches({(m, p)}, method, path)]
        if managed:
            return Refusal(403, f"refused {method} {path}: a management endpoint of the Ollama API, which deletes, "
                                 f"pulls, pushes, creates or copies the host's models; set allow_management = true "
                                 f"(or [\"{managed[0]}\"]) in {where} to let it through", "allow_management")
        return Refusal(403, f"refused {method} {path}: not one of the inference or read-only endpoints the model "
                             f"forward lets through; add \"{method} {path}\" to allow_paths in {where} to let it "
                             "through", "allow_paths")


class Refusal:
    __slots__ = ("status", "text", "key")

    def __init__(self, status: int, text: str, key: str) -> None:
        self.status, self.text, self.key = status, text, key


class Request:
    __slots__ = ("method", "path", "version", "length", "chunked", "forwarded")

    def __init__(self, method: str, path: str, version: str, length: int, chunked: bool, forwarded: bytes) -> None:
        self.method, self.path, self.version = method, path, version
        self.length, self.chunked, self.forwarded = length, chunked, forwarded


def default_forward(address: str) -> Forward:
    return Forward(address)


_COMPILED: dict[str, Any] | None = None


def request_patterns() -> dict[str, Any]:
    """Compiled once, by the warm-up (or the first request), not on every jail's start-up path."""
    global _COMPILED
    if _COMPILED is None:
        import re

        _COMPILED = {
            "request_line": re.compile(rb"([A-Za-z]{1,16}) ([\x21-\x7e]{1,8192}) (HTTP/1\.[01])"),
            "path": re.compile(rb"/|(?:/[A-Za-z0-9._~:@!$&'()*+,;=-]+)+"),
            "query": re.compile(rb"[\x21-\x22\x24-\x7e]*"),  # no '#'
            # No pattern with nested or adjacent repeats (a value of spaces and tabs took 28 s through one):
            # a header is split at its colon, the name matched as a token, the value searched for a control.
            "token": re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"),
            "control": re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]"),
            "chunk": re.compile(rb"[0-9A-Fa-f]{1,8}"),
        }
    return _COMPILED


_PLAIN_ONLY = ("the model forward takes plain HTTP/1.1 requests only; protocol = \"tcp\" in the table of the "
               "forward in network.forward relays raw bytes unchecked")


_HOP_BY_HOP = (b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer")


def parse_request(head: bytes) -> Request | Refusal:
    """One request head, strictly: anything two parsers could read two ways is refused, not guessed at.

    Refused: a request line that is not `METHOD /path HTTP/1.x` in printable ASCII; an absolute or
    `*` target; a path that is not already normal (%-escapes, empty, "." or ".." segments, a
    backslash); a header that is not `name: value` (obs-fold, space before the colon, controls);
    two Content-Lengths, a Transfer-Encoding other than one `chunked`, both at once; an Upgrade.
    """
    patterns = request_patterns()
    lines = head.split(b"\r\n")
    line = patterns["request_line"].fullmatch(lines[0])
    if line is None:
        return Refusal(400, f"not an HTTP/1.1 request line (METHOD /path HTTP/1.1, printable ASCII); {_PLAIN_ONLY}",
                        "protocol")
    method, target, version = (part.decode("ascii") for part in line.groups())
    path, _, query = target.partition("?")
    if not target.startswith("/"):
        return Refusal(400, f"{shown(target[:MAX_SHOWN])}: the forward takes a path (/api/chat), not a URL; "
                             f"{_PLAIN_ONLY}", "protocol")
    if patterns["path"].fullmatch(path.encode()) is None or {".", ".."} & set(path.split("/")) or \
            patterns["query"].fullmatch(query.encode()) is None:
        return Refusal(403, f"refused {method} {shown(path[:MAX_SHOWN])}: not a plain path (no %-escapes, "
                             f"no empty, '.' or '..' segments, no '#'): send the path itself; {_PLAIN_ONLY}",
                        "protocol")
    length: int | None = None
    chunked = False
    forwarded = [lines[0]]
    for raw in lines[1:]:
        name, colon, value = raw.partition(b":")
        value = value.strip(b" \t")
        if not colon or patterns["token"].fullmatch(name) is None or patterns["control"].search(value):
            return Refusal(400, f"a header line that is not \"name: value\" (a folded line, a space before the "
                                 f"colon, a control character); {_PLAIN_ONLY}", "protocol")
        name = name.lower()
        if name == b"content-length":
            if length is not None or not value.isdigit() or len(value) > 15:
                return Refusal(400, f"Content-Length twice, or not a number; {_PLAIN_ONLY}", "protocol")
            length = int(value)
        elif name == b"transfer-encoding":
            if chunked or value.lower() != b"chunked":
                return Refusal(400, f"a Transfer-Encoding other than one \"chunked\"; {_PLAIN_ONLY}", "protocol")
            chunked = True
        elif name in (b"upgrade", b"http2-settings"):
            return Refusal(400, f"a protocol upgrade (Upgrade, HTTP2-Settings); {_PLAIN_ONLY}", "protocol")
        elif name in _HOP_BY_HOP:
            continue  # this hop's: the server is told Connection: close
        forwarded.append(raw)
    if chunked and (length is not None or version == "HTTP/1.0"):
        return Refusal(400, f"Content-Length and Transfer-Encoding together, or chunked in HTTP/1.0; {_PLAIN_ONLY}",
                        "protocol")
    if (length or 0) > MAX_BODY:
        return Refusal(413, f"a request body of {length} bytes; the model forward takes at most {MAX_BODY}", "")
    return Request(method, path, version, length or 0, chunked,
                    b"\r\n".join([*forwarded, b"Connection: close", b"", b""]))


class Reader:
    """The client's bytes, each wait bounded by a deadline, its socket left blocking (SO_RCVTIMEO, not
    settimeout): a response may be spliced into the same socket meanwhile, and splice(2) on a
    non-blocking socket gives up when its buffer is full."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.data = bytearray()  # appended to in place: a trickle of bytes costs no copy of all before it

    def _recv(self, deadline: float) -> bool:
        import struct
        import time

        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVTIMEO,
                             struct.pack("ll", int(remaining), max(int(remaining % 1 * 1e6), 1)))
        try:
            chunk = self.sock.recv(65536)
        except OSError:  # EAGAIN: the deadline; or the client reset
            return False
        self.data += chunk
        return bool(chunk)

    def head(self, seconds: float) -> bytes | None:
        """The next request head (one deadline for all of it); None at the end, or past the deadline or size."""
        import time

        deadline = time.monotonic() + seconds
        searched = 0
        while (end := self.data.find(b"\r\n\r\n", searched)) < 0:
            if len(self.data) > MAX_HEAD:
                self.finish(response(431, "shelljail: request head too large"))
                return None
            searched = max(len(self.data) - 3, 0)  # each byte looked at once, however the head trickles in
            if not self._recv(deadline):
                return None
        head = bytes(self.data[:end])
        del self.data[:end + 4]
        return head

    def take(self, most: int, deadline: float) -> bytes:
        """Up to `most` bytes, at least one unless the client ended or the deadline passed."""
        if not self.data and not self._recv(deadline):
            return b""
        out = bytes(self.data[:most])
        del self.data[:most]
        return out

    def exactly(self, count: int, deadline: float) -> bytes | None:
        while len(self.data) < count:
            if not self._recv(deadline):
                return None
        out = bytes(self.data[:count])
        del self.data[:count]
        return out

    def line(self, most: int, deadline: float) -> bytes | None:
        while (end := self.data.find(b"\r\n")) < 0:
            if len(self.data) > most or not self._recv(deadline):
                return None
        line = bytes(self.data[:end])
        del self.data[:end + 2]
        return line

    def more(self) -> bool:
        """Whether the client has sent more already (a pipelined request), without waiting for it."""
        if self.data:
            return True
        try:
            chunk = self.sock.recv(65536, _socket.MSG_DONTWAIT)
        except OSError:
            return False
        self.data += chunk
        return bool(chunk)

    def finish(self, response: bytes) -> None:
        """Answer and end: what the client still sends is read (1 s, 1 MB at most) so that the close does not
        reset the connection before the client has read the answer."""
        import time

        try:
            self.sock.sendall(response)
            self.sock.shutdown(_socket.SHUT_WR)
        except OSError:
            return
        deadline = time.monotonic() + 1
        drained = 0
        while drained < 1 << 20 and self._recv(deadline):
            drained += len(self.data)
            self.data.clear()


def _respond(upstream: _socket.socket, client: _socket.socket, counts: list[int]) -> None:
    """Relay one response: its head (and any 1xx before it) saying Connection: close, its body spliced as it comes.

    The head is the only part read: the client is told that the connection ends with the response,
    whatever the server said, because it does (the next request, if any, is checked and gets a
    connection to the server of its own); a body delimited by the end of the connection stays so.
    """
    data = b""
    while True:
        while (end := data.find(b"\r\n\r\n")) < 0:
            chunk = upstream.recv(65536) if len(data) <= MAX_HEAD else b""
            if not chunk:  # the server ended (or sent no HTTP head): pass on what it sent, and end
                client.sendall(data)
                counts[1] += len(data)
                return
            data += chunk
        lines = data[:end].split(b"\r\n")
        data = data[end + 4:]
        interim = lines[0][9:10] == b"1" and lines[0][9:12] != b"101"  # 100 Continue, 103 Early Hints
        kept = [line for line in lines if line.partition(b":")[0].strip().lower() not in _HOP_BY_HOP]
        head = b"\r\n".join([*kept, *([] if interim else [b"Connection: close"]), b"", b""])
        if not interim:
            head, data = head + data, b""  # one send with what came of the body
        client.sendall(head)
        counts[1] += len(head)
        if not interim:
            break
    splice(upstream.fileno(), client.fileno(), counts, 1)


def forward_request(reader: Reader, upstream: _socket.socket, request: Request, counts: list[int]) -> bool | None:
    """Send one checked request (its body by its own framing) and relay the whole response, unbuffered.

    True when both are done; False when a side went away or the body's deadline passed; None for a
    malformed chunked body (the server, told Connection: close, reads nothing after it either way).
    """
    import struct
    import time

    upstream.settimeout(None)  # blocking, for splice(2); sends bounded by SO_SNDTIMEO instead
    upstream.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
    upstream.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDTIMEO, struct.pack("ll", int(BODY_SECONDS), 0))
    client = reader.sock
    if not request.chunked and len(reader.data) >= request.length:  # the whole request is here: one send
        body = bytes(reader.data[:request.length])
        del reader.data[:request.length]
        try:
            upstream.sendall(request.forwarded + body)
            counts[0] += len(request.forwarded) + len(body)
            _respond(upstream, client, counts)
        except OSError:
            return False
        return True
    done = _thread.allocate_lock()
    done.acquire()

    def respond() -> None:  # meanwhile: a 100 Continue, an early answer, a stream
        try:
            _respond(upstream, client, counts)
        except OSError:
            pass
        finally:
            done.release()

    _thread.start_new_thread(respond, ())
    deadline = time.monotonic() + BODY_SECONDS

    def send(data: bytes) -> None:
        upstream.sendall(data)
        counts[0] += len(data)

    def relay(count: int) -> bool:
        while count:
            data = reader.take(min(count, 1 << 20), deadline)
            if not data:
                return False
            send(data)
            count -= len(data)
        return True

    whole: bool | None = False
    try:
        send(request.forwarded)
        if not request.chunked:
            whole = relay(request.length)
        else:
            total = 0
            while True:
                size_line = reader.line(16, deadline)
                if size_line is None or request_patterns()["chunk"].fullmatch(size_line) is None:
                    whole = None if size_line is not None or len(reader.data) > 16 else False
                    break
                size = int(size_line, 16)
                total += size
                if total > MAX_BODY:
                    whole = None
                    break
                send(size_line + b"\r\n")
                if not relay(size):
                    break
                end = reader.exactly(2, deadline)
                if end != b"\r\n":  # and no trailers after the last chunk
                    whole = None if end is not None else False
                    break
                send(end)
                if not size:
                    whole = True
                    break
    except OSError:
        whole = False
    if not whole:
        try:
            upstream.shutdown(_socket.SHUT_RDWR)  # the response's relay ends too
        except OSError:
            pass
    done.acquire()
    return whole
