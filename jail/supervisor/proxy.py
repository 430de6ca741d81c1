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
the key; see modelforward.py), as raw bytes when a profile says "tcp".
"""

from __future__ import annotations

import _socket
import _thread
import os
from collections.abc import Callable
from typing import Any

from jail.display import shown
from jail.supervisor.modelforward import (
    MAX_SHOWN,
    ModelEndpoints,
    Reader,
    Refusal,
    Request,
    default_forward,
    forward_request,
    parse_request,
    request_patterns,
)
from jail.supervisor.relay import MAX_HEAD, relay, response

SOCKET_DIRECTORY = "/run/shelljail-net"  # inside the jail
PROXY_SOCKET = "proxy.sock"
MAX_CONNECTIONS = 1024  # at once, over the proxy and the forwards: each holds a thread of the supervisor
HEAD_SECONDS = 30.0  # a client that connects and sends no request does not hold a thread of the supervisor
LOG_FULL = ("this session's audit log is full (limits.audit_bytes) or cannot be written, so nothing more goes out "
            "of the jail; raise limits.audit_bytes, or free the disk, and run again")


def forward_socket(port: int) -> str:
    return f"forward-{port}.sock"


class Proxy:
    """Serves the jail's proxy socket and its forwards from threads of the supervisor."""

    def __init__(self, network: Any, directory: str, log: Any) -> None:
        # Compiled in start(), after the fork: hostpatterns imports ipaddress, 2-3 ms of `run`'s start (#27).
        self.lists = (tuple(network.allow), tuple(network.deny))
        self.allow: tuple[Any, ...] = ()
        self.deny: tuple[Any, ...] = ()
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
                rules = ModelEndpoints(forward or default_forward(address), network)
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
        from jail.policy.hostpatterns import compiled

        self.allow, self.deny = compiled(*self.lists)  # before any thread can check a destination
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
            client.sendall(response(403, f"shelljail: refused: {LOG_FULL}"))
            return
        request_line, _, headers = head.partition(b"\r\n")
        try:
            method, target, version = request_line.decode("latin-1").split(" ")
        except ValueError:
            client.sendall(response(400, "shelljail: not an HTTP proxy request"))
            return
        if method == "CONNECT":
            host, port = _split_host_port(target, 443)
            path = None
        elif target.startswith("http://"):
            authority, slash, path_part = target[len("http://"):].partition("/")
            host, port = _split_host_port(authority, 80)
            path = slash + path_part if slash else "/"
        else:
            client.sendall(response(400, "shelljail: the proxy takes CONNECT host:port, or http://host/path; "
                                          "https:// URLs go through CONNECT (set HTTPS_PROXY)"))
            return
        upstream, address, refusal = self.open(host, port)
        if upstream is None:
            self._event(host, port, "refused", refusal, address)
            client.sendall(response(403, f"shelljail: refused {host}:{port}: {refusal}"))
            return
        self._event(host, port, "allowed", None, address)  # now, in the order the requests came
        with upstream, self._relaying():
            if path is None:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    upstream.sendall(rest)
                up, down = relay(client, upstream)
                up += len(rest)
            else:
                forwarded = _origin_request(method, path, version, headers)
                upstream.sendall(forwarded + rest)
                up, down = relay(client, upstream)
                up += len(forwarded) + len(rest)
            self._closed(host, port, up, down)

    def grant(self, pattern: str) -> None:
        """Allow one more destination for the rest of this run (a person said yes: supervisor/hostgrants.py)."""
        from jail.policy.hostpatterns import HostPattern

        self.allow = (*self.allow, HostPattern(pattern))  # a new tuple: a connection being checked keeps its own

    def open(self, host: str, port: int) -> tuple[Any, str | None, str]:
        """(a connected socket, the address, "") or (None, address or None, why it was refused)."""
        import socket

        host = host.lower().rstrip(".")
        for rule in self.deny:
            if rule.matches(host, port):
                return None, None, f"denied by network.deny {rule.pattern!r}"
        if not any(rule.matches(host, port) for rule in self.allow):
            from jail.policy.hostpatterns import allow_fix

            return None, None, f"not in network.allow of this profile; {allow_fix(host, port)}"
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
            up, down = relay(client, upstream)
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
        reader = Reader(client)
        counts = [0, 0]
        requests = 0
        while True:
            head = reader.head(HEAD_SECONDS)
            if head is None:
                break
            request = parse_request(head)
            endpoint = None if isinstance(request, Refusal) else rules.match(request.method, request.path)
            refusal = request if isinstance(request, Refusal) else None if endpoint else \
                rules.refusal(request.method, request.path)
            if refusal is None and port == registered_port():  # a dashboard started on the port after the jail
                refusal = Refusal(403, "the shelljail dashboard's port, which a jail must never reach", "")
            if refusal is None and self._unlogged():
                refusal = Refusal(403, f"refused: {LOG_FULL}", "")
            if refusal is not None:
                self._refuse_request(reader, host, port, head, refusal)
                break
            assert isinstance(request, Request)
            try:
                upstream = socket.create_connection((host, port), timeout=30)
            except OSError as exc:
                self._refuse_request(reader, host, port, head, Refusal(
                    502, f"the model server at {host}:{port} is not reachable: {exc.strerror or exc}", ""))
                break
            assert endpoint is not None
            self._count_request(host, port, endpoint)
            requests += 1
            with upstream, self._relaying():
                whole = forward_request(reader, upstream, request, counts)
            if not whole:  # the body broke off or was malformed, mid-request: nothing more is read
                if whole is None:
                    self._request_event(host, port, head, Refusal(
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

    def _refuse_request(self, reader: Reader, host: str, port: int, head: bytes, refusal: Refusal) -> None:
        self._request_event(host, port, head, refusal)
        import json

        reason = {400: "Bad Request", 403: "Forbidden", 413: "Content Too Large", 502: "Bad Gateway"}[refusal.status]
        body = (json.dumps({"error": f"shelljail: {refusal.text}"}) + "\n").encode()
        reader.finish(f"HTTP/1.1 {refusal.status} {reason}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)

    def _request_event(self, host: str, port: int, head: bytes, refusal: Refusal) -> None:
        use = self.model_use.get(port)
        if use is not None:
            with self._lock:
                use["refused"] += 1
        if self.log is not None:
            method, _, rest = head.partition(b"\r\n")[0].partition(b" ")
            target = rest.rpartition(b" ")[0] if b" " in rest else rest
            self.log.event("network", host=host, port=port, decision="refused", reason=refusal.text, address=host,
                           method=shown(method[:16]), path=shown(target[:MAX_SHOWN]),
                           truncated=len(target) > MAX_SHOWN or None, key=refusal.key or None)



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

    request_patterns()


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
            client.sendall(response(431, "shelljail: request head too large"))
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
