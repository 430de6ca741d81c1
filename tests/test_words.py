"""Word expansion: quote removal, ANSI-C strings, tilde, braces and parameters, as bash does them."""

import pytest

from interposer.parse import _tree_sitter
from interposer.words import Expander, Word, decode_ansi_c, plain

ENV = {"HOME": "/home/u", "PWD": "/w/proj", "OLDPWD": "/w", "DIR": "build"}


def nodes(word: str) -> list:
    """The tree-sitter nodes of `word` as the second word of a command."""
    tree = _tree_sitter().parse(f"cmd {word}".encode())
    assert not tree.root_node.has_error, word
    return tree.root_node.children[0].children[1:]


def expand(word: str) -> list[tuple[str, bool, bool]]:
    """The arguments `word` becomes as the second word of a command."""
    out = []
    for node in nodes(word):
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


@pytest.mark.parametrize("word, glob", [("42", False), ("-5", False), ("src/main.rs", False), ("-la", False),
                                        ("*.c", True), ("a?b", True), ("x=1", False)])
def test_plain_words_are_their_text(word: str, glob: bool) -> None:
    """The short way (words.plain, which the walk takes for most words) gives what bash passes."""
    (node,) = nodes(word)
    found = plain(node.type, node.text.decode())
    assert found == Word(word, True, glob, word)
    assert Expander(ENV).words(node) == [found] and Expander(ENV).word(node) == found


@pytest.mark.parametrize("word", ["~", "~/x", "a{b,c}", "x\\ y", "'q'", '"$HOME"', "$DIR", "10#${DIR}"])
def test_words_that_are_not_their_text_take_the_long_way(word: str) -> None:
    (node,) = nodes(word)
    assert plain(node.type, node.text.decode()) is None


@pytest.mark.parametrize("word", ["$PWD", "${PWD}", "~+", "~+/x", '"$PWD/$DIR"', "$PWD/*", "$OLDPWD", "~-"])
def test_directory_given_apart_is_the_env_holding_it(word: str) -> None:
    """The walk hands the expander its directory apart from the env it reads live (no copy per command)."""
    without = {k: v for k, v in ENV.items() if k != "PWD"}
    for node in nodes(word):
        assert Expander(without, ENV["PWD"]).words(node) == Expander(ENV).words(node)
        assert Expander(without, ENV["PWD"]).word(node) == Expander(ENV).word(node)
    assert Expander(without, "/elsewhere").words(nodes("$PWD")[0])[0].value == "/elsewhere"
