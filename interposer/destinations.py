"""Where a program will connect, checked against the jail's network before anything runs.

The jail's proxy refuses a host that `network.allow` does not name, and in `network.mode = "none"`
nothing leaves the jail at all; a client that does not speak HTTP through the proxy (nc, socat,
openssl s_client, git over ssh) cannot leave it in either mode. Saying so before the command runs
gives the model the reason and the profile key at once, instead of a 403 page, a DNS failure or a
timeout to puzzle over. Only destinations named literally are known: `curl "$URL"` is left to the
proxy, which checks every connection anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from jail.policy.programs import Program

from .programs.catalogue import BUILTIN, grammar
from .programs.options import given, operands
from .resolve import Invocation
from .words import Word

# A proxy of the client's own choosing, which it connects to by itself rather than through the jail's.
_OWN_PROXY = frozenset({"-x", "--proxy", "--preproxy", "--https-proxy", "--all-proxy"})
# Clients whose URL operands they fetch (through the proxy: they read HTTPS_PROXY and friends) are the
# catalogue's `network = "urls"` (or "uploads", "httpie": effects.py reads what they send).
URL_KINDS = frozenset({"urls", "uploads", "httpie"})
# Options of those clients whose value is not a destination (a proxy, a referer, a header, a form).
_NOT_DESTINATION = frozenset({"-e", "--referer", "-H", "--header", "-d", "--data",
                              "--data-binary", "--data-raw", "--data-urlencode", "-F", "--form", "-u", "--user",
                              "-A", "--user-agent", "-b", "--cookie", "--proxy-user", "--noproxy"})
_GIT_REMOTE = frozenset({"clone", "fetch", "pull", "push", "ls-remote"})
# Clients of raw connections (`network = "raw"`): what they read from standard input (`nc host 80 < FILE`)
# is sent.
_REMOTE_SHELL_PORTS = {"rlogin": 513, "rsh": 514}
# ssh and the programs that reach a remote over it, or over rsync's own port (`network = "ssh"`); their
# grammars (the options that take a value, so an option's value is not taken for the host) are the catalogue's.
_OVER_SSH = ("neither ssh nor rsync's own protocol leaves the jail (its proxy carries HTTP and HTTPS only): fetch "
             "over https with curl or wget, from a host in network.allow")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "ftps": 990, "ws": 80, "wss": 443, "gopher": 70,
                  "git": 9418, "ssh": 22, "sftp": 22, "scp": 22, "telnet": 23, "dict": 2628, "ldap": 389,
                  "tftp": 69, "rsync": 873, "smtp": 25, "imap": 143, "pop3": 110, "rtsp": 554, "mqtt": 1883, "smb": 445}
_LOOPBACK = ("localhost", "ip6-localhost", "::1", "0.0.0.0")
_OVER_HTTPS = "clone or fetch over https://, which goes through the proxy"


class Destination(NamedTuple):
    host: str
    port: int
    proxied: bool  # the client goes through the jail's HTTP proxy (else it connects by itself)
    hint: str = ""  # what to use instead, when the way it connects cannot work in a jail


def destinations(invocation: Invocation, catalogue: Mapping[str, Program] = BUILTIN) -> list[Destination]:
    """The remote hosts an invocation names literally, as it would connect to them."""
    name = invocation.name
    args = invocation.args
    entry = catalogue.get(name)
    network = entry.network if entry is not None else ""
    found: list[Destination] = []
    if network in URL_KINDS:
        skip = False
        own_proxy = False
        for word in args:
            value = word.value
            if skip:
                skip = False
                continue
            option, equals, attached = value.partition("=")
            if own_proxy or (option in _OWN_PROXY and equals):
                proxy = attached if not own_proxy else value
                found += _url(proxy if "://" in proxy else "http://" + proxy, proxied=False) if word.literal else []
                own_proxy = False
                continue
            if option in _OWN_PROXY:
                own_proxy = True
                continue
            if value.startswith("-"):
                if option in _NOT_DESTINATION:
                    skip = not equals
                elif equals and word.literal:  # --url=..., --index-url=..., --registry=...
                    found += _url(attached, proxied=True)
                continue  # `--index-url URL`: the URL comes next, as an operand
            if word.literal:
                found += _url(value, proxied=True)
    elif name == "git":
        operands = [w for w in args if not w.value.startswith("-")]
        if operands and operands[0].value in _GIT_REMOTE:
            for word in operands[1:]:
                if word.literal:
                    found += _git_remote(word.value)
    elif network == "raw":
        found += _raw(name, [w.value for w in args if w.literal])
    elif network == "ssh":
        found += _over_ssh(name, args, catalogue)
    elif name == "tar":
        found += _tar_remote(args)
    for redirect in invocation.command.redirects:  # bash's own sockets: `exec 3<>/dev/tcp/HOST/PORT`
        target = redirect.target
        if target is not None and target.literal and is_socket_path(target.value):
            parts = target.value.split("/")  # "", "dev", "tcp", HOST, PORT
            if len(parts) == 5 and parts[3]:
                found.append(Destination(parts[3].lower(), int(parts[4]) if parts[4].isdigit() else 0, False))
    return found


def is_socket_path(path: str | None) -> bool:
    """/dev/tcp/HOST/PORT and /dev/udp/HOST/PORT: bash connects a socket there, no file is written."""
    return path is not None and (path.startswith("/dev/tcp/") or path.startswith("/dev/udp/"))


def check(found: list[Destination], invocation: Invocation, network: Any) -> tuple[str, str, str] | None:
    """(rule, reason, alternative) for the first destination the jail cannot reach, or None."""
    for destination in found:
        host, port = destination.host, destination.port
        if _is_loopback(host):
            continue  # the jail's own loopback: its proxy port, its forwards, its own servers
        where = f"{host}:{port}"
        if network.mode != "proxy":
            return ("network-none", f"{invocation.name} connects to {where}, but this jail has no network "
                    '(network.mode = "none")', 'use a profile with network.mode = "proxy" and the host in '
                    "network.allow, or work offline")
        if not destination.proxied:
            return ("network-direct", f"{invocation.name} connects to {where} by itself; the jail's only way out "
                    "is its HTTP proxy, for the hosts in network.allow",
                    destination.hint or "fetch over https with curl or wget, from a host in network.allow")
        from jail.policy.hostpatterns import allow_fix, compiled, host_name

        host = host_name(host) or host  # bücher.example as the proxy is asked for it: xn--bcher-kva.example
        where = f"{host}:{port}"
        allow, deny = compiled(tuple(network.allow), tuple(network.deny))
        denied = next((p.pattern for p in deny if p.matches(host, port)), None)
        if denied is not None:
            return ("network-deny", f"{where} is refused by network.deny ({denied!r}) of the profile; the jail's "
                    "proxy would refuse it", "do without it, or change network.deny in the profile")
        if not any(p.matches(host, port) for p in allow):
            return ("network-allow", f"{where} is not in the profile's network.allow; the jail's proxy would "
                    "refuse it", f"do without it; {allow_fix(host, port)}")
    return None


def unlisted(line: str, cwd: str, env: Any, network: Any) -> list[tuple[str, int]] | None:
    """The proxied hosts off the allow-list the line connects to (ASCII names, as the proxy is asked for
    them), or None if it also goes where no allow-list entry could take it (not a name, network.deny, direct)."""
    from jail.policy.hostpatterns import host_name

    from .resolve import resolve

    found: list[tuple[str, int]] = []
    for invocation in resolve(line, cwd, env).invocations:
        for destination in destinations(invocation):
            problem = check([destination], invocation, network)
            if problem is None:
                continue
            name = host_name(destination.host)
            if problem[0] != "network-allow" or name is None:
                return None
            if (name, destination.port) not in found:
                found.append((name, destination.port))
    return found


def _url(text: str, proxied: bool) -> list[Destination]:
    text = text.removeprefix("git+")
    if "://" not in text or text.startswith("file:"):
        return []
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return []
    if not parts.hostname:
        return []
    scheme = parts.scheme.lower()
    if scheme in ("ssh", "git", "sftp", "scp", "telnet"):
        return [Destination(parts.hostname.lower(), port or _DEFAULT_PORTS[scheme], False, _OVER_HTTPS)]
    return [Destination(parts.hostname.lower(), port or _DEFAULT_PORTS.get(scheme, 80), proxied)]


def _git_remote(text: str) -> list[Destination]:
    if "://" in text:
        return _url(text, proxied=True)
    head, colon, _path = text.partition(":")
    if colon and "@" in head and "/" not in head:  # user@host:path, git's scp-like ssh form
        return [Destination(head.rpartition("@")[2].lower(), 22, False, _OVER_HTTPS)]
    return []


def _over_ssh(name: str, args: tuple[Word, ...], catalogue: Mapping[str, Program]) -> list[Destination]:
    """ssh [user@]HOST, scp/rsync/sshfs [user@]HOST:PATH, rsync HOST::MODULE and rsync://HOST/."""
    rules = grammar(name, catalogue)
    port_option = ("-P",) if name in ("scp", "sftp") else ("-p", "--port")
    port = 0
    for option, value in given(args, rules):  # `-p 2222`, `-p2222`, `--port=873`: the last one counts
        if option in port_option and value is not None and value.value.isdigit():
            port = int(value.value)
    named = [w.value for w in operands(args, rules) if w.literal]
    if name in ("ssh", "slogin", "autossh", "mosh", "sftp"):
        remote = named[:1]  # the host; what follows is the command run there
    else:
        remote = [v for v in named if "::" in v or v.startswith("rsync://") or _remote_path(v)]
    found: list[Destination] = []
    for value in remote:
        if "://" in value:
            found += [d._replace(hint=_OVER_SSH) for d in _url(value, proxied=False)]
        else:
            daemon = name == "rsync" and "::" in value and not value.startswith("[")
            host = _remote_host(value, "::" if daemon else ":")
            found += [Destination(host, port or (873 if daemon else 22), False, _OVER_SSH)] if host else []
    return found


def _remote_path(value: str) -> bool:
    """[user@]HOST:PATH, as scp, rsync, sshfs and tar read it: a colon before any slash."""
    if value.startswith("["):  # [::1]:path
        return "]:" in value
    head, colon, _ = value.partition(":")
    return bool(colon and head) and "/" not in head


def _remote_host(value: str, separator: str) -> str:
    """The HOST of [user@]HOST{separator}PATH, or of [user@][IPV6]:PATH."""
    head = value.partition(separator)[0]
    address = value[len(head.rpartition("@")[0]) + 1:] if "@" in head else value
    if address.startswith("["):
        return address[1:].partition("]")[0].lower()
    return address.partition(separator)[0].lower()


def _tar_remote(args: tuple[Word, ...]) -> list[Destination]:
    """`tar -xf HOST:PATH` reads or writes the archive on HOST through rsh or ssh (unless --force-local)."""
    values = [w.value for w in args if w.literal]
    if "--force-local" in values:
        return []
    archive = None
    for index, value in enumerate(values):
        if value.startswith("--file="):
            archive = value.split("=", 1)[1]
        elif value == "--file" or (value.startswith("-") and not value.startswith("--") and value.endswith("f")) \
                or (index == 0 and not value.startswith("-") and value.endswith("f")):
            archive = values[index + 1] if index + 1 < len(values) else None
    if archive is None or not _remote_path(archive):
        return []
    return [Destination(_remote_host(archive, ":"), 22, False, _OVER_SSH)]


def _raw(name: str, values: list[str]) -> list[Destination]:
    """nc host port, telnet host, socat TCP:host:port, openssl s_client -connect host:port."""
    if name == "openssl":
        for index, value in enumerate(values[:-1]):
            if value == "-connect":
                return _host_port(values[index + 1], 443)
        return []
    if name == "socat":
        found = []
        for value in values:
            kind, _, rest = value.partition(":")
            if kind.upper() in ("TCP", "TCP4", "TCP6", "TCP-CONNECT", "TCP4-CONNECT", "TCP6-CONNECT", "OPENSSL",
                                "SSL", "UDP", "UDP4", "UDP6", "UDP-CONNECT", "UDP-SENDTO"):
                found += _host_port(rest.split(",")[0], 0)
        return found
    if name in _REMOTE_SHELL_PORTS:  # rlogin -l USER -p PORT HOST; rsh [-l USER] HOST COMMAND
        port, index = _REMOTE_SHELL_PORTS[name], 0
        while index < len(values) and values[index].startswith("-"):
            if values[index] == "-p" and index + 1 < len(values) and values[index + 1].isdigit():
                port = int(values[index + 1])
            index += 2 if values[index] in ("-l", "-p", "-e", "-k") else 1
        return [Destination(values[index].lower(), port, False)] if index < len(values) else []
    operands = [v for v in values if not v.startswith("-")]
    if name in ("nc", "ncat", "netcat") and any(v.startswith("-") and "l" in v[1:] and not v.startswith("--")
                                                 for v in values):
        return []  # listening, not connecting
    if not operands:
        return []
    port = int(operands[1]) if len(operands) > 1 and operands[1].isdigit() else (23 if name == "telnet" else 0)
    return [Destination(operands[0].lower(), port, False)]


def _host_port(text: str, default: int) -> list[Destination]:
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":")
    else:
        host, _, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    return [Destination(host.lower(), int(port) if port.isdigit() else default, False)] if host else []


def _is_loopback(host: str) -> bool:
    host = host.strip("[]")
    return host in _LOOPBACK or host.startswith("127.") or host.endswith(".localhost")
