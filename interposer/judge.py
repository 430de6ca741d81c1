"""The decision for one command line: a pure function of (line, cwd, policy).

`shelljail check` calls exactly this, so what `check` prints is what the
jail does. Every program the line runs is matched against the profile's
rules (first match wins, then the default); anything that could not be
known statically gets the profile's `opaque` decision, never a silent allow;
the line's decision is the most severe of all.
"""

import fnmatch
import gc
import os
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from jail.policy.profile import Interposer, Rule

from .destinations import check, destinations, is_socket_path
from .effects import Effects, Place, Target, classes, credential_beneath, effects, find_roots, flags
from .programs.catalogue import grammar, programs
from .programs.options import operands
from .remote import elsewhere
from .resolve import Invocation, Opaque, resolve

SEVERITY = {"allow": 0, "rewrite": 1, "ask": 2, "deny": 3}


class Policy(NamedTuple):
    """What the judge needs to know: the profile's rules and where the jail's places are."""

    interposer: Interposer
    workspace: str
    home: str
    env: Mapping[str, str]  # the known environment: HOME, USER, OLDPWD...
    home_binds: tuple[str, ...] | None = None  # see effects.Place: None when judging against the real home
    network: Any = None  # the jail's profile.Network: destinations it cannot reach are denied; None: not checked
    # A checkpoint precedes each line (jail/recovery/timeline.py) and the jail writes nothing lasting outside
    # the workspace (view.lasting_writable): rules `where = ["timeline"]` apply.
    timeline: bool = False
    lasting: tuple[str, ...] = ()  # the jail's read-write binds besides the workspace (effects.Place)


class Verdict(NamedTuple):
    decision: str
    reason: str
    rule: str | None
    alternative: str = ""
    rewrite: str = ""  # with decision "rewrite": which (see rewrite.py)


class Decision(NamedTuple):
    decision: str  # allow, deny, ask, or rewrite (run `rewritten` instead)
    reason: str
    rule: str | None
    alternative: str
    commands: tuple[dict[str, Any], ...]  # each program found, with its own verdict
    opaque: bool
    opaque_reasons: tuple[str, ...]
    parsers: tuple[str, ...]
    rewritten: str | None = None

    def as_json(self, line: str) -> dict[str, Any]:
        return {"command": line, "decision": self.decision, "reason": self.reason, "rule": self.rule,
                "alternative": self.alternative or None, "rewritten": self.rewritten,
                "commands": list(self.commands), "opaque": self.opaque,
                "opaque_reasons": list(self.opaque_reasons), "parser": self.parsers[0] if self.parsers else None}


def decide(line: str, cwd: str, policy: Policy) -> Decision:
    """The decision for `line` run in `cwd`. Python's cycle collector waits while it is made: a decision
    makes many small objects and (nearly) no cycles, and the collector's passes over them, more frequent as
    they pile up, made a 10,000-command line 10% slower per command than a 1,000-command one. What cycles
    there are it collects once it runs again; a collector paused by the caller stays paused."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        return _decide(line, cwd, policy)
    finally:
        if paused:
            gc.enable()


def _decide(line: str, cwd: str, policy: Policy) -> Decision:
    cwd = os.path.normpath(cwd)
    env = {**policy.env, "PWD": cwd}
    catalogue = programs(policy.interposer.programs)
    resolved = resolve(line, cwd, env, catalogue)
    place = Place(policy.workspace, policy.home, policy.home_binds, policy.timeline, policy.lasting)
    verdicts: list[Verdict] = []
    commands = []
    rewrites: list[tuple[str, Invocation]] = []
    roots: tuple[Target, ...] = ()
    table, here = _table(policy.interposer.rules), _here(place)  # once a line, not once a program
    for invocation in resolved.invocations:
        if invocation.name == "find":
            roots = find_roots(invocation)
        via = invocation.via  # most programs are reached through nothing: nothing to look for in it
        found = effects(invocation, roots if via and any(v.startswith("find -") for v in via) else (), catalogue)
        if policy.network is not None:  # /dev/tcp/HOST/PORT is a connection, judged as one (destinations.py)
            found = found._replace(writes=tuple(t for t in found.writes if not is_socket_path(t.path)))
        verdict = _judge(invocation, found, place, policy.interposer, catalogue, table, here)
        remote_step = elsewhere(via) if via else None
        if remote_step is not None and verdict.decision != "allow":  # the model must see where it would run
            verdict = verdict._replace(reason=f"{verdict.reason} (run by {remote_step})")
        if policy.network is not None and verdict.decision != "deny":
            verdict = _reachable(invocation, policy.network, catalogue) or verdict
        verdicts.append(verdict)
        if verdict.decision == "rewrite":
            rewrites.append((verdict.rewrite, invocation))
        commands.append({"argv": [invocation.name, *invocation.values()], "via": list(via),
                         "cwd": invocation.cwd, "decision": verdict.decision, "rule": verdict.rule,
                         "deletes": [t.path for t in found.deletes], "writes": [t.path for t in found.writes]})
    for hazard in resolved.hazards:
        verdicts.append(Verdict("deny", hazard.reason, "hazard", "start a bounded number of processes"))
    for opaque in resolved.opaque:
        verdicts.append(_opaque(opaque, policy.interposer, policy.home_binds is not None))
    if not verdicts:
        verdicts.append(Verdict("allow", "nothing runs", None))
    worst = max(verdicts, key=lambda v: SEVERITY[v.decision])  # max keeps the first of equals
    rewritten = None
    if worst.decision == "rewrite":
        from .rewrite import apply

        rewritten = apply(line, rewrites, policy.workspace if policy.home_binds is None else None)
    return Decision(worst.decision, worst.reason, worst.rule, worst.alternative, tuple(commands),
                    bool(resolved.opaque), tuple(o.reason for o in resolved.opaque), resolved.parsers, rewritten)


def _reachable(invocation: Invocation, network: Any, catalogue: Mapping[str, Any]) -> Verdict | None:
    """A denial when the program would connect where the jail's network cannot go (destinations.py)."""
    found = destinations(invocation, catalogue)
    unreachable = check(found, invocation, network) if found else None
    return Verdict("deny", unreachable[1], unreachable[0], unreachable[2]) if unreachable else None


def _opaque(opaque: Opaque, interposer: Interposer, jailed: bool) -> Verdict:
    """The profile's `opaque` decision; but in a jail, what it confines anyway (resolve.Opaque.confined) runs:
    `python -c` as `python file.py` does, `pkill` among the jail's own processes. The hook keeps asking."""
    if opaque.confined and jailed:
        return Verdict("allow", f"{opaque.reason}; the jail confines it as it confines a program file", None)
    return Verdict(interposer.opaque, f"{opaque.reason}, so shelljail cannot check it", "opaque",
                   "write the command out literally, without eval, variables as command names or piped scripts")


class _Ready(NamedTuple):
    """A rule with its matcher lists as sets, made once per profile: `_match` runs for every rule that a
    program's name admits, for every program of every line, so nothing in it should be rebuilt there."""

    rule: Rule
    names: frozenset[str]  # the `command` patterns with no glob character: a name equal to one matches
    globs: re.Pattern[str] | None  # the others, as one expression (fnmatch.translate: the same matches)
    where: frozenset[str]
    acts: frozenset[str]
    flags: frozenset[str]
    deletes: frozenset[str]
    writes: frozenset[str]
    reads: frozenset[str]
    sends: frozenset[str]
    mentions: frozenset[str]
    # (kind, index in Effects, classes) of the kinds among deletes, writes, reads and sends the rule names
    targets: tuple[tuple[str, int, frozenset[str]], ...]


class _Table:
    """One profile's rules made ready for judging, and what was worked out from them, by program name and
    by shape of a program's effects. Kept by the rules' identity: hashing a tuple of rules for every
    program (as a cache keyed on the rules would) costs as much as matching them."""

    LIMIT = 4096  # entries per dictionary; past it, one is emptied (names are the jail's to choose)

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules  # held, so that its id is not reused while this table is kept
        self.ready = tuple(_Ready(rule, *_command_matcher(rule.command), *(frozenset(part) for part in (
            rule.where, rule.acts, rule.flags, rule.deletes, rule.writes, rule.reads, rule.sends, rule.mentions)),
            tuple((kind, Effects._fields.index(kind), frozenset(getattr(rule, kind)))
                  for kind in ("deletes", "writes", "reads", "sends") if getattr(rule, kind)))
            for rule in rules)
        self.by_name: dict[str, tuple[_Ready, ...]] = {}
        self.by_shape: dict[tuple[Any, ...], tuple[_Ready, ...]] = {}

    def candidates(self, name: str) -> tuple[_Ready, ...]:
        """The rules whose `command` matcher admits `name`, in order (fnmatch is the hot spot)."""
        found = self.by_name.get(name)
        if found is None:
            if len(self.by_name) >= self.LIMIT:
                self.by_name.clear()
            found = self.by_name[name] = tuple(
                ready for ready in self.ready
                if not ready.rule.command or name in ready.names
                or (ready.globs is not None and ready.globs.match(name) is not None))
        return found

    def possible(self, invocation: Invocation, here: frozenset[str], found: Effects) -> tuple[_Ready, ...]:
        """The candidates a program could match, given where it is judged, its acts' kinds, which of its
        effects are not empty, whether it is reached through anything and runs a piped script: what a rule
        needs before _match can say yes. Most rules fail here, once per such shape of a program (a few per
        name), not once per program."""
        name = invocation.name
        kinds = frozenset(act.kind for act in found.acts) if found.acts else _NONE
        deletes, writes, reads, sends, mentions = (bool(found.deletes), bool(found.writes), bool(found.reads),
                                                   bool(found.sends), bool(found.mentions))
        reached, piped = bool(invocation.via), bool(invocation.stdin_script)
        key = (name, here, kinds, deletes, writes, reads, sends, mentions, reached, piped)
        rules = self.by_shape.get(key)
        if rules is None:
            if len(self.by_shape) >= self.LIMIT:
                self.by_shape.clear()
            rules = self.by_shape[key] = tuple(
                ready for ready in self.candidates(name)
                if not ((ready.where and not here & ready.where) or (ready.acts and not kinds & ready.acts)
                        or (ready.deletes and not deletes) or (ready.writes and not writes)
                        or (ready.reads and not reads and not ("credentials" in ready.reads and mentions))
                        or (ready.sends and not sends) or (ready.mentions and not mentions)
                        or (ready.rule.via and not reached) or (ready.rule.stdin_from and not piped)))
        return rules


def _command_matcher(patterns: tuple[str, ...]) -> tuple[frozenset[str], re.Pattern[str] | None]:
    """A rule's `command` patterns as a set of plain names and one expression for the globs: a name
    matches exactly when fnmatch.fnmatchcase would say so for one of the patterns."""
    globs = [p for p in patterns if any(c in p for c in "*?[")]
    plain = frozenset(p for p in patterns if p not in globs)
    return plain, re.compile("|".join(fnmatch.translate(p) for p in globs)) if globs else None


_NONE: frozenset[str] = frozenset()
_TABLES: dict[int, _Table] = {}


def _table(rules: tuple[Rule, ...]) -> _Table:
    """The table of these rules (a profile's), made on first use; a few profiles are kept."""
    table = _TABLES.get(id(rules))
    if table is None or table.rules is not rules:
        if len(_TABLES) >= 16:
            _TABLES.clear()
        table = _TABLES[id(rules)] = _Table(rules)
    return table


def _judge(invocation: Invocation, found: Effects, place: Place, interposer: Interposer,
           catalogue: Mapping[str, Any], table: _Table, here: frozenset[str]) -> Verdict:
    for ready in table.possible(invocation, here, found):
        rule = ready.rule
        target = _match(ready, invocation, found, place, catalogue)
        if target is not False:
            verb = next((a.verb for a in found.acts if a.kind in ready.acts), "")
            if rule.rewrite:
                from .rewrite import applicable

                if applicable(rule.rewrite, invocation):
                    return Verdict("rewrite", f"{_fill(rule.reason, invocation, target, place, verb)}: "
                                   f"rewritten ({rule.rewrite})", rule.id, "", rule.rewrite)
            return Verdict(rule.decision, _fill(rule.reason, invocation, target, place, verb), rule.id,
                           _fill(rule.alternative, invocation, target, place, verb))
    return Verdict(interposer.default, "no rule matches", None)


def _match(ready: _Ready, invocation: Invocation, found: Effects, place: Place,
           catalogue: Mapping[str, Any]) -> Target | None | bool:
    """False when the rule does not apply; else the target that made it match (or None)."""
    rule = ready.rule  # its `where`, `acts`, `via` and `stdin_from` without a program's: _Table.possible
    if rule.subcommand and not _subcommand_matches(invocation, rule.subcommand, catalogue):
        return False
    if ready.flags and not (flags(invocation.args) & ready.flags):
        return False
    if rule.args and not any(fnmatch.fnmatchcase(w.value, p) for w in invocation.args for p in rule.args):
        return False
    if rule.unless_args and any(fnmatch.fnmatchcase(w.value, p) for w in invocation.args for p in rule.unless_args):
        return False
    if rule.via and not any(step.split()[0] in rule.via or step in rule.via for step in invocation.via):
        return False
    if rule.stdin_from and not (invocation.stdin_script and any(
            fnmatch.fnmatchcase(source, pattern)
            for source in invocation.command.piped_from for pattern in rule.stdin_from)):
        return False
    target: Target | None = None
    for kind, field, wanted in ready.targets:
        hit = next((t for t in found[field] if classes(t, place) & wanted), None)
        if hit is None and kind == "reads" and "credentials" in wanted:
            # A credential's path named anywhere in the arguments counts as read (a program handed one
            # is taken to read it); for other classes (a .env, say) only what is known to be read counts.
            hit = next((t for t in found.mentions if "credentials" in classes(t, place)), None) \
                or credential_beneath(found.reads, place)
        if hit is None:
            return False
        target = target or hit
    if ready.mentions:
        entry = catalogue.get(invocation.name)
        if entry is not None and "show" in entry.files:  # it only reads or shows what it is handed
            return False
        hit = next((t for t in found.mentions if classes(t, place) & ready.mentions), None)
        if hit is None:
            return False
        target = target or hit
    return target


def _here(place: Place) -> frozenset[str]:
    """Where a line is judged, as a rule's `where` names it."""
    return _WHERE[place.home_binds is not None, place.timeline]


_WHERE = {(jail, timeline): frozenset({"jail" if jail else "host"} | ({"timeline"} if timeline else set()))
          for jail in (False, True) for timeline in (False, True)}


def _subcommand_matches(invocation: Invocation, patterns: tuple[str, ...], catalogue: Mapping[str, Any]) -> bool:
    """The leading operands (options and their values skipped, by the program's grammar) match a pattern."""
    words = [w.value for w in operands(invocation.args, grammar(invocation.name, catalogue))]
    for pattern in patterns:
        parts = pattern.split()
        if len(words) >= len(parts) and all(
                fnmatch.fnmatchcase(o, w) for o, w in zip(words, parts, strict=False)):
            return True
    return False


def _fill(template: str, invocation: Invocation, target: Target | None, place: Place, verb: str = "") -> str:
    if not template:
        return ""
    path = target.path if target is not None and target.path else (
        target.word.source if target is not None and target.word is not None else "")
    values = {"path": path, "command": invocation.name, "workspace": place.workspace, "home": place.home,
              "verb": verb or invocation.name}
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return template
