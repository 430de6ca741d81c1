"""The one error type a user sees: what failed, and what to do about it."""

from __future__ import annotations


class JailError(Exception):
    """A failure to set up or run the jail, reported on one line with a hint."""

    def __init__(self, what: str, hint: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.what} ({self.hint})" if self.hint else self.what


class ProfileError(JailError):
    """A profile that cannot be used: names the file, line and key."""

    def __init__(self, source: str, key: str, problem: str, line: int | None = None) -> None:
        where = f"{source}:{line}" if line else source
        where = f"{where}: {key}" if key else where
        super().__init__(f"{where}: {problem}", "fix the profile; see docs/profiles.md")
        self.source = source
        self.key = key
        self.problem = problem
        self.line = line
