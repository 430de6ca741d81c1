"""Secrets: injected per run, never inherited, never logged, masked in what leaves the jail.

A secret comes from the caller's environment (`NAME`), a file
(`NAME=file:PATH`) or a command run outside the jail (`NAME=cmd:COMMAND`),
given with `run --secret` or the profile's `[secrets]` table. It reaches the
jailed command as an environment variable, or, with a `:file` suffix, as
the file /run/secrets/NAME on the jail's private tmpfs (the variable
NAME_FILE then names it). Nothing is written anywhere that outlives the run.

Every secret value, and its base64 and URL-encoded forms, is replaced by
`[secret:NAME]` in the audit log and in the output the supervisor relays.
"""

from __future__ import annotations

import base64
import os
import subprocess
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from jail.errors import JailError

DIRECTORY = "/run/secrets"
MIN_LENGTH = 4  # shorter values would mask ordinary words


class Secret(NamedTuple):
    name: str
    value: str
    as_file: bool


def parse(spec: str, caller_env: Mapping[str, str]) -> Secret:
    """`NAME`, `NAME=file:PATH`, `NAME=cmd:COMMAND`, each optionally ending in `:file`."""
    as_file = spec.endswith(":file")
    if as_file:
        spec = spec[: -len(":file")]
    name, _, source = spec.partition("=")
    if not name or not (name[0].isalpha() or name[0] == "_") or not name.replace("_", "").isalnum():
        raise JailError(f"secret {spec!r}: {name!r} is not a variable name",
                        "use NAME, NAME=file:PATH or NAME=cmd:COMMAND")
    if not source:
        if name not in caller_env:
            raise JailError(f"secret {name}: not set in your environment",
                            f"export {name}=..., or use {name}=file:PATH")
        value = caller_env[name]
    elif source.startswith("file:"):
        path = os.path.expanduser(source[5:])
        try:
            with open(path) as f:
                value = f.read().rstrip("\n")
        except OSError as exc:
            raise JailError(f"secret {name}: cannot read {path}: {exc.strerror}", "fix the path") from None
    elif source.startswith("cmd:"):
        result = subprocess.run(source[4:], shell=True, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise JailError(f"secret {name}: the command exited {result.returncode}", "run it yourself to see why")
        value = result.stdout.rstrip("\n")
    else:
        raise JailError(f"secret {name}: unknown source {source!r}", "use file:PATH or cmd:COMMAND")
    if not value:
        raise JailError(f"secret {name} is empty", "a secret must have a value")
    return Secret(name, value, as_file)


def deliver(secrets: Iterable[Secret], env: dict[str, str], files: dict[str, str]) -> None:
    """Into the jailed command's environment, or onto the jail's private tmpfs."""
    for secret in secrets:
        if secret.as_file:
            path = f"{DIRECTORY}/{secret.name}"
            files[path] = secret.value + "\n"
            env[f"{secret.name}_FILE"] = path
        else:
            env[secret.name] = secret.value


class Redactor:
    """Replaces every known form of every secret with [secret:NAME]."""

    def __init__(self, secrets: Iterable[Secret]) -> None:
        forms: dict[str, str] = {}
        for secret in secrets:
            if len(secret.value) < MIN_LENGTH:
                continue
            for form in _forms(secret.value):
                forms.setdefault(form, f"[secret:{secret.name}]")
        self.forms = sorted(forms.items(), key=lambda item: -len(item[0]))  # longest first
        self.longest = max((len(form) for form, _ in self.forms), default=0)

    def __bool__(self) -> bool:
        return bool(self.forms)

    def text(self, text: str) -> str:
        for form, mask in self.forms:
            if form in text:
                text = text.replace(form, mask)
        return text

    def value(self, value: object) -> object:
        """Redact every string inside a JSON-like value (an audit event)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return value


def _forms(value: str) -> set[str]:
    raw = value.encode()
    forms = {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
    # Base64 of the secret wherever it starts in a longer text: for each of the three
    # alignments, the part of the encoding that depends on the secret alone.
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw + b"\0\0\0").decode()
        start = -(-8 * offset // 6)  # the first character whose six bits all come from the secret
        end = (8 * offset + 8 * len(raw)) // 6  # ...and the last one, exclusive
        if end - start >= 6:
            forms.add(encoded[start:end])
    forms.add(base64.b64encode(raw).decode().rstrip("="))
    return {form for form in forms if len(form) >= MIN_LENGTH}
