"""The small intermediate representation the parsers produce and the judge reads.

A command line becomes a flat list of simple commands, each carrying what
the judge needs of its surroundings: the directory it runs in, what feeds
its standard input, its redirections, and how it is reached (inside
`$(...)`, `bash -c`, `find -exec`, ...). Loops, conditionals, functions and
subshells are walked as if every branch ran: a judge must see every
command that might.
"""

from typing import NamedTuple

from .words import Word


class Redirect(NamedTuple):
    op: str  # ">", ">>", ">|", "&>", "&>>", "<", "<>", ">&", "<&", "<<", "<<-", "<<<"
    fd: int | None
    target: Word | None  # None for a here-document
    body: str | None = None  # the text of a here-document or here-string

    @property
    def writes_file(self) -> bool:
        if self.op in (">&", "<&"):
            return self.target is not None and not self.target.value.isdigit() and self.target.value != "-"
        return self.op in (">", ">>", ">|", "&>", "&>>", "<>")


class Command(NamedTuple):
    argv: tuple[Word, ...]
    assignments: tuple[tuple[str, Word], ...]
    redirects: tuple[Redirect, ...]
    cwd: str  # where it runs, after any `cd` earlier on the line
    piped_from: tuple[str, ...]  # names of the commands whose output is its standard input
    context: tuple[str, ...]  # how it is reached, outermost first: "$(...)", "bash -c", "find -exec"
    text: str
    piped_text: str | None = None  # what its standard input holds, when a literal echo/printf feeds it
    # Where it is in the judged line (UTF-8 byte offsets), and each argv word as written there, for
    # rewrites; only for commands of the line itself (not inside `bash -c '...'`), by tree-sitter.
    span: tuple[int, int] | None = None
    word_spans: tuple[tuple[int, int, str], ...] = ()


class Parsed(NamedTuple):
    commands: tuple[Command, ...]
    opaque: tuple[str, ...]  # why parts of the line could not be known
    parser: str  # "tree-sitter", "bashlex", or "none" when neither could read it
    error: str | None = None
    hazards: tuple[str, ...] = ()  # dangerous whatever the rules say: "fork bomb"
