"""The one error type a user sees (what failed, and what to do about it), and every exit status of a run."""

from __future__ import annotations

EXIT_REFUSED = 1  # a command other than run refused, or stopped partway: said in one line, nothing lost
EXIT_TIMEOUT = 124  # the wall time ran out: everything in the jail was killed
EXIT_SETUP = 125  # the jail could not be set up (a one-line reason and a hint)
EXIT_NOT_EXECUTABLE = 126  # not executable, or a command the interposer denied
EXIT_NOT_FOUND = 127  # command not found
EXIT_STOPPED = 137  # stopped: shelljail stop, Ctrl-C, or a limit


class JailError(Exception):
    """A failure to set up or run the jail, reported on one line with a hint."""

    def __init__(self, what: str, hint: str = "", code: int = EXIT_SETUP) -> None:
        super().__init__(what)
        self.what = what
        self.hint = hint
        self.code = code  # the exit status shelljail ends with

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
