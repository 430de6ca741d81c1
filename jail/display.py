"""The one way jail-made text reaches a person: controls and invisible characters made visible.

A command line, a file name, a commit subject or a process name made in a jail can carry ESC
sequences that move the cursor or redraw a question, CR that overwrites a line, SGR 8 that
hides text, and bidi overrides (U+202E) or zero-width characters that make a screen or a page
show something other than what will run. Every terminal view and the dashboard pass such text
through `shown`, which keeps printable text as it is and writes every other character as an
escape a person can read (`\\x1b`, `\\u202e`). Bytes that were not UTF-8 (surrogate-escaped
by os.fsdecode) are shown as the byte they were (`\\xff`).
"""

from __future__ import annotations

import re
import unicodedata

# Categories never shown raw: controls (C0, DEL, C1), format characters (bidi controls,
# zero-width joiners and spaces, BOM, tags, soft hyphen), surrogates, line and paragraph
# separators, private use and unassigned code points (which a terminal may draw as anything).
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_CANDIDATE = re.compile(r"[^\x20-\x7e]")  # the fast path: plain ASCII text needs no look-up


def _escape(character: str) -> str:
    code = ord(character)
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for a byte that was not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _visible(match: re.Match[str], keep: str) -> str:
    character = match.group()
    if character in keep:
        return character
    if unicodedata.category(character) in _HIDDEN_CATEGORIES:
        return _escape(character)
    return character


def shown(text: str | bytes | None, keep: str = "") -> str:
    """`text` safe to print or put in a page: every control or invisible character escaped.

    `keep` names characters to leave as they are (e.g. "\\n" for a multi-line preview, whose
    lines are then shown one under another). Bytes are decoded as file names are.
    """
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    elif not isinstance(text, str):
        text = str(text)
    return _CANDIDATE.sub(lambda match: _visible(match, keep), text)


def shown_lines(text: str | bytes | None) -> str:
    """Multi-line jail-made text (a diff, a preview): newlines kept, every other control escaped."""
    return shown(text, keep="\n")


def shown_diff(text: str | bytes | None) -> str:
    """A diff or a file's text: newlines and tabs kept (a tab only moves the cursor right over blank
    cells of a fresh line, and Makefiles and Go code are full of them), every other control escaped."""
    return shown(text, keep="\n\t")
