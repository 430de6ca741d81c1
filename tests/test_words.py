"""Word expansion: quote removal, ANSI-C strings, tilde, braces and parameters, as bash does them."""

import pytest

from interposer.parse import _tree_sitter
from interposer.words import Expander, decode_ansi_c

ENV = {"HOME": "/home/u", "PWD": "/w/proj", "OLDPWD": "/w", "DIR": "build"}


def expand(word: str) -> list[tuple[str, bool, bool]]:
    """The arguments `word` becomes as the second word of a command."""
    tree = _tree_sitter().parse(f"cmd {word}".encode())
    command = tree.root_node.children[0]
    assert not tree.root_node.has_error, word
    out = []
    for node in command.children[1:]:
        out += [(w.value, w.literal, w.glob) for w in Expander(ENV).words(node)]
    return out


@pytest.mark.parametrize("word, value", [
    ("plain", "plain"),
    ("'single quoted $HOME'", "single quoted $HOME"),
    ('"double $HOME"', "double /home/u"),
    ('"esc \\$HOME \\" \\\\ \\a"', 'esc $HOME " \\ \\a'),
    ("\\rm", "rm"),
    ("r''m", "rm"),
    ('r""m', "rm"),
    ("'r'm", "rm"),
    ("x\\ y", "x y"),
    ("$'\\x72\\x6d'", "rm"),
    ("$'\\162\\155'", "rm"),
    ("$'\\u0072m'", "rm"),
    ("$'a\\tb'", "a\tb"),
    ("$'\\cA'", "\x01"),
    ("$'it\\'s'", "it's"),
    ("$'\\e[0m'", "\x1b[0m"),
    ("~", "/home/u"),
    ("~/x", "/home/u/x"),
    ("~+/x", "/w/proj/x"),
    ("~-", "/w"),
    ("'~'", "~"),
    ("$HOME/.ssh", "/home/u/.ssh"),
    ("${HOME}/x", "/home/u/x"),
    ("$DIR", "build"),
    ('"$PWD"/a', "/w/proj/a"),
])
def test_literal_words(word: str, value: str) -> None:
    assert expand(word) == [(value, True, False)]


@pytest.mark.parametrize("word, values", [
    ("a{b,c}d", ["abd", "acd"]),
    ("{1..3}", ["1", "2", "3"]),
    ("{a..c}", ["a", "b", "c"]),
    ("{1..10..4}", ["1", "5", "9"]),
    ("{x,y}{1,2}", ["x1", "x2", "y1", "y2"]),
    ("{a,{b,c}}", ["a", "b", "c"]),
    ("/tmp/{foo,bar}/x", ["/tmp/foo/x", "/tmp/bar/x"]),
    ("'{a,b}'", ["{a,b}"]),
    ('"{a,b}"', ["{a,b}"]),
    ("{single}", ["{single}"]),
    ("r{m,x}", ["rm", "rx"]),
])
def test_brace_expansion(word: str, values: list[str]) -> None:
    assert [v for v, _, _ in expand(word)] == values


@pytest.mark.parametrize("word", ["$UNKNOWN", "${UNKNOWN}", "${X:-/}", "${HOME%/*}", "$(whoami)", "`id`",
                                  "$((1+2))", '"$UNKNOWN"/x', "$1", "$@", "<(ls)"])
def test_unknowable_words_are_not_literal(word: str) -> None:
    assert all(not literal for _, literal, _ in expand(word))


@pytest.mark.parametrize("word, glob", [("*.c", True), ("'*.c'", False), ("\\*.c", False), ("a?b", True),
                                        ("[ab]", True), ('"*"', False), ("x", False)])
def test_globs(word: str, glob: bool) -> None:
    assert expand(word)[0][2] is glob


def test_ansi_c_decoder_directly() -> None:
    assert decode_ansi_c(r"\x41\102\u263a\n\\") == "AB\u263a\n\\"
    assert decode_ansi_c(r"\q") == "\\q"  # unknown escapes stay as written
