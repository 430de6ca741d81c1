# shelljail: `make setup` once, then `shelljail run -- CMD`; `make test` runs the tests.
SHELL := /bin/bash
# Debian's python3 (3.11): readable by every user, unlike a pyenv under /root,
# and free of pyenv's shim start-up cost.
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Where `shelljail` is linked so that it is on PATH.
PREFIX ?= $(shell test "$$(id -u)" = 0 && echo /usr/local || echo $$HOME/.local)
# lsb-release, gdb and curl: programs the tests run in the jail (system scripts; the network tests' client)
APT_PACKAGES := libcap-dev libseccomp2 python3-venv python3-dev gcc libc6-dev chromium lsb-release gdb curl

# Real agents for the end-to-end tests, pinned, in project-local folders.
AGENTS := .agents
PI_VERSION := 0.73.1
MINI_SWE_AGENT_VERSION := 2.4.6
CLAUDE_CODE_VERSION := 2.1.197
CODEX_VERSION := 0.171.0
GEMINI_CLI_VERSION := 0.61.0
OPENCODE_VERSION := 1.18.33
AIDER_VERSION := 0.86.2

.PHONY: setup link unlink apt venv launcher agents test test-fast lint bench bench-deps redteam clean

setup: apt venv agents link

# `shelljail` on PATH, linked to this clone's venv. A link to another clone that still works is left alone
# (LINK=force takes it over); a link that no longer works, or a takeover, is said with where it pointed.
link:
	@link=$(PREFIX)/bin/shelljail; target=$(CURDIR)/$(BIN)/shelljail; mkdir -p $(PREFIX)/bin; \
	current=$$(readlink "$$link" || true); if [ -e "$$link" ]; then state=; else state=", which no longer exists"; fi; \
	if [ -e "$$link" ] && [ ! -L "$$link" ]; then \
	  echo "$$link is a file, not a link to a clone: left alone (remove it to link $$target there)"; \
	elif [ -n "$$current" ] && [ "$$current" != "$$target" ] && [ -e "$$link" ] && [ "$(LINK)" != force ]; then \
	  echo "$$link runs another clone's shelljail ($$current): left alone; this clone's is $$target" \
	       "(make setup LINK=force links it here)"; \
	else \
	  ln -sfn "$$target" "$$link"; \
	  if [ -n "$$current" ] && [ "$$current" != "$$target" ]; then \
	    echo "$$link pointed to $$current$$state: now to $$target"; \
	  fi; \
	  echo "shelljail is ready: $$link (try: shelljail doctor)"; \
	fi

# The link make setup made, if it is this clone's.
unlink:
	@if [ "$$(readlink $(PREFIX)/bin/shelljail)" = "$(CURDIR)/$(BIN)/shelljail" ]; then \
	  rm -f $(PREFIX)/bin/shelljail && echo "removed $(PREFIX)/bin/shelljail (it ran this clone's venv)"; fi

# Build dependencies of python-prctl, chromium for the dashboard tests, and lsb-release and gdb (gcore),
# the system shell scripts tests/test_friction.py runs in the jail; installed only when missing.
apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing apt packages: $$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

venv:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	# Precompile: start-up time matters, and PYTHONDONTWRITEBYTECODE may be set.
	$(BIN)/python -m compileall -q jail interposer agent >/dev/null
	$(MAKE) launcher

# The shell entry inside the jail: a static C program (interposer/launcher.py is the fallback).
launcher: interposer/shelljail-launcher
# No compiler: the Python fallback. A compiler that fails is an error (never a stale binary).
# The flags are in interposer/launcher.cflags, which the wheel's build (hatch_build.py) reads too.
interposer/shelljail-launcher: interposer/launcher.c interposer/launcher.cflags
	@if command -v $(CC) >/dev/null 2>&1; then \
	  echo "$(CC) ... -o $@ $<"; \
	  $(CC) $$(cat interposer/launcher.cflags) -o $@ $<; \
	else rm -f $@; echo "no C compiler: the jail uses the slower Python launcher"; fi

# pi, Claude Code, Codex, Gemini CLI and opencode (npm), mini-swe-agent (PyPI, with litellm and mcp, which its tool calls need)
# and aider (PyPI aider-chat, in its own venv). A registry that cannot be reached is not an error here: the tests
# that need the agent skip and say why.
agents: $(AGENTS)/pi/node_modules/.bin/pi $(AGENTS)/mini-swe-agent/bin/mini $(AGENTS)/claude-code/node_modules/.bin/claude \
	$(AGENTS)/codex/node_modules/.bin/codex $(AGENTS)/gemini/node_modules/.bin/gemini \
	$(AGENTS)/opencode/node_modules/.bin/opencode $(AGENTS)/aider/bin/aider

$(AGENTS)/pi/node_modules/.bin/pi:
	@if ! command -v npm >/dev/null; then echo "npm not found: pi is not installed (its tests will skip)"; \
	elif npm install -s --prefix $(AGENTS)/pi --no-audit --no-fund @mariozechner/pi-coding-agent@$(PI_VERSION); \
	then echo "pi $(PI_VERSION) is in $(AGENTS)/pi"; \
	else echo "could not install pi from the npm registry (its tests will skip if the registry is unreachable)"; fi

$(AGENTS)/claude-code/node_modules/.bin/claude:
	@if ! command -v npm >/dev/null; then echo "npm not found: Claude Code is not installed (its tests will skip)"; \
	elif npm install -s --prefix $(AGENTS)/claude-code --no-audit --no-fund @anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION); \
	then echo "Claude Code $(CLAUDE_CODE_VERSION) is in $(AGENTS)/claude-code"; \
	else echo "could not install Claude Code from the npm registry (its tests will skip if the registry is unreachable)"; fi

$(AGENTS)/codex/node_modules/.bin/codex:
	@if ! command -v npm >/dev/null; then echo "npm not found: Codex is not installed (its tests will skip)"; \
	elif npm install -s --prefix $(AGENTS)/codex --no-audit --no-fund @openai/codex@$(CODEX_VERSION); \
	then echo "Codex $(CODEX_VERSION) is in $(AGENTS)/codex"; \
	else echo "could not install Codex from the npm registry (its tests will skip if the registry is unreachable)"; fi

$(AGENTS)/gemini/node_modules/.bin/gemini:
	@if ! command -v npm >/dev/null; then echo "npm not found: Gemini CLI is not installed (its tests will skip)"; \
	elif npm install -s --prefix $(AGENTS)/gemini --no-audit --no-fund @google/gemini-cli@$(GEMINI_CLI_VERSION); \
	then echo "Gemini CLI $(GEMINI_CLI_VERSION) is in $(AGENTS)/gemini"; \
	else echo "could not install Gemini CLI from the npm registry (its tests will skip if the registry is unreachable)"; fi

$(AGENTS)/opencode/node_modules/.bin/opencode:
	@if ! command -v npm >/dev/null; then echo "npm not found: opencode is not installed (its tests will skip)"; \
	elif npm install -s --prefix $(AGENTS)/opencode --no-audit --no-fund opencode-ai@$(OPENCODE_VERSION); \
	then echo "opencode $(OPENCODE_VERSION) is in $(AGENTS)/opencode"; \
	else echo "could not install opencode from the npm registry (its tests will skip if the registry is unreachable)"; fi

$(AGENTS)/mini-swe-agent/bin/mini:
	@test -x $(AGENTS)/mini-swe-agent/bin/python || $(PYTHON) -m venv $(AGENTS)/mini-swe-agent
	@if $(AGENTS)/mini-swe-agent/bin/pip install -q --disable-pip-version-check \
	    mini-swe-agent==$(MINI_SWE_AGENT_VERSION) mcp 2>&1 | grep -v "^WARNING: Location"; \
	    test -x $@; then echo "mini-swe-agent $(MINI_SWE_AGENT_VERSION) is in $(AGENTS)/mini-swe-agent"; \
	else echo "could not install mini-swe-agent from PyPI (its tests will skip if PyPI is unreachable)"; fi

$(AGENTS)/aider/bin/aider:
	@test -x $(AGENTS)/aider/bin/python || $(PYTHON) -m venv $(AGENTS)/aider
	@if $(AGENTS)/aider/bin/pip install -q --disable-pip-version-check aider-chat==$(AIDER_VERSION) 2>&1 \
	    | grep -v "^WARNING: Location"; test -x $@; then echo "aider $(AIDER_VERSION) is in $(AGENTS)/aider"; \
	else echo "could not install aider from PyPI (its tests will skip if PyPI is unreachable)"; fi

test:
	$(BIN)/python -m pytest -q tests

# The pure tests alone, in seconds: no jail, no shelljail process, no corpora (markers in pyproject.toml).
test-fast:
	$(BIN)/python -m pytest -q -m "not jail and not slow" tests

lint:
	$(BIN)/ruff check .

# Compiled first: with PYTHONDONTWRITEBYTECODE set, a source edited since make setup would be compiled at
# every start and counted in it.
bench: bench-deps
	$(BIN)/python -m compileall -q jail interposer agent >/dev/null
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/interposer.py
	$(BIN)/python bench/seccomp.py
	$(BIN)/python bench/trash.py
	$(BIN)/python bench/timeline.py
	$(BIN)/python bench/overlay.py
	$(BIN)/python bench/proxy.py
	$(BIN)/python bench/forward.py
	$(BIN)/python bench/workload.py
	$(BIN)/python bench/agents.py
	$(BIN)/python bench/report.py

# Every risky corpus case, run for real in the jail against canaries; writes docs/results.md's red-team section.
redteam:
	$(BIN)/python -m compileall -q jail interposer agent >/dev/null
	$(BIN)/python bench/redteam.py

# What the benchmarks compare against (Debian's bubblewrap and firejail; Anthropic's sandbox-runtime from npm,
# with the socat and ripgrep it needs) and run (a real autoconf configure).
bench-deps:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	{ command -v bwrap && command -v firejail && command -v socat && command -v rg; } >/dev/null || \
	  { $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq bubblewrap firejail socat ripgrep; }
	@test -x bench/cache/srt/node_modules/.bin/srt || npm install -s --prefix bench/cache/srt --no-audit --no-fund \
	  @anthropic-ai/sandbox-runtime@0.0.78 || echo "could not install sandbox-runtime: the bench skips it"
	@mkdir -p bench/cache && test -f bench/cache/pycrypto-2.6.1.tar.gz || \
	  $(BIN)/pip download -q --no-deps --no-binary :all: -d bench/cache pycrypto==2.6.1

clean: unlink
	rm -rf $(VENV) $(AGENTS) .pytest_cache .ruff_cache interposer/shelljail-launcher
	find . -name __pycache__ -prune -exec rm -rf {} +
