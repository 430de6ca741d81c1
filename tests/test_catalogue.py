"""The program catalogue (interposer/programs/): each destructive form of families 1, 2, 3 and 7 of issue #23
stopped with its benign twin allowed, judged as `shelljail check` judges (jail semantics) and as the Claude
Code hook judges (host semantics, the real hook function); a profile adds or overrides entries, checked
with file and line. Pure: strings judged, nothing run (but the few `check` subprocesses, marked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from interposer import hooks
from interposer.check import policy_for
from interposer.judge import decide
from interposer.programs.options import Grammar, operands, takes_next
from interposer.words import Word
from jail.errors import ProfileError
from jail.policy import profile

STOPPED = ("deny", "ask")

# (destructive form, its benign twin, the rule that stops the first)
FAMILY_1 = [
    ("npx prisma migrate reset --force", "npx prisma migrate dev", "data-store-destroy"),
    ("prisma db push --accept-data-loss", "prisma db push", "data-store-destroy"),
    ("pnpm exec prisma db push --force-reset", "pnpm exec prisma generate", "data-store-destroy"),
    ("supabase db reset", "supabase db diff", "data-store-destroy"),
    ("bin/rails db:drop", "bin/rails db:migrate", "data-store-destroy"),
    ("bundle exec rails db:schema:load", "bundle exec rails db:migrate:status", "data-store-destroy"),
    ("rake db:reset", "rake db:migrate", "data-store-destroy"),
    ("python manage.py flush --noinput", "python manage.py migrate", "data-store-destroy"),
    ("python3 manage.py migrate shop zero", "python3 manage.py migrate shop", "data-store-destroy"),
    ("alembic downgrade base", "alembic upgrade head", "data-store-destroy"),
    ("uv run alembic downgrade -1", "uv run alembic current", "data-store-destroy"),
    ("python -m alembic downgrade base", "python -m alembic history", "data-store-destroy"),
    ("npx knex migrate:rollback --all", "npx knex migrate:latest", "data-store-destroy"),
    ("npx sequelize-cli db:migrate:undo:all", "npx sequelize-cli db:migrate", "data-store-destroy"),
    ("npx typeorm schema:drop -d src/data-source.ts", "npx typeorm migration:run -d src/data-source.ts",
     "data-store-destroy"),
    ("npx drizzle-kit push --force", "npx drizzle-kit generate", "data-store-destroy"),
    ("mongosh mydb --eval 'db.dropDatabase()'", "mongosh mydb --eval 'db.users.find()'", "data-store-destroy"),
    ("redis-cli -h cache FLUSHALL", "redis-cli -h cache GET key", "data-store-destroy"),
    ("php artisan migrate:fresh --seed", "php artisan migrate", "data-store-destroy"),
    ("mix ecto.reset", "mix ecto.migrate", "data-store-destroy"),
    ("docker compose down -v", "docker compose ps", "data-store-destroy"),
]
FAMILY_2 = [
    ("vercel env pull", "vercel env ls", "config-overwrite"),
    ("vercel env pull .env.production.local", "vercel deploy --prebuilt", "config-overwrite"),
    ("npx dotenv-vault@latest pull", "npx dotenv-vault@latest status", "config-overwrite"),
    ("curl -o .env https://pypi.org/simple/", "curl -o env.txt https://pypi.org/simple/",
     "download-over-dotenv"),
]
FAMILY_3 = [
    ("pm2 kill", "pm2 logs", "process-kill"),
    ("pm2 delete all", "pm2 list", "process-kill"),
    ("taskkill /F /IM node.exe", "tasklist", "process-kill"),
    ("supervisorctl stop all", "supervisorctl status", "process-kill"),
    ("docker kill $(docker ps -q)", "docker ps -q", "process-kill"),
    ("fuser -k 3000/tcp", "fuser 3000/tcp", "process-kill"),
    ("systemctl stop nginx", "systemctl status nginx", "system-services"),
]
FAMILY_7 = [
    ("vagrant destroy -f", "vagrant status", "unknown-destructive-verb"),
    ("openstack server delete web1", "openstack server list", "unknown-destructive-verb"),
    ("mytool db:drop", "mytool db:status", "unknown-destructive-verb"),
    ("npx some-cli wipe", "npx some-cli build", "unknown-destructive-verb"),
    ("terraform apply -auto-approve", "terraform plan", "unknown-destructive-verb"),
    ("neonctl branches delete dev", "neonctl branches list", "unknown-destructive-verb"),
]
CASES = FAMILY_1 + FAMILY_2 + FAMILY_3 + FAMILY_7


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("project")


def _judged(line: str, workspace: Path, jailed: bool) -> tuple[str, str | None, str]:
    decision = decide(line, str(workspace), policy_for(profile.load("coding-agent"), str(workspace), jailed))
    return decision.decision, decision.rule, decision.reason


@pytest.mark.parametrize("jailed", [True, False], ids=["check", "hook-semantics"])
@pytest.mark.parametrize("destructive, benign, rule", CASES, ids=[c[0] for c in CASES])
def test_destructive_form_stopped_and_benign_twin_allowed(workspace: Path, jailed: bool, destructive: str,
                                                          benign: str, rule: str) -> None:
    decision, found, reason = _judged(destructive, workspace, jailed)
    assert decision in STOPPED and found == rule, (destructive, decision, found, reason)
    assert _judged(benign, workspace, jailed)[0] == "allow", benign


@pytest.mark.parametrize("destructive, benign, rule", CASES, ids=[c[0] for c in CASES])
def test_the_claude_code_hook_stops_the_form_and_passes_its_twin(workspace: Path, destructive: str, benign: str,
                                                                 rule: str) -> None:
    def event(command: str) -> str:
        return json.dumps({"session_id": "s", "hook_event_name": "PreToolUse", "tool_name": "Bash",
                           "tool_input": {"command": command}, "cwd": str(workspace)})

    answer = hooks.claude_code(event(destructive), "coding-agent", str(workspace))
    assert answer is not None and answer["hookSpecificOutput"]["permissionDecision"] in STOPPED, destructive
    assert hooks.claude_code(event(benign), "coding-agent", str(workspace)) is None, benign


def test_the_reason_names_the_verb(workspace: Path) -> None:
    assert "prisma migrate reset" in _judged("npx prisma migrate reset --force", workspace, True)[2]
    assert "vagrant destroy" in _judged("vagrant destroy -f", workspace, True)[2]
    assert "pm2 kill" in _judged("pm2 kill", workspace, True)[2]


@pytest.mark.parametrize("line", ["prisma migrate reset --help", "pio system prune --dry-run",
                                  "echo --force system prune", "tldr vagrant destroy"])
def test_help_dry_runs_and_text_destroy_nothing(workspace: Path, line: str) -> None:
    assert _judged(line, workspace, True)[0] == "allow", line


def test_a_pulled_env_file_is_a_write_of_that_file(workspace: Path) -> None:
    decision = decide("vercel env pull ../.env", str(workspace / "app"),
                      policy_for(profile.load("coding-agent"), str(workspace), True))
    commands = decision.commands[0]
    assert str(workspace / ".env") in commands["writes"]


def test_the_option_reader_follows_getopt_bundles() -> None:
    grammar = Grammar(frozenset({"-u", "-n"}))
    assert takes_next("-Eu", grammar) and not takes_next("-uroot", grammar) and not takes_next("--user=x", grammar)
    words = [Word(w, True, False, w) for w in ["-n", "3", "-v", "a", "--", "-b"]]
    assert [w.value for w in operands(words, grammar)] == ["a", "-b"]
    assert [w.value for w in operands(words, Grammar(frozenset({"-n"}), bundles=False))] == ["a", "-b"]


def _profile(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.toml"
    path.write_text('extends = "coding-agent"\n' + text)
    return path


def test_a_profile_teaches_a_program_and_overrides_an_entry(tmp_path: Path) -> None:
    path = _profile(tmp_path, """
[interposer.programs.vagrant]
forms = [{ act = "destroys-data", subcommand = ["destroy"] }]

[interposer.programs.pm2]
values = ["--name"]
""")
    loaded = profile.load(str(path))
    policy = policy_for(loaded, str(tmp_path), True)
    vagrant = decide("vagrant destroy -f", str(tmp_path), policy)
    assert (vagrant.decision, vagrant.rule) == ("deny", "data-store-destroy")
    assert decide("pm2 kill", str(tmp_path), policy).decision == "allow"  # the profile's entry replaced it
    assert decide("openstack server delete x", str(tmp_path), policy).rule == "unknown-destructive-verb"


@pytest.mark.parametrize("text, words", [
    ('[interposer.programs.prisma]\nforms = [{ act = "explodes", subcommand = ["x"] }]\n', "unknown act"),
    ('[interposer.programs.prisma]\nforms = [{ act = "kills" }]\n', "names no subcommand"),
    ("[interposer.programs.prisma]\nvalue = []\n", "unknown key"),
    ('[interposer.programs.prisma]\nvalues = ["x"]\n', "starts with '-'"),
])
def test_a_bad_entry_is_refused_with_its_file_and_line(tmp_path: Path, text: str, words: str) -> None:
    path = _profile(tmp_path, text)
    with pytest.raises(ProfileError) as raised:
        profile.load(str(path))
    message = str(raised.value)
    assert words in message and str(path) in message and ":3" in message, message


@pytest.mark.jail
def test_shelljail_check_prints_the_catalogue_decision(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "jail.cli", "check", "--json", "-C", str(tmp_path),
                             "npx prisma migrate reset --force"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["decision"] == "deny" and payload["rule"] == "data-store-destroy"


# Friction bugs of issue #23: each of these was asked about (or logged a write) before.
@pytest.mark.parametrize("line", ["git reflog", "git reflog show main", "cp .env.example .env",
                                  "cat ~/.ssh/id_ed25519.pub", "cp .env.sample .env.local"])
def test_ordinary_work_is_allowed(workspace: Path, line: str) -> None:
    assert _judged(line, workspace, True)[0] == "allow", line
    assert _judged(line, workspace, False)[0] == "allow", line


@pytest.mark.parametrize("line", ["git reflog expire --expire=now --all", "cat ~/.ssh/id_ed25519", "cat .env",
                                  "cp .env /tmp/x.env.example"])
def test_their_risky_twins_are_still_stopped(workspace: Path, line: str) -> None:
    assert _judged(line, workspace, False)[0] in STOPPED, line


def test_sed_in_place_with_the_bsd_suffix_writes_the_file_not_the_script(workspace: Path) -> None:
    decision = decide("sed -i '' 's/a/b/' notes.txt", str(workspace),
                      policy_for(profile.load("coding-agent"), str(workspace), True))
    assert decision.decision == "allow" and decision.commands[0]["writes"] == [str(workspace / "notes.txt")]
    risky = decide("sed -i '' 'w /tmp/out' notes.txt", str(workspace),
                   policy_for(profile.load("coding-agent"), str(workspace), True))
    assert risky.decision in STOPPED  # the script after '' is read: its `w` writes a file


def test_an_ssh_option_is_not_a_file_written(workspace: Path) -> None:
    decision = decide("ssh -o StrictHostKeyChecking=no -o ConnectTimeout=5 build@host uptime", str(workspace),
                      policy_for(profile.load("coding-agent"), str(workspace), False))
    assert decision.commands[0]["writes"] == []


# The dependency-install policy: the project's manifests and named packages from the default registries,
# into the workspace (or the jail's home), are ordinary work; what reaches beyond is asked.
INSTALLS = [
    ("pip install -r requirements.txt", "pip install --break-system-packages -r requirements.txt"),
    ("pip install -e .[dev]", "pip install git+https://github.com/a/b.git"),
    ("python -m pip install requests", "python -m pip install --user requests"),
    ("python3 -m pip install -U pip", "python3 -m pip install --index-url https://mirror.example/simple x"),
    ("uv pip install -r requirements.txt", "uv pip install --system requests"),
    ("uv add httpx", "uv add git+https://github.com/a/b"),
    ("npm install left-pad", "npm install github:a/b"),
    ("pnpm add zod", "pnpm add https://example.com/x.tgz"),
    ("yarn add react", "npm install -g typescript"),
]


@pytest.mark.parametrize("jailed", [True, False], ids=["check", "hook-semantics"])
@pytest.mark.parametrize("ordinary, beyond", INSTALLS, ids=[c[0] for c in INSTALLS])
def test_installs_into_the_workspace_run_and_beyond_it_are_asked(workspace: Path, jailed: bool, ordinary: str,
                                                                 beyond: str) -> None:
    policy = policy_for(profile.load("coding-agent"), str(workspace), jailed)._replace(network=None)
    assert decide(ordinary, str(workspace), policy).decision == "allow", ordinary
    assert decide(beyond, str(workspace), policy).decision in STOPPED, beyond
