"""Git snapshots: listing them and rolling back to one (`shelljail snapshots`, `rollback N`).

The interposer's `snapshot` rewrite (interposer/rewrite.py) writes `snapshot_script`
into the line before a command that discards work: it saves the work tree to
`refs/shelljail/snapshots/N`. Reading
and restoring them runs git in a jail on the workspace, like the agent's own
git: a repository an agent could change may carry hooks, filters and config
that run programs, and those must not run on the host.
"""

from __future__ import annotations

SNAPSHOT_REF = "refs/shelljail/snapshots"
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@+,%^~")
_IDENTITY = ("GIT_AUTHOR_NAME=shelljail GIT_AUTHOR_EMAIL=shelljail@localhost "
             "GIT_COMMITTER_NAME=shelljail GIT_COMMITTER_EMAIL=shelljail@localhost")

LIST_SCRIPT = (f"git rev-parse --git-dir >/dev/null || exit 1; "
               f"n=$(git for-each-ref {SNAPSHOT_REF} | wc -l); "
               f"if [ \"$n\" -eq 0 ]; then echo 'no snapshots in this repository'; exit 0; fi; "
               f"git for-each-ref --sort=creatordate "
               f"--format='%(refname:lstrip=3)%00%(creatordate:format:%Y-%m-%d %H:%M:%S)%00%(contents:subject)' "
               f"{SNAPSHOT_REF}")


def listing(output: bytes) -> str:
    """LIST_SCRIPT's output for a person: each NUL-separated field (a subject is the repository's, so
    the jail's) shown escaped, the fields joined by tabs, which a field itself never shows raw."""
    from jail.display import shown

    return "".join("\t".join(shown(field) for field in line.split(b"\0")) + "\n"
                   for line in output.removesuffix(b"\n").split(b"\n") if output)


def rollback_script(number: int) -> str:
    """Save the present state as a new snapshot, then restore snapshot `number`: HEAD, files, stashes."""
    ref = f"{SNAPSHOT_REF}/{number}"
    missing = f"shelljail: no snapshot {number} in this repository (shelljail snapshots lists them)"
    return "\n".join([
        "set -e",
        f"c=$(git rev-parse -q --verify '{ref}^{{commit}}') || {{ echo '{missing}' >&2; exit 1; }}",
        snapshot_script(f"shelljail rollback {number}"),
        f"saved=$(git for-each-ref {SNAPSHOT_REF} | wc -l)",
        "set -- $(git rev-list --parents -n 1 \"$c\")",
        "shift",  # the snapshot itself; then HEAD at the time, then the stashes
        "if [ $# -gt 0 ]; then git reset -q --soft \"$1\"; shift; fi",
        "git read-tree -u --reset \"$c\"",
        "git reset -q",
        "present=$(git stash list --format=%H)",
        "stashes=",
        "for s in \"$@\"; do stashes=\"$s $stashes\"; done",  # oldest first: `stash store` pushes
        "for s in $stashes; do case \"$present\" in *\"$s\"*) ;; "
        f"*) git stash store -m 'restored by shelljail rollback {number}' \"$s\";; esac; done",
        f"echo \"rolled back to snapshot {number}; what was here before is snapshot $saved\"",
    ])


def snapshot_script(command: str) -> str:
    """POSIX sh, in a subshell: commit the work tree to the next snapshot ref, quietly."""
    message = _quote(f"shelljail snapshot before: {command}"[:500])
    return ("( set -e; d=$(git rev-parse --git-dir); i=$(mktemp); "
            "if [ -f \"$d/index\" ]; then cp \"$d/index\" \"$i\"; else rm -f \"$i\"; fi; "
            "GIT_INDEX_FILE=$i git add -A; t=$(GIT_INDEX_FILE=$i git write-tree); rm -f \"$i\"; "
            "p=; if h=$(git rev-parse -q --verify HEAD); then p=\"-p $h\"; "
            "for s in $(git stash list --format=%H); do p=\"$p -p $s\"; done; fi; "
            f"c=$({_IDENTITY} git commit-tree $p -m {message} \"$t\"); "
            f"n=$(( $(git for-each-ref {SNAPSHOT_REF} | wc -l) + 1 )); "
            f"git update-ref \"{SNAPSHOT_REF}/$n\" \"$c\" ) >/dev/null")


def _quote(text: str) -> str:
    if text and set(text) <= _PLAIN:
        return text
    return "'" + text.replace("'", "'\\''") + "'"
