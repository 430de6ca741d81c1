"""The network proxy: the only way out of a jail, outside it, checking every destination.

In `network.mode = "proxy"` the jail's network namespace still has only a
loopback. Its pid 1 listens on 127.0.0.1:<proxy_port> there and passes the
listening socket itself (SCM_RIGHTS), once, over a unix socket that the
supervisor serves here (the socket's directory is bind-mounted at
/run/shelljail-net, after the profile's mounts, so none of them can hide
it); from then on this proxy accepts the jail's connections itself. It
speaks HTTP: CONNECT for TLS and absolute-form requests for plain HTTP. Each
request's host and port are checked against `network.deny`, then
`network.allow`; the name is resolved here (`network.hosts` first, then the
system resolver), every address is checked, and loopback, link-local,
private and other special ranges are refused unless
`network.allow_addresses` names them; the connection goes to the address
that was checked, so a name cannot be rebound to the host's services in
between. Every connection, allowed or refused, is an audit event with the
bytes it carried. `network.forward` ports on the host's loopback are served
at the same address inside the jail: as HTTP by default (protocol "ollama":
every request parsed strictly and checked, only a local model's inference
and read-only endpoints let through, management refused with a 403 naming
the key; see `_serve_model`), as raw bytes when a profile says "tcp".
"""

from __future__ import annotations

import _socket
import _thread
import os
from collections.abc import Callable
from typing import Any

from jail.policy.hostpatterns import compiled
from jail.policy.profile import MODEL_MANAGEMENT, Forward

SOCKET_DIRECTORY = "/run/shelljail-net"  # inside the jail
PROXY_SOCKET = "proxy.sock"
MAX_HEAD = 64 << 10
MAX_CONNECTIONS = 1024  # at once, over the proxy and the forwards: each holds a thread of the supervisor
HEAD_SECONDS = 30.0  # a client that connects and sends no request does not hold a thread of the supervisor
# The model forward (protocol "ollama"): what a request may be, and what passes without a profile's leave.
MAX_BODY = 64 << 20  # a request's body (a chat with images is a few MB): more is refused, 413
BODY_SECONDS = 60.0  # for a request's whole body once its head is in
MAX_SHOWN = 200  # characters of a refused request's path in its audit event
LOG_FULL = ("this session's audit log is full (limits.audit_bytes) or cannot be written, so nothing more goes out "
            "of the jail; raise limits.audit_bytes, or free the disk, and run again")
# Inference and reading: what an agent needs of a local model. HEAD passes wherever GET does; "*" is one segment.
MODEL_ENDPOINTS = (("POST", "/api/chat"), ("POST", "/api/generate"), ("POST", "/api/embed"),
                   ("POST", "/api/embeddings"), ("POST", "/api/show"), ("GET", "/api/tags"), ("GET", "/api/ps"),
                   ("GET", "/api/version"), ("GET", "/"), ("POST", "/v1/chat/completions"),
                   ("POST", "/v1/completions"), ("POST", "/v1/embeddings"), ("GET", "/v1/models"),
                   ("GET", "/v1/models/*"))


def forward_socket(port: int) -> str:
    return f"forward-{port}.sock"


class Proxy:
    """Serves the jail's proxy socket and its forwards from threads of the supervisor."""

    def __init__(self, network: Any, directory: str, log: Any) -> None:
        self.allow, self.deny = compiled(tuple(network.allow), tuple(network.deny))
        self.hosts = dict(network.hosts)
        self.allow_addresses = tuple(network.allow_addresses)
        self.log = log
        self.directory = directory
        self.listeners: list[_socket.socket] = []
        self.active = 0  # connections being relayed: close() lets them finish, so their ends are logged
        self.connections = 0  # connections accepted and not yet closed
        self._lock = _thread.allocate_lock()
        self.bridges: list[tuple[_socket.socket, Callable[[_socket.socket], None]]] = []
        # Per filtered forward (port): what it let through, counted rather than logged one event each.
        self.model_use: dict[int, dict[str, Any]] = {}
        self._listen(PROXY_SOCKET, self._serve_proxy)
        settings = {forward.address: forward for forward in network.forward_settings} if network.forward else {}
        for address in network.forward:
            host, _, port = address.rpartition(":")
            forward = settings.get(address)
            if forward is not None and forward.protocol == "tcp":  # raw bytes: only when a profile says so
                self._listen(forward_socket(int(port)), lambda c, h=host, p=int(port): self._serve_forward(c, h, p))
            else:  # "ollama", and the default: HTTP, each request checked
                rules = ModelEndpoints(forward or _default_forward(address))
                self.model_use[int(port)] = {"host": host, "connections": 0, "requests": {}, "refused": 0,
                                             "bytes_up": 0, "bytes_down": 0}
                self._listen(forward_socket(int(port)),
                             lambda c, h=host, p=int(port), r=rules: self._serve_model(c, h, p, r))

    def _listen(self, name: str, handler: Callable[[_socket.socket], None]) -> None:
        listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        listener.bind(os.path.join(self.directory, name))
        listener.listen(256)
        self.listeners.append(listener)
        self.bridges.append((listener, handler))

    def start(self) -> None:
        """Serve in threads: call after the jail's processes are forked.

        Not before: a thread that holds a module's import lock at the fork leaves that lock held
        forever in the child, and the jail's pid 1 (Python) hangs on its next import of that module.
        """
        _thread.start_new_thread(_warm_up, ())
        for listener, handler in self.bridges:
            _thread.start_new_thread(self._accept, (listener, handler))

    def _accept(self, bridge: _socket.socket, handler: Callable[[_socket.socket], None]) -> None:
        """Take the one listener the jail's pid 1 passes over this unix socket, then close it and serve.

        One, and no more: the socket is inside the jail too, and a process there must not hand the
        supervisor listeners (and so threads) without end.
        """
        from jail.kernel.fdpass import receive_fd

        fd = _accept_one(bridge)
        if fd is None:
            return  # closed: the run is over
        bridge.close()
        passed = receive_fd(_socket.socket(fileno=fd))
        if passed is None:
            return
        try:
            listener = _socket.socket(fileno=passed)
        except OSError:
            os.close(passed)  # not a socket
            return
        self.listeners.append(listener)
        self._serve(listener, handler)

    def _serve(self, listener: _socket.socket, handler: Callable[[_socket.socket], None]) -> None:
        """Accept one of the jail's connections, leave the next to a new thread, and handle this one.

        The thread that accepted handles: a thread start is not between a client and its first byte.
        """
        fd = _accept_one(listener)
        if fd is None:
            return  # closed: the run is over
        _thread.start_new_thread(self._serve, (listener, handler))
        connection = _socket.socket(fileno=fd)
        with self._lock:
            full = self.connections >= MAX_CONNECTIONS
            self.connections += not full
        if full:
            connection.close()
            self._event(None, listener.getsockname()[1], "refused",
                        f"more than {MAX_CONNECTIONS} connections at once from the jail", None)
            return
        try:
            self._guarded(handler, connection)
        finally:
            with self._lock:
                self.connections -= 1

    def _guarded(self, handler: Callable[[_socket.socket], None], connection: _socket.socket) -> None:
        try:
            handler(connection)
        except OSError:
            pass  # a client that went away mid-transfer
        finally:
            connection.close()

    def close(self) -> None:
        """Stop listening; let the relays the jail's end left open finish (briefly), so each is logged."""
        import time

        deadline = time.monotonic() + 3
        while self.active and time.monotonic() < deadline:
            time.sleep(0.01)
        self._summarise()
        for listener in self.listeners:
            try:
                listener.shutdown(_socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        for name in os.listdir(self.directory):
            if name.endswith(".sock"):
                os.unlink(os.path.join(self.directory, name))
        try:
            os.rmdir(self.directory)
        except OSError:
            pass

    def _summarise(self) -> None:
        """One event per filtered forward that was used: its requests by endpoint, refusals, bytes."""
        if self.log is None:
            return
        for port, use in self.model_use.items():
            with self._lock:
                summary = {**use, "requests": dict(use["requests"])}
            if summary["connections"] or summary["refused"]:
                self.log.event("network-forward", port=port, **summary)

    # ---- HTTP ------------------------------------------------------------------------------------

    def _unlogged(self) -> bool:
        """The session's audit log is full (or cannot be written): nothing more leaves the jail unlogged."""
        return bool(getattr(self.log, "full", False))

    def _serve_proxy(self, client: _socket.socket) -> None:
        head, rest = _read_head(client)
        if head is None:
            return
        if self._unlogged():
            client.sendall(_response(403, f"shelljail: refused: {LOG_FULL}"))
            return
        request_line, _, headers = head.partition(b"\r\n")
        try:
            method, target, version = request_line.decode("latin-1").split(" ")
        except ValueError:
            client.sendall(_response(400, "shelljail: not an HTTP proxy request"))
            return
        if method == "CONNECT":
            host, port = _split_host_port(target, 443)
            path = None
        elif target.startswith("http://"):
            authority, slash, path_part = target[len("http://"):].partition("/")
            host, port = _split_host_port(authority, 80)
            path = slash + path_part if slash else "/"
        else:
            client.sendall(_response(400, "shelljail: the proxy takes CONNECT host:port, or http://host/path; "
                                          "https:// URLs go through CONNECT (set HTTPS_PROXY)"))
            return
        upstream, address, refusal = self.open(host, port)
        if upstream is None:
            self._event(host, port, "refused", refusal, address)
            client.sendall(_response(403, f"shelljail: refused {host}:{port}: {refusal}"))
            return
        self._event(host, port, "allowed", None, address)  # now, in the order the requests came
        with upstream, self._relaying():
            if path is None:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    upstream.sendall(rest)
                up, down = _relay(client, upstream)
                up += len(rest)
            else:
                forwarded = _origin_request(method, path, version, headers)
                upstream.sendall(forwarded + rest)
                up, down = _relay(client, upstream)
                up += len(forwarded) + len(rest)
            self._closed(host, port, up, down)

    def open(self, host: str, port: int) -> tuple[Any, str | None, str]:
        """(a connected socket, the address, "") or (None, address or None, why it was refused)."""
        import socket

        host = host.lower().rstrip(".")
        for rule in self.deny:
            if rule.matches(host, port):
                return None, None, f"denied by network.deny {rule.pattern!r}"
        if not any(rule.matches(host, port) for rule in self.allow):
            return None, None, (f"not in network.allow of this profile; add \"{host}:{port}\" to network.allow "
                                "to let it through")
        try:
            addresses = [self.hosts[host]] if host in self.hosts else list(dict.fromkeys(
                info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))
        except OSError as exc:
            return None, None, f"cannot resolve {host}: {exc.strerror or exc}"
        refused = ""
        from jail.ui.dashboard import registered_port

        for address in addresses:
            problem = self._special(address)
            if not problem and _is_loopback(address) and port == registered_port():
                problem = "the shelljail dashboard's port, which a jail must never reach"
            if problem:
                refused = problem
                continue
            try:
                return socket.create_connection((address, port), timeout=30), address, ""
            except OSError as exc:
                refused = f"cannot connect to {address}:{port}: {exc.strerror or exc}"
        return None, addresses[0] if addresses else None, refused or f"no address for {host}"

    def _special(self, address: str) -> str:
        import ipaddress

        ip = ipaddress.ip_address(address)
        if any(ip in ipaddress.ip_network(n, strict=False) for n in self.allow_addresses):
            return ""
        if ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_reserved or ip.is_multicast or \
                ip.is_unspecified or (ip.version == 6 and ip.ipv4_mapped is not None):
            return (f"{address} is a loopback, private or special address (no rebinding to the host's services); "
                    "network.allow_addresses can allow it")
        return ""

    def _event(self, host: str | None, port: int, decision: str, reason: str | None, address: str | None) -> None:
        if self.log is not None:
            self.log.event("network", host=host, port=port, decision=decision, reason=reason, address=address)

    def _closed(self, host: str, port: int, up: int, down: int) -> None:
        if self.log is not None:
            self.log.event("network-closed", host=host, port=port, bytes_up=up, bytes_down=down)

    def _relaying(self) -> Any:
        proxy = self

        class Active:
            def __enter__(self) -> None:
                with proxy._lock:
                    proxy.active += 1

            def __exit__(self, *_exc: object) -> None:
                with proxy._lock:
                    proxy.active -= 1

        return Active()

    # ---- forwards --------------------------------------------------------------------------------

    def _serve_forward(self, client: _socket.socket, host: str, port: int) -> None:
        import socket

        from jail.ui.dashboard import registered_port

        if port == registered_port():  # a dashboard started on a forwarded port after the jail
            self._event(host, port, "refused", "forward: the shelljail dashboard's port", host)
            return
        if self._unlogged():
            return
        try:
            upstream = socket.create_connection((host, port), timeout=30)
        except OSError as exc:
            self._event(host, port, "refused", f"forward: {exc.strerror or exc}", host)
            return
        self._event(host, port, "forwarded", None, host)
        with upstream, self._relaying():
            up, down = _relay(client, upstream)
            self._closed(host, port, up, down)

    def _serve_model(self, client: _socket.socket, host: str, port: int, rules: ModelEndpoints) -> None:
        """HTTP, not bytes: every request on the connection is parsed strictly and checked, one at a time.

        Each allowed request goes to the model server on a connection of its own, told `Connection:
        close`, so the server reads exactly the one request this checked and the end of its response
        is the end of that connection: of the response only the head is read (to say Connection:
        close to the client too), its body is spliced as it comes (streams stay streams). A client's
        next request (pipelined, or after a chunked body) is read and checked like the first; the
        first refusal answers 403 (400 for what is not plain HTTP) and ends the connection.
        """
        import socket

        from jail.ui.dashboard import registered_port

        # No Nagle: a streamed chunk goes out at once, not after the client's (delayed) ACK of the one before.
        try:
            client.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not TCP
        reader = _Reader(client)
        counts = [0, 0]
        requests = 0
        while True:
            head = reader.head(HEAD_SECONDS)
            if head is None:
                break
            request = _parse_request(head)
            endpoint = None if isinstance(request, _Refusal) else rules.match(request.method, request.path)
            refusal = request if isinstance(request, _Refusal) else None if endpoint else \
                rules.refusal(request.method, request.path)
            if refusal is None and port == registered_port():  # a dashboard started on the port after the jail
                refusal = _Refusal(403, "the shelljail dashboard's port, which a jail must never reach", "")
            if refusal is None and self._unlogged():
                refusal = _Refusal(403, f"refused: {LOG_FULL}", "")
            if refusal is not None:
                self._refuse_request(reader, host, port, head, refusal)
                break
            assert isinstance(request, _Request)
            try:
                upstream = socket.create_connection((host, port), timeout=30)
            except OSError as exc:
                self._refuse_request(reader, host, port, head, _Refusal(
                    502, f"the model server at {host}:{port} is not reachable: {exc.strerror or exc}", ""))
                break
            assert endpoint is not None
            self._count_request(host, port, endpoint)
            requests += 1
            with upstream, self._relaying():
                whole = _forward_request(reader, upstream, request, counts)
            if not whole:  # the body broke off or was malformed, mid-request: nothing more is read
                if whole is None:
                    self._request_event(host, port, head, _Refusal(
                        400, "a malformed or oversized chunked body (relayed only as far as it was well-formed, "
                             "then the request was cut off)", "protocol"))
                break
            if request.version == "HTTP/1.0" or not reader.more():
                break  # nothing pipelined behind it: the end of the response ends the connection
        use = self.model_use.get(port)
        if use is not None and requests:
            with self._lock:
                use["connections"] += 1
                use["bytes_up"] += counts[0]
                use["bytes_down"] += counts[1]

    def _count_request(self, host: str, port: int, endpoint: str) -> None:
        """Count an allowed request; the first to each endpoint is also an event (later ones only counted)."""
        use = self.model_use.get(port)
        with self._lock:
            first = use is None or endpoint not in use["requests"]
            if use is not None:
                use["requests"][endpoint] = use["requests"].get(endpoint, 0) + 1
        if first and self.log is not None:
            method, _, path = endpoint.partition(" ")
            self.log.event("network", host=host, port=port, decision="forwarded", reason=None, address=host,
                           method=method, path=path, counted="further requests to it: the run's network-forward event")

    def _refuse_request(self, reader: _Reader, host: str, port: int, head: bytes, refusal: _Refusal) -> None:
        self._request_event(host, port, head, refusal)
        import json

        reason = {400: "Bad Request", 403: "Forbidden", 413: "Content Too Large", 502: "Bad Gateway"}[refusal.status]
        body = (json.dumps({"error": f"shelljail: {refusal.text}"}) + "\n").encode()
        reader.finish(f"HTTP/1.1 {refusal.status} {reason}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)

    def _request_event(self, host: str, port: int, head: bytes, refusal: _Refusal) -> None:
        use = self.model_use.get(port)
        if use is not None:
            with self._lock:
                use["refused"] += 1
        if self.log is not None:
            method, _, rest = head.partition(b"\r\n")[0].partition(b" ")
            target = rest.rpartition(b" ")[0] if b" " in rest else rest
            self.log.event("network", host=host, port=port, decision="refused", reason=refusal.text, address=host,
                           method=_escaped(method[:16]), path=_escaped(target[:MAX_SHOWN]),
                           truncated=len(target) > MAX_SHOWN or None, key=refusal.key or None)


class ModelEndpoints:
    """What one filtered forward lets through: the inference and read-only endpoints, and the profile's extras."""

    def __init__(self, forward: Forward) -> None:
        allowed = {*MODEL_ENDPOINTS, *(e for e in MODEL_MANAGEMENT if e[1] in forward.allow_management),
                   *(tuple(e.split(" ", 1)) for e in forward.allow_paths)}
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

    def refusal(self, method: str, path: str) -> _Refusal:
        """Why a request that matches no allowed endpoint is refused, and the key that would let it through."""
        where = f"the table of the forward {self.address} in network.forward"
        managed = [p for m, p in MODEL_MANAGEMENT if self._matches({(m, p)}, method, path)]
        if managed:
            return _Refusal(403, f"refused {method} {path}: a management endpoint of the Ollama API, which deletes, "
                                 f"pulls, pushes, creates or copies the host's models; set allow_management = true "
                                 f"(or [\"{managed[0]}\"]) in {where} to let it through", "allow_management")
        return _Refusal(403, f"refused {method} {path}: not one of the inference or read-only endpoints the model "
                             f"forward lets through; add \"{method} {path}\" to allow_paths in {where} to let it "
                             "through", "allow_paths")


class _Refusal:
    __slots__ = ("status", "text", "key")

    def __init__(self, status: int, text: str, key: str) -> None:
        self.status, self.text, self.key = status, text, key


class _Request:
    __slots__ = ("method", "path", "version", "length", "chunked", "forwarded")

    def __init__(self, method: str, path: str, version: str, length: int, chunked: bool, forwarded: bytes) -> None:
        self.method, self.path, self.version = method, path, version
        self.length, self.chunked, self.forwarded = length, chunked, forwarded


def _default_forward(address: str) -> Forward:
    return Forward(address)


_COMPILED: dict[str, Any] | None = None


def _patterns() -> dict[str, Any]:
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


def _parse_request(head: bytes) -> _Request | _Refusal:
    """One request head, strictly: anything two parsers could read two ways is refused, not guessed at.

    Refused: a request line that is not `METHOD /path HTTP/1.x` in printable ASCII; an absolute or
    `*` target; a path that is not already normal (%-escapes, empty, "." or ".." segments, a
    backslash); a header that is not `name: value` (obs-fold, space before the colon, controls);
    two Content-Lengths, a Transfer-Encoding other than one `chunked`, both at once; an Upgrade.
    """
    patterns = _patterns()
    lines = head.split(b"\r\n")
    line = patterns["request_line"].fullmatch(lines[0])
    if line is None:
        return _Refusal(400, f"not an HTTP/1.1 request line (METHOD /path HTTP/1.1, printable ASCII); {_PLAIN_ONLY}",
                        "protocol")
    method, target, version = (part.decode("ascii") for part in line.groups())
    path, _, query = target.partition("?")
    if not target.startswith("/"):
        return _Refusal(400, f"{_escaped(target[:MAX_SHOWN])}: the forward takes a path (/api/chat), not a URL; "
                             f"{_PLAIN_ONLY}", "protocol")
    if patterns["path"].fullmatch(path.encode()) is None or {".", ".."} & set(path.split("/")) or \
            patterns["query"].fullmatch(query.encode()) is None:
        return _Refusal(403, f"refused {method} {_escaped(path[:MAX_SHOWN])}: not a plain path (no %-escapes, "
                             f"no empty, '.' or '..' segments, no '#'): send the path itself; {_PLAIN_ONLY}",
                        "protocol")
    length: int | None = None
    chunked = False
    forwarded = [lines[0]]
    for raw in lines[1:]:
        name, colon, value = raw.partition(b":")
        value = value.strip(b" \t")
        if not colon or patterns["token"].fullmatch(name) is None or patterns["control"].search(value):
            return _Refusal(400, f"a header line that is not \"name: value\" (a folded line, a space before the "
                                 f"colon, a control character); {_PLAIN_ONLY}", "protocol")
        name = name.lower()
        if name == b"content-length":
            if length is not None or not value.isdigit() or len(value) > 15:
                return _Refusal(400, f"Content-Length twice, or not a number; {_PLAIN_ONLY}", "protocol")
            length = int(value)
        elif name == b"transfer-encoding":
            if chunked or value.lower() != b"chunked":
                return _Refusal(400, f"a Transfer-Encoding other than one \"chunked\"; {_PLAIN_ONLY}", "protocol")
            chunked = True
        elif name in (b"upgrade", b"http2-settings"):
            return _Refusal(400, f"a protocol upgrade (Upgrade, HTTP2-Settings); {_PLAIN_ONLY}", "protocol")
        elif name in _HOP_BY_HOP:
            continue  # this hop's: the server is told Connection: close
        forwarded.append(raw)
    if chunked and (length is not None or version == "HTTP/1.0"):
        return _Refusal(400, f"Content-Length and Transfer-Encoding together, or chunked in HTTP/1.0; {_PLAIN_ONLY}",
                        "protocol")
    if (length or 0) > MAX_BODY:
        return _Refusal(413, f"a request body of {length} bytes; the model forward takes at most {MAX_BODY}", "")
    return _Request(method, path, version, length or 0, chunked,
                    b"\r\n".join([*forwarded, b"Connection: close", b"", b""]))


class _Reader:
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
                self.finish(_response(431, "shelljail: request head too large"))
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
    _splice(upstream.fileno(), client.fileno(), counts, 1)


def _forward_request(reader: _Reader, upstream: _socket.socket, request: _Request, counts: list[int]) -> bool | None:
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
                if size_line is None or _patterns()["chunk"].fullmatch(size_line) is None:
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


def _escaped(text: str | bytes) -> str:
    from jail.display import shown

    return shown(text)


def _accept_one(listener: _socket.socket) -> int | None:
    """The next accepted connection's descriptor; None once the listener is closed."""
    while True:
        try:
            return listener._accept()[0]
        except ConnectionAbortedError:
            continue  # the client left before it was accepted
        except OSError:
            return None


def _warm_up() -> None:
    """Import what the first connection needs while the jail starts, not while a download waits.

    These imports (socket, ipaddress, ...) are kept off `run`'s start-up path, where they cost about
    5 ms; done by the first request they held it 10-13 ms (measured in the proxy on this machine
    kind); here, in a thread started after the fork, they overlap the jail's own start.
    """
    import fcntl  # noqa: F401
    import ipaddress  # noqa: F401
    import socket  # noqa: F401
    import struct  # noqa: F401

    from jail.kernel import fdpass  # noqa: F401

    _patterns()


def _is_loopback(address: str) -> bool:
    import ipaddress

    ip = ipaddress.ip_address(address)
    return ip.is_loopback or ip.is_unspecified or (ip.version == 6 and ip.ipv4_mapped is not None
                                                   and ip.ipv4_mapped.is_loopback)


def _read_head(client: _socket.socket) -> tuple[bytes | None, bytes]:
    """The request's head and what came after it; None if the client closed, stalled or sent too much."""
    import time

    data = b""
    deadline = time.monotonic() + HEAD_SECONDS  # for the whole head: one byte at a time does not hold it longer
    while b"\r\n\r\n" not in data:
        try:
            client.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = client.recv(65536)
        except TimeoutError:
            return None, b""
        if not chunk:
            return None, b""
        data += chunk
        if len(data) > MAX_HEAD:
            client.sendall(_response(431, "shelljail: request head too large"))
            return None, b""
    client.settimeout(None)
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _split_host_port(authority: str, default: int) -> tuple[str, int]:
    if authority.startswith("["):  # [v6]:port
        host, _, port = authority[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = authority.rpartition(":") if ":" in authority else (authority, "", "")
    return host.lower(), int(port) if port.isdigit() else default


def _origin_request(method: str, path: str, version: str, headers: bytes) -> bytes:
    kept = [line for line in headers.split(b"\r\n") if line and not line.lower().startswith(
        (b"proxy-", b"connection:", b"keep-alive:"))]
    return b"\r\n".join([f"{method} {path} {version}".encode("latin-1"), *kept, b"Connection: close", b"", b""])


def _response(status: int, text: str) -> bytes:
    reason = {400: "Bad Request", 403: "Forbidden", 431: "Request Header Fields Too Large"}[status]
    body = (text + "\n").encode()
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def _splice(source: int, sink: int, counts: list[int], index: int) -> None:
    """Copy until end of file through a pipe with splice(2): the bytes never enter Python; counted.

    1 MB moves, and splice rather than a sockmap or bigger buffers: measured, see docs/results.md.
    """
    import fcntl

    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        try:
            fcntl.fcntl(write_end, 1031, 1 << 20)  # F_SETPIPE_SZ: fewer round trips
        except OSError:
            pass
        while True:
            moved = os.splice(source, write_end, 1 << 20)
            if not moved:
                return
            while moved:
                sent = os.splice(read_end, sink, moved)
                moved -= sent
                counts[index] += sent
    finally:
        os.close(read_end)
        os.close(write_end)


def _relay(client: Any, upstream: Any) -> tuple[int, int]:
    """Copy both ways until both sides are done; (bytes up, bytes down)."""
    counts = [0, 0]
    upward_done = _thread.allocate_lock()
    upward_done.acquire()

    def pump(source: Any, sink: Any, index: int) -> None:
        try:
            _splice(source.fileno(), sink.fileno(), counts, index)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(_socket.SHUT_WR)
            except OSError:
                pass

    def upward() -> None:
        try:
            pump(client, upstream, 0)
        finally:
            upward_done.release()

    upstream.settimeout(None)
    _thread.start_new_thread(upward, ())
    pump(upstream, client, 1)
    upward_done.acquire()  # the client saw the end (its write side was shut), so it ends too
    return counts[0], counts[1]


def attach(spec: Any, network: Any, log: Any) -> tuple[Any, Proxy | None]:
    """The spec with the proxy and forwards bridged into the jail, and the proxy serving them."""
    if network.mode != "proxy":
        return spec, None  # "none": nothing but the loopback, forwards included
    from jail.errors import JailError
    from jail.policy.view import Bind
    from jail.supervisor.rundir import private_directory
    from jail.ui.dashboard import registered_port

    dashboard = registered_port()
    for forward in network.forward:
        if int(forward.rpartition(":")[2]) == dashboard:
            raise JailError(f"network.forward {forward} is the port of the shelljail dashboard, which a jail must "
                            "never reach", "forward another port, or start the dashboard with another --port")
    directory = private_directory()
    proxy = Proxy(network, directory, log)
    bridges = [(int(f.rpartition(":")[2]), f"{SOCKET_DIRECTORY}/{forward_socket(int(f.rpartition(':')[2]))}")
               for f in network.forward]
    env = dict(spec.env)
    bridges.insert(0, (network.proxy_port, f"{SOCKET_DIRECTORY}/{PROXY_SOCKET}"))
    url = f"http://127.0.0.1:{network.proxy_port}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env[name] = url
    env["NO_PROXY"] = env["no_proxy"] = "localhost,127.0.0.1,::1"
    view = spec.view._replace(mounts=spec.view.mounts + (Bind(directory, SOCKET_DIRECTORY, False),))
    ports = None if spec.connect_ports is None else tuple(port for port, _ in bridges)
    own = tuple(listener.fileno() for listener in proxy.listeners)  # the jail's processes get no copy
    return spec._replace(view=view, bridges=tuple(bridges), env=env, connect_ports=ports,
                         supervisor_fds=spec.supervisor_fds + own), proxy
