"""Safer forms of risky git commands, written into the command line the shell will run.

A rule with `rewrite` names one; it applies to a command of the judged line
itself (tree-sitter gives its place in the text), reached directly (no wrapper,
not inside `bash -c '...'` or `$(...)`), whose words are plain. Otherwise the
rule's own decision holds: a rewrite is never a reason to run something as is.

- `snapshot`: before `git reset --hard`, `git clean -f`, `git checkout -- .`,
  `git restore .`, `git stash drop/clear`, the work tree (untracked files
  included, ignored ones not) is committed to `refs/shelljail/snapshots/N`
  with a temporary index, touching neither the index nor HEAD; its parents are
  HEAD and every stash, so a dropped stash stays reachable. The command runs
  only if that worked. `shelljail snapshots` and `rollback N` use them.
  It runs in the jail, with the agent's own git: a repository's hooks and
  filters run where the agent's commands already do.
- `force-with-lease`: `git push --force` (or `-f`) becomes
  `git push --force-with-lease`, which refuses to overwrite work it has not seen.
- `trash`: `find ... -delete` becomes `find ... -depth ... -exec rm -d -f -- {} +`:
  the same files in the same order (contents before their directory), removed
  by the jail's rm, which moves workspace files to the trash (jail/recovery/trash.py).
"""

from __future__ import annotations

from jail.recovery.snapshots import snapshot_script

from .resolve import Invocation


def applicable(kind: str, invocation: Invocation) -> bool:
    """Whether `kind` can be written into the line for this program."""
    command = invocation.command
    if command.span is None or invocation.via or command.context or len(command.word_spans) != len(command.argv):
        return False
    words = [text for _start, _end, text in command.word_spans]
    if kind == "trash":
        return invocation.name == "find" and words[0] in ("find", "/usr/bin/find", "/bin/find") and \
            "-delete" in words and _first_expression(invocation) is not None
    if invocation.name != "git" or not words or words[0] not in ("git", "/usr/bin/git", "/bin/git"):
        return False
    if len(words) < 2 or words[1].startswith("-"):
        return False  # git -C DIR, git -c k=v ...: the snapshot would look at another repository
    if kind == "force-with-lease":
        forcing = [w for w in words[2:] if w in ("-f", "--force")]
        others = {"--mirror", "--delete", "-d", "--prune"} & set(words[2:])
        return len(forcing) >= 1 and not others and not any(w.startswith("+") or w.startswith(":") for w in words)
    return kind == "snapshot"


def apply(line: str, rewrites: list[tuple[str, Invocation]]) -> str:
    """The line with each (kind, invocation) rewritten in place, the last first so offsets hold."""
    data = line.encode("utf-8", "surrogateescape")  # as parse gave tree-sitter the line: the spans' bytes
    for kind, invocation in sorted(rewrites, key=lambda r: -(r[1].command.span or (0, 0))[0]):
        start, end = invocation.command.span or (0, 0)
        original = data[start:end].decode("utf-8", "surrogateescape")
        if kind == "snapshot":
            replacement = f"{{ {snapshot_script(original)} && {original}; }}".encode("utf-8", "surrogateescape")
            data = data[:start] + replacement + data[end:]
        elif kind == "trash":
            spans = invocation.command.word_spans
            for word_start, word_end, text in reversed(spans):
                if text == "-delete":
                    data = data[:word_start] + b"-exec rm -d -f -- {} +" + data[word_end:]
            first = _first_expression(invocation)
            if first is not None and "-depth" not in [text for _s, _e, text in spans]:
                data = data[:spans[first][0]] + b"-depth " + data[spans[first][0]:]
        else:
            for word_start, word_end, text in reversed(invocation.command.word_spans):
                if text in ("-f", "--force"):
                    data = data[:word_start] + b"--force-with-lease" + data[word_end:]
    return data.decode("utf-8", "surrogateescape")


def _first_expression(invocation: Invocation) -> int | None:
    """The index (in argv) of find's first expression word: options and tests start after the paths."""
    argv = invocation.command.argv
    for index, word in enumerate(argv[1:], start=1):
        if word.value.startswith("-") or word.value in ("(", "!", ","):
            return index
    return None
