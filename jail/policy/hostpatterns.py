"""The network allow-list's host patterns (`pypi.org`, `*.npmjs.org:443`), one reading for the proxy
that enforces them and the interposer that denies a line before it runs."""

from __future__ import annotations

import fnmatch

DEFAULT_PORTS = (80, 443)


class HostPattern:
    """A host and port matched against the profile's allow and deny patterns."""

    def __init__(self, pattern: str, any_port: bool = False) -> None:
        """Without a port, an allow pattern means 80 and 443, a deny pattern every port."""
        host, _, port = pattern.rpartition(":") if pattern.count(":") == 1 else (pattern, "", "")
        self.pattern = pattern
        self.host = host.lower()
        self.ports: tuple[int, ...] | None = (int(port),) if port else None if any_port else DEFAULT_PORTS

    def matches(self, host: str, port: int) -> bool:
        if self.ports is not None and port not in self.ports:
            return False
        if self.host.startswith("*."):
            return fnmatch.fnmatchcase(host, self.host) or host == self.host[2:]
        return host == self.host
