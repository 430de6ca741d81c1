"""A Makefile the line writes: its shell commands read off the text, and `make` judged by them (pure).

The real jail: tests/test_interposer_jail.py::test_a_makefile_the_line_writes_is_judged_before_make_runs.
"""

import pytest
from conftest import judge_policy

from interposer.judge import Policy, decide
from interposer.makefile import shell_commands

WORKSPACE = "/home/user/project"
HOME = "/home/user"


@pytest.mark.parametrize("text, commands", [
    ("all:\n\trm -rf ~\n", ["rm -rf ~"]),
    ("all: ; rm -rf ~\n", ["rm -rf ~"]),  # a recipe on the rule's line
    ("all:\n\t@-rm -rf ~\n", ["rm -rf ~"]),  # make's prefixes are not the shell's
    ("clean:\n\t$(RM) -r build\n", ["rm -f -r build"]),  # make's own variables
    ("OUT = /home/user\nclean:\n\trm -rf $(OUT) ${OUT}/x\n", ["rm -rf /home/user /home/user/x"]),
    ("A = $(B)/a\nB := /tmp\nx:\n\trm -r $(A)\n", ["rm -r /tmp/a"]),  # recursive variables expand late
    ("CC ?= gcc\nx: y.c\n\t$(CC) -c $< -o $@\n", ["cc -c y.c -o x"]),  # automatic variables; ?= on make's own
    ("x:\n\techo $$HOME $(UNSET)\n", ["echo $HOME ${UNSET}"]),  # unknown: a variable the judge cannot know
    ("x:\n\trm $(wildcard *.o)\n", ["rm ${MAKE_WILDCARD}"]),
    ("x:\n\tfor f in a b; do \\\n\t  echo $$f; \\\n\tdone\n", ["for f in a b; do \\\n  echo $f; \\\ndone"]),
    ("define RUN\nrm -rf ~\nls\nendef\nx:\n\t$(RUN)\n", ["rm -rf ~\nls"]),
    ("ifeq ($(OS),x)\nx:\n\techo a\nelse\nx:\n\techo b\nendif\n", ["echo a", "echo b"]),  # both branches
    ("# all:\n#\trm -rf ~\nx:\n\techo '#'\n", ["echo '#'"]),  # comments are not rules; a recipe's # is the shell's
])
def test_recipes_are_read_as_make_would_hand_them_to_the_shell(text: str, commands: list[str]) -> None:
    assert shell_commands(text) == "\n".join(commands)


@pytest.mark.parametrize("text, command", [
    ("FILES := $(shell rm -rf ~)\n", "rm -rf ~"),  # run as the file is read, used or not
    ("$(shell touch /etc/x)\nall:\n", "touch /etc/x"),
    ("FILES != find / -delete\n", "find / -delete"),
    ("x: $(shell id)\n", "id"),
])
def test_commands_make_runs_as_it_reads_the_file_are_found(text: str, command: str) -> None:
    assert command in (shell_commands(text) or "").split("\n")


@pytest.mark.parametrize("text", [
    "SHELL = /usr/bin/python3\nall:\n\tprint(1)\n",  # recipes in another language
    "all:\n\t$(eval X := 1)\n",  # make code written as it runs
    "RUN = $(1)\nall:\n\t$(call RUN,rm -rf ~)\n",
    "X = $(X) y\nall:\n\techo $(X)\n",  # make itself refuses a variable that names itself
])
def test_makefiles_whose_commands_only_running_shows_are_unreadable(text: str) -> None:
    assert shell_commands(text) is None


@pytest.fixture(scope="module")
def policy() -> Policy:
    return judge_policy(WORKSPACE, HOME)


@pytest.mark.parametrize("line", [
    "printf 'all:\\n\\trm -rf ~\\n' > Makefile; make",
    "cat > Makefile <<'EOF'\nall: build\nbuild:\n\tcc -o app main.c\n\trm -rf ~/\nEOF\nmake all",
    "echo 'all: ; rm -rf ~' > GNUmakefile && make -j4",
    "printf 'x:\\n\\trm -rf ~\\n' > /tmp/mk; make -f /tmp/mk x",
    "printf 'x:\\n\\trm -rf ~\\n' > /tmp/mk; make --file=/tmp/mk",
    "mkdir -p sub; printf 'x:\\n\\t$(RM) -r ~\\n' > sub/Makefile; make -C sub x",
    "printf 'X := $(shell rm -rf ~)\\n' > Makefile; make --directory=. -s",
])
def test_make_after_writing_its_makefile_is_judged_by_the_recipes(policy: Policy, line: str) -> None:
    decision = decide(line, WORKSPACE, policy)
    assert decision.decision == "deny" and decision.rule == "delete-home", decision
    assert any(c["via"] and c["via"][-1].startswith("make -f ") for c in decision.commands if c["argv"][0] == "rm")
