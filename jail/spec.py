"""Everything one run needs, decided outside the jail before anything starts."""


import os
import pwd
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from . import environment
from .profile import Limits, Profile
from .view import View, resolve


class JailSpec(NamedTuple):
    argv: tuple[str, ...]
    view: View
    env: dict[str, str]
    cwd: str
    limits: Limits
    uid: int
    gid: int
    files: dict[str, str]  # generated files: /etc/passwd, /etc/group, /etc/hosts, ...


def caller_identity(caller_env: Mapping[str, str]) -> tuple[str, str]:
    """The caller's user name and home path (the jail's home has the same path)."""
    uid = os.getuid()
    try:
        entry = pwd.getpwuid(uid)
        user, home = entry.pw_name, entry.pw_dir
    except KeyError:
        user, home = f"user{uid}", ""
    home = caller_env.get("HOME") or home
    if not home.startswith("/") or os.path.normpath(home) == "/":
        home = f"/home/{user}"
    return user, os.path.normpath(home)


def build(profile: Profile, workspace: str, argv: Iterable[str], caller_env: Mapping[str, str],
          extra_env: Iterable[tuple[str, str]] = (), cwd: str | None = None) -> JailSpec:
    user, home = caller_identity(caller_env)
    view = resolve(profile, workspace, home, user)
    values = {"workspace": view.workspace, "home": home, "user": user}
    cwd = os.path.realpath(cwd or os.getcwd())
    inside = cwd == view.workspace or cwd.startswith(view.workspace + "/")
    uid, gid = os.getuid(), os.getgid()
    return JailSpec(
        argv=tuple(argv),
        view=view,
        env=environment.build(profile.environment, caller_env, values, extra_env),
        cwd=cwd if inside else view.workspace,
        limits=profile.limits,
        uid=uid,
        gid=gid,
        files=generated_files(user, uid, gid, home),
    )


def generated_files(user: str, uid: int, gid: int, home: str) -> dict[str, str]:
    """passwd and group that name only the mapped user (and root, nobody), and hosts."""
    passwd = [f"{user}:x:{uid}:{gid}:{user}:{home}:/bin/bash"]
    group = [f"{user}:x:{gid}:"]
    if uid != 0:
        passwd.insert(0, "root:x:0:0:root:/root:/usr/sbin/nologin")
    if gid != 0:
        group.insert(0, "root:x:0:")
    if uid != 65534:
        passwd.append("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin")
    if gid != 65534:
        group.append("nogroup:x:65534:")
    return {
        "/etc/passwd": "\n".join(passwd) + "\n",
        "/etc/group": "\n".join(group) + "\n",
        "/etc/hostname": "shelljail\n",
        "/etc/hosts": "127.0.0.1 localhost shelljail\n::1 localhost ip6-localhost ip6-loopback\n",
    }
