"""Dry runs: which command lines only read, and what the others would have done.

In `run --dry-run` the workspace is mounted read-only, and a command line
runs only when every program in it is known to only read (`ls`, `cat`,
`grep`, `git status`, ...) and it writes and deletes nothing; any other line
is reported, not run: what it would delete and write, and how it was judged.
"""

from __future__ import annotations

from typing import Any

from jail.policy.paths import SCRATCH

READ_ONLY = frozenset({
    "ls", "cat", "head", "tail", "less", "more", "grep", "egrep", "fgrep", "rg", "ag", "ack", "wc", "sort", "uniq",
    "cut", "tr", "nl", "column", "fold", "fmt", "od", "xxd", "hexdump", "strings", "file", "stat", "du", "df",
    "tree", "find", "locate", "which", "whereis", "type", "command", "echo", "printf", "pwd", "true", "false",
    "test", "[", "[[", "id", "whoami", "groups", "date", "uname", "hostname", "env", "printenv", "basename",
    "dirname", "realpath", "readlink", "diff", "cmp", "comm", "md5sum", "sha1sum", "sha256sum", "sha512sum",
    "base64", "jq", "yq", "awk", "gawk", "mawk", "sed", "seq", "sleep", "ps", "pgrep", "top", "free", "uptime",
    "lsof", "cd", "export", "set", "unset", "local", "declare", "read", "shift", ":", "tldr", "man", "info",
})
GIT_READ_ONLY = frozenset({"status", "log", "diff", "show", "blame", "ls-files", "ls-tree", "rev-parse",
                           "describe", "shortlog", "grep", "cat-file", "rev-list", "reflog", "branch", "tag",
                           "remote", "config", "help", "version", "whatchanged", "name-rev", "for-each-ref"})
_WRITING_OPTIONS = frozenset({"-delete", "-exec", "-execdir", "-ok", "-okdir", "-fprint", "-fprint0", "-fprintf",
                              "-fls", "-i", "--in-place", "-D", "-d", "--delete", "-m", "--move", "-a", "--add",
                              "--unset", "--replace-all", "--rename-section", "--remove-section", "-f", "--force"})


def _lasting(paths: list[str | None], workspace: str) -> list[str]:
    """The paths whose change would outlive the run: all but the jail's private scratch space."""
    def scratch(path: str) -> bool:
        inside = path == workspace or path.startswith(workspace + "/")
        return not inside and any(path == s or path.startswith(s + "/") for s in SCRATCH)

    return [p or "(unknown)" for p in paths if p is None or not scratch(p)]


def only_reads(commands: list[dict[str, Any]], opaque: bool, workspace: str) -> bool:
    """Whether every program of a judged line only reads (from the judge's `commands`)."""
    if opaque or not commands:
        return not opaque
    for command in commands:
        argv = command["argv"]
        if _lasting(command["deletes"], workspace) or _lasting(command["writes"], workspace):
            return False
        name, args = argv[0], argv[1:]
        if name == "git":
            operands = [a for a in args if not a.startswith("-")]
            if not operands or operands[0] not in GIT_READ_ONLY or any(a in _WRITING_OPTIONS for a in args):
                return False
            continue
        if name not in READ_ONLY or any(a in _WRITING_OPTIONS or a.startswith("--in-place") for a in args):
            return False
    return True


def would(decision: Any, workspace: str) -> str:
    """What a line would have done, for the report."""
    deleted = [p for c in decision.commands for p in _lasting(c["deletes"], workspace)]
    written = [p for c in decision.commands for p in _lasting(c["writes"], workspace)]
    programs = ", ".join(dict.fromkeys(c["argv"][0] for c in decision.commands)) or "nothing"
    parts = [f"run {programs}"]
    if deleted:
        parts.append(f"delete {', '.join(deleted[:5])}")
    if written:
        parts.append(f"write {', '.join(written[:5])}")
    verdict = decision.decision if decision.decision != "allow" else "allowed"
    rule = f", rule {decision.rule}" if decision.rule else ""
    return f"would {'; '.join(parts)} ({verdict}{rule})"
