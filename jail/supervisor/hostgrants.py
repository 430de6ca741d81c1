"""The hosts off the network allow-list a person answered for this session: asked once each, remembered.

A yes grows this session's allow-list, in the proxy (which then lets the host through for the rest of the
run) and in the interposer's policy (which then lets lines naming it run); a no is remembered too, and the
host is denied without asking again. Hosts come from jail-made text: only those hostpatterns.host_name
accepts are ever asked about, and one question per host and port.
"""

from __future__ import annotations

import _thread
from collections.abc import Callable
from typing import Any

MAX_HOSTS = 64  # answers kept per session; past that, a host off the list is denied without asking


class HostGrants:
    def __init__(self, proxy: Any) -> None:
        self.proxy = proxy  # the session's jail.supervisor.proxy.Proxy
        self._lock = _thread.allocate_lock()
        self._asking = _thread.allocate_lock()  # one question at a time: two lines naming a host get one
        self.answers: dict[tuple[str, int], tuple[bool, str]] = {}  # (allowed, how it was decided)

    @staticmethod
    def pattern(host: str, port: int) -> str | None:
        """The allow-list entry for host:port, or None when none can be written: not a name, or an IPv6
        address, whose entry cannot name a port (a yes for port 443 would let every port through)."""
        from jail.policy.hostpatterns import host_name  # here: made before the jail's fork, used after it

        name = host_name(host)
        if name is None or name != host or ":" in name:
            return None
        return f"{name}:{port}"

    def answer(self, host: str, port: int) -> tuple[bool, str] | None:
        with self._lock:
            return self.answers.get((host, port))

    def ask_once(self, host: str, port: int, ask: Callable[[str], tuple[bool, str]]) -> tuple[bool, str, bool]:
        """(allowed, how, asked now): the answer kept for host:port, or the person's, asked now and kept.

        A host that is no name, and any past the MAX_HOSTS-th, is refused unasked."""
        pattern = self.pattern(host, port)
        if pattern is None:
            return False, "not a host name that can be allowed", False
        with self._asking:
            known = self.answer(host, port)
            if known is not None:
                return (*known, False)
            with self._lock:
                if len(self.answers) >= MAX_HOSTS:
                    return False, f"more than {MAX_HOSTS} hosts were asked about in this session", False
            allowed, how = ask(f"let this session reach {host}:{port}?")
            with self._lock:
                self.answers[(host, port)] = (allowed, how)
            if allowed:
                self.proxy.grant(pattern)
            return allowed, how, True

    def allowed(self) -> tuple[str, ...]:
        """The allow-list entries a person added in this session."""
        with self._lock:
            return tuple(p for (h, port), (yes, _how) in self.answers.items() if yes and (p := self.pattern(h, port)))
