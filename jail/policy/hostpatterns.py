"""The network allow-list's host patterns (`pypi.org`, `*.npmjs.org:443`), one reading for the profile
that validates them, the proxy that enforces them and the interposer that denies a line before it runs."""

from __future__ import annotations

import fnmatch
import functools
import ipaddress
import re

DEFAULT_PORTS = (80, 443)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# A last label that makes a host an IPv4 address in a shorthand (WHATWG URL's "ends in a number"): no TLD is one.
_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*")


def host_name(text: str) -> str | None:
    """`text` as a host to name in a fix (`--allow HOST`): an IP address, or a DNS name in its ASCII (IDNA)
    form; None for anything else (a port, a wildcard, a space, a control or bidi character): jail-made text."""
    host = text.lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(host.removeprefix("[").removesuffix("]")))
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")  # the standard library's IDNA (nameprep refuses bidi)
    except UnicodeError:
        return None
    if len(ascii_host) > 253 or not all(_LABEL.fullmatch(label) for label in ascii_host.split(".")):
        return None
    if _NUMBER.fullmatch(ascii_host.rpartition(".")[2]):
        return None  # 127.1, 0x7f.1, 2130706433: an IPv4 address to curl and getaddrinfo, not a name to show
    return ascii_host


def allow_fix(host: str, port: int) -> str:
    """How to let a run reach host:port: the run flag and the profile key, or why neither can."""
    name = host_name(host)
    if name is None:
        return "no fix: the host is not a valid name or address"
    if port in DEFAULT_PORTS:
        flag = name
    elif ":" in name:
        return f"no fix: an IPv6 address can be allowed on ports 80 and 443 only, not {port}"
    else:
        flag = f"{name}:{port}"
    return f'to let it through, run with --allow {flag} or add "{flag}" to network.allow in the profile'


def parse(pattern: str) -> tuple[str, int | None]:
    """(host, port or None), lower-cased; ValueError naming what is wrong (the profile shows it)."""
    host, _, port = pattern.rpartition(":") if pattern.count(":") == 1 else (pattern, "", "")
    if not host or "/" in host or " " in host or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        raise ValueError(f"{pattern!r} is not a destination: write host, *.domain, or either with :port")
    if "*" in host and not (host.startswith("*.") and "*" not in host[2:]):
        raise ValueError(f"{pattern!r}: a wildcard may only lead, as in *.pythonhosted.org")
    return host.lower(), int(port) if port else None


class HostPattern:
    """A host and port matched against the profile's allow and deny patterns."""

    def __init__(self, pattern: str, any_port: bool = False) -> None:
        """Without a port, an allow pattern means 80 and 443, a deny pattern every port."""
        self.pattern = pattern
        self.host, port = parse(pattern)
        self.ports: tuple[int, ...] | None = (port,) if port else None if any_port else DEFAULT_PORTS

    def matches(self, host: str, port: int) -> bool:
        if self.ports is not None and port not in self.ports:
            return False
        if self.host.startswith("*."):
            return fnmatch.fnmatchcase(host, self.host) or host == self.host[2:]
        return host == self.host


@functools.lru_cache(maxsize=16)
def compiled(allow: tuple[str, ...], deny: tuple[str, ...]) -> tuple[tuple[HostPattern, ...], tuple[HostPattern, ...]]:
    """A profile's network.allow and network.deny as patterns, read once per profile (not per judged line)."""
    return tuple(HostPattern(p) for p in allow), tuple(HostPattern(p, any_port=True) for p in deny)
