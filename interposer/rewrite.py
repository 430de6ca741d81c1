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
- `host-trash` (the hook, where no jail's rm moves anything): `rm -rf src` and
  `unlink f` become `shelljail trash put -w WORKSPACE -f -- src`, and find's
  `-delete` becomes `-exec shelljail trash put -w WORKSPACE -f -- {} +`: moved to
  the trash under the jail's trash rules, restorable with `shelljail trash restore`.
  Only rm's own options (-f, -r, -R, -d, -v and their long forms) are known; any
  other leaves the rule's own decision.
"""

from __future__ import annotations

import shlex

from jail.recovery.snapshots import snapshot_script

from .resolve import Invocation

_RM_OPTIONS = frozenset("frRdv")
_RM_LONG = frozenset({"--force", "--recursive", "--dir", "--verbose"})


def applicable(kind: str, invocation: Invocation) -> bool:
    """Whether `kind` can be written into the line for this program."""
    command = invocation.command
    if command.span is None or invocation.via or command.context or len(command.word_spans) != len(command.argv):
        return False
    words = [text for _start, _end, text in command.word_spans]
    if kind == "trash" or (kind == "host-trash" and invocation.name == "find"):
        return invocation.name == "find" and words[0] in ("find", "/usr/bin/find", "/bin/find") and \
            "-delete" in words and _first_expression(invocation) is not None
    if kind == "host-trash":
        return invocation.name in ("rm", "unlink") and words[0] in (
            invocation.name, f"/bin/{invocation.name}", f"/usr/bin/{invocation.name}") and \
            _rm_operands(invocation) is not None and _only_spaces_between(invocation)
    if invocation.name != "git" or not words or words[0] not in ("git", "/usr/bin/git", "/bin/git"):
        return False
    if len(words) < 2 or words[1].startswith("-"):
        return False  # git -C DIR, git -c k=v ...: the snapshot would look at another repository
    if kind == "force-with-lease":
        forcing = [w for w in words[2:] if w in ("-f", "--force")]
        others = {"--mirror", "--delete", "-d", "--prune"} & set(words[2:])
        return len(forcing) >= 1 and not others and not any(w.startswith("+") or w.startswith(":") for w in words)
    return kind == "snapshot"


def apply(line: str, rewrites: list[tuple[str, Invocation]], host_workspace: str | None = None) -> str:
    """The line with each (kind, invocation) rewritten in place, the last first so offsets hold.
    `host_workspace`: judged for the host (the hook), where deletes go through `shelljail trash put`."""
    data = line.encode("utf-8", "surrogateescape")  # as parse gave tree-sitter the line: the spans' bytes
    put = f"shelljail trash put -w {shlex.quote(host_workspace or '.')}".encode("utf-8", "surrogateescape")
    done: set[tuple[int, int]] = set()  # a command judged in two directories (parse: a cd that may fail) is
    for kind, invocation in sorted(rewrites, key=lambda r: -(r[1].command.span or (0, 0))[0]):  # one rewrite
        start, end = invocation.command.span or (0, 0)
        if invocation.command.span is not None:
            if (start, end) in done:
                continue
            done.add((start, end))
        original = data[start:end].decode("utf-8", "surrogateescape")
        if kind == "snapshot":
            replacement = f"{{ {snapshot_script(original)} && {original}; }}".encode("utf-8", "surrogateescape")
            data = data[:start] + replacement + data[end:]
        elif kind == "host-trash" and invocation.name != "find":
            spans = invocation.command.word_spans
            operands = _rm_operands(invocation) or []
            kept = b" ".join(data[spans[i][0]:spans[i][1]] for i in operands)
            force = b" -f" if _forced(invocation) else b""  # rm -f: a missing path is no error
            data = data[:spans[0][0]] + put + force + b" --" + (b" " + kept if kept else b"") + data[spans[-1][1]:]
        elif kind in ("trash", "host-trash"):
            spans = invocation.command.word_spans
            remover = (put + b" -f --" if host_workspace is not None or kind == "host-trash" else b"rm -d -f --") \
                + b" {} +"
            for word_start, word_end, text in reversed(spans):
                if text == "-delete":
                    data = data[:word_start] + b"-exec " + remover + data[word_end:]
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


def _rm_operands(invocation: Invocation) -> list[int] | None:
    """The indexes (in argv) of rm's operands, or None when it has an option `trash put` does not emulate
    (-i, -I, --no-preserve-root...): then the rule's own decision holds."""
    found, options_done = [], False
    for index, word in enumerate(invocation.command.argv[1:], start=1):
        text = word.value
        if not options_done and text == "--":
            options_done = True
        elif not options_done and text.startswith("--"):
            if text not in _RM_LONG:
                return None
        elif not options_done and text.startswith("-") and len(text) > 1:
            if invocation.name == "unlink" or not set(text[1:]) <= _RM_OPTIONS:
                return None
        else:
            found.append(index)
    return found


def _forced(invocation: Invocation) -> bool:
    for word in invocation.command.argv[1:]:
        if word.value == "--":
            return False
        if word.value == "--force" or (word.value.startswith("-") and not word.value.startswith("--")
                                       and "f" in word.value):
            return True
    return False


def _only_spaces_between(invocation: Invocation) -> bool:
    """Nothing but blanks between the command's words (no redirection in the middle that a rewrite would drop)."""
    command = invocation.command
    if command.span is None:
        return False
    data = command.text.encode("utf-8", "surrogateescape")
    base = command.span[0]
    spans = command.word_spans
    return all(not data[spans[i][1] - base:spans[i + 1][0] - base].strip() for i in range(len(spans) - 1))
