"""Everything one run needs, decided outside the jail before anything starts."""


import os
import pwd
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from jail.policy import environment
from jail.policy.profile import Limits, Profile
from jail.policy.view import Bind, Overlay, Tmpfs, View, resolve

# /dev nodes a command may write (the rest of /dev is read-only anyway).
DEV_WRITABLE = ("/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/random", "/dev/urandom", "/dev/pts",
                "/dev/shm")


class JailSpec(NamedTuple):
    argv: tuple[str, ...]
    view: View
    env: dict[str, str]
    cwd: str
    limits: Limits
    uid: int
    gid: int
    files: dict[str, str]  # generated files: /etc/passwd, /etc/group, /etc/hosts, ...
    seccomp: bytes | None = None  # the BPF program loaded just before exec
    seccomp_second: bytes | None = None  # an allow-list or learning filter stacked on it (it then notifies)
    learn: bool = False  # the second filter's notifications are recorded and let through
    seccomp_notify: bool = False  # its denials go to the supervisor, to be counted
    seccomp_errno: str = "EPERM"  # what the supervisor answers a counted denial with
    notify_channel: int | None = None  # the socket the command passes the listener out on (set at start)
    landlock_mode: str = "off"
    writable: tuple[str, ...] = ()  # where Landlock lets the command write
    connect_ports: tuple[int, ...] | None = None  # the only TCP ports the command may connect to (None: any)
    bridges: tuple[tuple[int, str], ...] = ()  # (port on the jail's 127.0.0.1, unix socket it relays to)
    stdout_fd: int | None = None  # where the command's stdout goes instead (the output cap's pipe)
    stdin_fd: int | None = None  # where its stdin comes from instead (the reference agent's tool channel)
    supervisor_fds: tuple[int, ...] = ()  # the supervisor's ends of such pipes: closed in the jail's processes
    stderr_fd: int | None = None
    executable_fds: tuple[int, ...] = ()  # files outside the view Landlock lets it execute (the real shells)
    secrets: tuple = ()  # the run's secrets (jail.policy.secrets.Secret): delivered, and masked in the log and output
    run_flags: tuple[str, ...] = ()  # what `run --read-only/--allow/--forward` added to the profile, for the log


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
          extra_env: Iterable[tuple[str, str]] = (), cwd: str | None = None,
          secret_specs: Iterable[str] = (), learn: bool = False) -> JailSpec:
    if profile.limits.disk and profile.filesystem.workspace != "overlay":
        from jail.errors import JailError

        raise JailError("limits.disk bounds what an overlay workspace's session writes, and this workspace is "
                        f"{profile.filesystem.workspace}", "run with --workspace-mode overlay, or drop limits.disk")
    user, home = caller_identity(caller_env)
    view = resolve(profile, workspace, home, user, caller_env.get("PATH", ""))
    values = {"workspace": view.workspace, "home": home, "user": user}
    cwd = os.path.realpath(cwd or os.getcwd())
    inside = cwd == view.workspace or cwd.startswith(view.workspace + "/")
    uid, gid = os.getuid(), os.getgid()
    notify = profile.seccomp.enabled and _notify_available()
    second = _second_program(profile, notify, learn)
    env = environment.build(profile.environment, caller_env, values, extra_env)
    if view.programs.path:  # the caller's PATH folders the jail sees, after the profile's own
        own = env.get("PATH", "").split(":")
        env["PATH"] = ":".join([*own, *(d for d in view.programs.path if d not in own)]).strip(":")
    files = generated_files(user, uid, gid, home)
    secrets = _secrets(profile, secret_specs, caller_env)
    if secrets:
        from jail.policy.secrets import deliver

        deliver(secrets, env, files)
    return JailSpec(
        argv=tuple(argv),
        view=view,
        env=env,
        cwd=cwd if inside else view.workspace,
        limits=profile.limits,
        uid=uid,
        gid=gid,
        files=files,
        seccomp=_seccomp_program(profile, notify and second is None),
        seccomp_second=second,
        learn=learn and second is not None,
        seccomp_notify=notify,
        seccomp_errno=_errno_of(profile),
        landlock_mode=profile.landlock.mode,
        writable=writable_paths(view),
        connect_ports=None if profile.network.connect_local else (),
        secrets=tuple(secrets),
    )


def _secrets(profile: Profile, specs: Iterable[str], caller_env: Mapping[str, str]) -> list:
    """The profile's [secrets], then `run --secret` (which wins for the same name)."""
    from_profile = [name if source == "env" else f"{name}:file" if source == "env:file" else f"{name}={source}"
                    for name, source in profile.secrets.values.items()]
    specs = from_profile + list(specs)
    if not specs:
        return []
    from jail.policy.secrets import parse

    by_name = {}
    for spec in specs:
        secret = parse(spec, caller_env)
        by_name[secret.name] = secret
    return list(by_name.values())


def writable_paths(view: View) -> tuple[str, ...]:
    """Every place the view makes writable: what Landlock allows writing beneath."""
    places = [m.target for m in view.mounts
              if isinstance(m, Tmpfs | Overlay) or (isinstance(m, Bind) and m.writable)]
    return tuple(dict.fromkeys([*places, *DEV_WRITABLE]))


def _notify_available() -> bool:
    from jail.seccomp.notify import available

    return available()


def _seccomp_program(profile: Profile, notify: bool) -> bytes:
    """The profile's filter; with seccomp off, the setid guard alone (no profile may let the jail
    make a setuid-root file on the host)."""
    from jail.seccomp import filters as seccomp

    if not profile.seccomp.enabled:
        return seccomp.build((), (), (), "EPERM", False)

    policy = profile.seccomp
    if policy.oci:
        from jail.seccomp import oci as seccomp_oci

        return seccomp_oci.build(policy.oci, notify)
    return seccomp.build(policy.errno, policy.kill, policy.log, policy.errno_value, notify)


def _second_program(profile: Profile, notify: bool, learn: bool) -> bytes | None:
    """The allow-list filter stacked on the profile's, or the learning one; None without either."""
    from jail.errors import JailError

    if learn and not profile.seccomp.enabled:
        raise JailError(f"learning needs seccomp, which profile {profile.name} turns off",
                        "learn on a profile with seccomp.enabled = true (the default)")
    if learn and profile.seccomp.oci:
        raise JailError(f"learning stacks on the profile's own seccomp lists; {profile.name} uses seccomp.oci",
                        "learn on a profile without seccomp.oci")
    if not profile.seccomp.enabled or not (learn or profile.seccomp.allow):
        return None
    from jail.seccomp import filters as seccomp

    if learn:
        if not notify:
            raise JailError("learning needs seccomp user notification (Linux 5.0+), which this kernel lacks",
                            "see shelljail doctor")
        return seccomp.build_learn()
    return seccomp.build_allow(profile.seccomp.allow, profile.seccomp.errno_value, notify)


def _errno_of(profile: Profile) -> str:
    """The errno a counted denial is answered with: the profile's, or the OCI file's default."""
    if not profile.seccomp.oci:
        return profile.seccomp.errno_value
    import errno

    from jail.seccomp.oci import read

    return errno.errorcode.get(read(profile.seccomp.oci).default_errno, "EPERM")


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
