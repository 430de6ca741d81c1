"""No setuid or setgid bit is ever created by the jail (issue #22, item 4).

As root, the jail's uid 0 is the host's uid 0: a setuid file left in the
workspace would be a setuid-root program for every host user. Each test
runs real attacks inside a real jail (behind `guarded()`), then looks at the
workspace from the host. The profiles answer filtered calls with
ENOTRECOVERABLE, which no kernel path returns here, so a test tells the
seccomp guard from the kernel's own refusal.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import Jail, guarded

pytestmark = pytest.mark.jail

FILTERED = "ENOTRECOVERABLE"
DOCKER = Path(__file__).resolve().parent / "data" / "seccomp" / "docker-default.json"  # see its NOTICE.md

# Runs inside the jail; prints one JSON object: attack -> "OK" or the errno name it got.
ATTACKS = r'''
import ctypes, errno, json, os, stat, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
results = {}

def attempt(name, call):
    try:
        value = call()
        results[name] = "OK" if value is None or value >= 0 else errno.errorcode[ctypes.get_errno()]
    except OSError as exc:
        results[name] = errno.errorcode.get(exc.errno, str(exc.errno))

def shell(name, command):
    done = subprocess.run(command, shell=True, capture_output=True)
    results[name] = "OK" if done.returncode == 0 else "failed"

with open("bin", "wb") as f:
    f.write(open("/bin/true", "rb").read())
os.chmod("bin", 0o755)
for bits in (0o4755, 0o2755, 0o6755):
    attempt(f"chmod {bits:o}", lambda: os.chmod("bin", bits))
fd = os.open("bin", os.O_RDONLY)
attempt("fchmod", lambda: os.fchmod(fd, 0o4755))
attempt("chmod via /proc/self/fd", lambda: os.chmod(f"/proc/self/fd/{fd}", 0o4755))
attempt("fchmodat", lambda: os.chmod("bin", 0o2755, dir_fd=os.open(".", os.O_RDONLY)))
attempt("fchmodat2", lambda: libc.syscall(452, -100, b"bin", 0o4755, 0))
attempt("fchmodat2 nofollow", lambda: libc.syscall(452, -100, b"bin", 0o4755, 0x100))
attempt("open O_CREAT", lambda: os.open("created", os.O_CREAT | os.O_WRONLY, 0o4755))
attempt("open O_CREAT setgid", lambda: os.open("created-g", os.O_CREAT | os.O_WRONLY, 0o2711))
attempt("open O_TMPFILE", lambda: os.open(".", os.O_TMPFILE | os.O_WRONLY, 0o4755))
attempt("creat", lambda: libc.creat(b"creat", 0o4755))
attempt("open (syscall 2)", lambda: libc.syscall(2, b"open2", os.O_CREAT | os.O_WRONLY, 0o4755))
attempt("mkdir setgid", lambda: os.mkdir("dir-g", 0o2755))
attempt("mkdir setuid", lambda: os.mkdir("dir-u", 0o4755))
attempt("mkdirat", lambda: os.mkdir("dir-at", 0o2755, dir_fd=os.open(".", os.O_RDONLY)))
attempt("mknod", lambda: os.mknod("node", stat.S_IFREG | 0o4755))
attempt("mknodat", lambda: os.mknod("node-at", stat.S_IFREG | 0o2755, dir_fd=os.open(".", os.O_RDONLY)))

class OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]

how = OpenHow(os.O_CREAT | os.O_WRONLY, 0o4755, 0)
attempt("openat2", lambda: libc.syscall(437, -100, b"openat2", ctypes.byref(how), ctypes.sizeof(how)))
params = (ctypes.c_char * 120)()
attempt("io_uring_setup", lambda: libc.syscall(425, 8, params))
attempt("hard link of a setuid binary", lambda: os.link("/usr/bin/su", "su-link"))
capability = bytes.fromhex("0100000201000000000000000000000000000000")  # v2: cap_setuid permitted+effective
attempt("setxattr security.capability", lambda: os.setxattr("bin", "security.capability", capability))
shell("chmod u+s", "chmod u+s bin")
shell("chmod g+s", "chmod g+s bin")
shell("install -m 4755", "install -m 4755 /bin/true installed")
shell("install -d -m 2775", "install -d -m 2775 installed-dir")
shell("cp -p of a setuid binary", "cp -p /usr/bin/su su")
shell("tar xpf", "mkdir -p untarred && tar xpf setid.tar -C untarred")
shell("python tarfile", "/usr/bin/python3 -c 'import tarfile; tarfile.open(\"setid.tar\").extractall(\"pyuntar\")'")
print(json.dumps(results))
'''

EXPECTED_FILTERED = ("chmod 4755", "chmod 2755", "chmod 6755", "fchmod", "chmod via /proc/self/fd", "fchmodat",
                     "fchmodat2", "fchmodat2 nofollow", "open O_CREAT", "open O_CREAT setgid", "open O_TMPFILE",
                     "creat", "open (syscall 2)", "mkdir setgid", "mkdir setuid", "mkdirat", "mknod", "mknodat",
                     "io_uring_setup")
EXPECTED_FAILED = ("chmod u+s", "chmod g+s", "install -m 4755", "install -d -m 2775", "tar xpf")
# Python's tarfile ignores a failed chmod (errorlevel 1): it succeeds, and the file has no setid bit.


def setid_archive() -> bytes:
    """A tar archive holding a setuid file and a setgid directory: bytes, never a setid file on the host."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, mode, kind in (("setuid-file", 0o4755, tarfile.REGTYPE), ("setgid-dir", 0o2775, tarfile.DIRTYPE)):
            info = tarfile.TarInfo(name)
            info.mode, info.type = mode, kind
            data = b"#!/bin/sh\nid\n" if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def setid_files(root: Path) -> list[str]:
    """Files under `root` (seen from the host, symlinks not followed) with a setid bit or file capabilities."""
    found = []
    for directory, names, files in os.walk(root):
        for name in names + files:
            path = os.path.join(directory, name)
            if os.lstat(path).st_mode & (stat.S_ISUID | stat.S_ISGID):
                found.append(path)
            elif not os.path.islink(path) and "security.capability" in os.listxattr(path, follow_symlinks=False):
                found.append(path)
    return found


def profile(directory: Path, body: str) -> str:
    """A profile file where the jail's caller (root or nobody) can read it."""
    path = directory / "setid.toml"
    path.write_text(f'extends = "base"\n[seccomp]\nerrno_value = "{FILTERED}"\n{body}')
    return str(path)


def attack(jail: Jail, profile_path: str) -> dict[str, str]:
    (jail.workspace / "attacks.py").write_text(ATTACKS)
    (jail.workspace / "setid.tar").write_bytes(setid_archive())
    if jail.user is not None:
        for path in jail.workspace.iterdir():
            os.chown(path, jail.user, jail.user)
    result = jail.sh(f"cd {jail.workspace} && /usr/bin/python3 attacks.py", options=("-p", profile_path))
    assert result.returncode == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def check(jail: Jail, results: dict[str, str]) -> None:
    assert {name: results[name] for name in EXPECTED_FILTERED} == dict.fromkeys(EXPECTED_FILTERED, FILTERED)
    assert results["openat2"] == "ENOSYS"  # libc and runtimes fall back to openat, whose mode the filter reads
    assert results["setxattr security.capability"] == "EPERM"  # the kernel: no CAP_SETFCAP in the jail
    assert results["hard link of a setuid binary"] == "EXDEV"  # /usr is another mount than the workspace
    assert {name: results[name] for name in EXPECTED_FAILED} == dict.fromkeys(EXPECTED_FAILED, "failed")
    assert setid_files(jail.workspace) == []
    assert stat.S_IMODE(os.stat(jail.workspace / "bin").st_mode) == 0o755
    assert (jail.workspace / "pyuntar" / "setuid-file").is_file()


def test_no_setid_bit_reaches_the_workspace(any_jail: Jail) -> None:
    """Root's jail and an ordinary user's: every way to set the bits fails, none lands on the host."""
    check(any_jail, attack(any_jail, profile(any_jail.root, "")))


def test_the_guard_holds_when_the_profile_logs_or_drops_those_syscalls(jail: Jail, tmp_path: Path) -> None:
    """`log` is an allow that libseccomp would let win over argument rules: the guard narrows it."""
    body = 'log = ["chmod", "fchmod", "fchmodat", "fchmodat2", "openat", "openat2", "mkdir", "mknod", "creat"]\n'
    check(jail, attack(jail, profile(tmp_path, body)))


def test_the_guard_holds_under_an_imported_oci_policy(jail: Jail, tmp_path: Path) -> None:
    """Docker's default profile allows chmod, openat2 and the rest outright; the jail narrows those rules."""
    path = tmp_path / "docker.toml"
    path.write_text(f'extends = "base"\n[seccomp]\noci = "{DOCKER}"\n')
    results = attack(jail, str(path))
    filtered = {name: results[name] for name in EXPECTED_FILTERED if name != "io_uring_setup"}
    assert filtered == dict.fromkeys(filtered, "EPERM")  # an OCI policy's guard answers EPERM
    assert results["openat2"] == "ENOSYS" and results["io_uring_setup"] == "EPERM"
    assert {name: results[name] for name in EXPECTED_FAILED} == dict.fromkeys(EXPECTED_FAILED, "failed")
    assert setid_files(jail.workspace) == []


SCRIPT_WORKS = r'''
set -e
mkdir -p src/sub && echo hi > src/sub/f && chmod 755 src/sub/f && ln -s f src/sub/l && chmod 1777 src/sub
cp -a src copied && install -m 755 src/sub/f installed && install -d -m 775 installed-dir
tar cf a.tar src && mkdir x && tar xpf a.tar -C x && test -L x/src/sub/l
git init -q repo && cd repo && echo a > a && git add a && git -c user.email=a@b -c user.name=a commit -qm m
git gc -q && git clone -q . ../clone && cd ..
/usr/bin/python3 -c 'import os, shutil, tempfile; shutil.copytree("src", "py-copied", symlinks=True); \
os.open("py-created", os.O_CREAT | os.O_WRONLY, 0o644); tempfile.mkstemp(dir="."); os.mkdir("py-dir", 0o755)'
mkfifo fifo && mkdir -m 700 private && umask 077 && touch later
echo ALL-WORKED
'''


def test_ordinary_programs_still_work(any_jail: Jail) -> None:
    """cp -a, install, tar, git, Python's file calls and the sticky bit pass the guard."""
    result = any_jail.sh(f"cd {any_jail.workspace}\n{SCRIPT_WORKS}", options=("-p", profile(any_jail.root, "")))
    assert result.returncode == 0 and "ALL-WORKED" in result.stdout, (result.stdout, result.stderr)
    assert stat.S_IMODE(os.stat(any_jail.workspace / "copied" / "sub").st_mode) == 0o1777


def test_pip_installs_in_the_jail(jail: Jail, tmp_path: Path) -> None:
    """ensurepip unpacks wheels and makes scripts executable: pip works under the guard."""
    script = f"cd {jail.workspace} && /usr/bin/python3 -m venv venv && venv/bin/pip --version"
    result = jail.sh(script, options=("-p", profile(tmp_path, "")))
    assert result.returncode == 0 and "pip " in result.stdout, (result.stdout, result.stderr)
    assert setid_files(jail.workspace) == []


def test_the_exported_oci_policy_carries_the_guard_and_reads_back_to_the_same_filter() -> None:
    """containerd or Podman running the exported policy get the guard too; importing it changes nothing."""
    from jail.seccomp import filters as seccomp
    from jail.seccomp import oci as seccomp_oci

    log, kill = ("chmod", "openat2", "mkdir", "getppid"), ("fchmod",)
    native = seccomp._compile(("@mount",), kill, log, "EACCES")
    exported = json.loads(json.dumps(seccomp_oci.export(("@mount",), kill, log, "EACCES")))
    rules = [(r["names"][0], r["action"], r.get("errnoRet"), [tuple(a.values()) for a in r.get("args", [])])
             for r in exported["syscalls"]]
    assert ("chmod", "SCMP_ACT_LOG", None, [(1, 0o6000, 0, "SCMP_CMP_MASKED_EQ")]) in rules
    assert ("openat", "SCMP_ACT_ERRNO", 13, [(3, 0o4000, 0o4000, "SCMP_CMP_MASKED_EQ")]) in rules
    assert ("openat2", "SCMP_ACT_ERRNO", 38, []) in rules and ("openat2", "SCMP_ACT_LOG", None, []) not in rules
    assert not [rule for rule in rules if rule[0] == "fchmod" and rule[1] != "SCMP_ACT_KILL_PROCESS"]
    assert seccomp_oci.compile_policy(seccomp_oci.parse(exported), notify=False) == native


def test_a_jail_cannot_redirect_or_block_the_filter_cache(tmp_path: Path) -> None:
    """The compiled filters are cached in XDG_CACHE_HOME. A run whose jail would see it is refused
    (tests/test_audit_hostile.py); here a jail plants in a cache that a later run, with another workspace,
    uses: a symlinked cache directory is not written through, and a FIFO in place of a cached filter is not
    waited on (the filter is compiled again, and the guard still holds)."""
    jail = Jail(tmp_path / "jail")
    canary = tmp_path / "canary"
    canary.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    env = jail.env(XDG_CACHE_HOME=str(jail.workspace / "cache"))

    def elsewhere(script: str, profile_path: str) -> subprocess.CompletedProcess[str]:  # in `other`, planted cache
        result = jail.cli("run", "-w", str(other), "--interposer", "off", "-p", profile_path, "--",
                          "/bin/sh", "-c", guarded(script), env=env, cwd=other, timeout=30)
        assert result.returncode == 0, result.stderr
        return result

    first = profile(jail.root, "")
    elsewhere("true", first)  # compiles into the cache
    cached = jail.workspace / "cache" / "shelljail" / "seccomp"
    assert list(cached.glob("*.bpf"))
    plant = (f"cd {cached} && for f in *.bpf; do rm \"$f\" && mkfifo \"$f\"; done && cd {jail.workspace} && "
             f"mkdir -p elsewhere && mv {cached} elsewhere/ && ln -s {canary} {cached}")
    result = jail.sh(plant, options=("-p", first))
    assert result.returncode == 0, result.stderr
    second = jail.root / "second.toml"
    second.write_text('extends = "base"\n[seccomp]\nerrno_value = "EOWNERDEAD"\n')
    (other / "attacks.py").write_text(ATTACKS)
    (other / "setid.tar").write_bytes(setid_archive())
    result = elsewhere(f"cd {other} && /usr/bin/python3 attacks.py", str(second))
    assert json.loads(result.stdout.strip().splitlines()[-1])["chmod 4755"] == "EOWNERDEAD"
    assert list(canary.iterdir()) == []  # nothing written through the jail's symlink
    os.unlink(cached)
    os.rename(jail.workspace / "elsewhere" / "seccomp", cached)  # the FIFOs back in place of the filters
    elsewhere("true", first)
    assert setid_files(other) == []


def test_doctor_checks_the_guard_for_real() -> None:
    """doctor loads the default filter in a child and tries chmod u+s on a file of its own."""
    from jail.ui import doctor

    result = doctor.check_seccomp()
    assert result.ok and "chmod u+s is refused (setid guard)" in result.detail, result


def test_the_guard_holds_while_learning(jail: Jail) -> None:
    """`shelljail learn` stacks a notifying filter that lets calls continue; the guard's refusal still wins."""
    (jail.workspace / "bin").write_bytes(Path("/bin/true").read_bytes())
    os.chmod(jail.workspace / "bin", 0o755)
    learned = jail.root / "learned.toml"
    script = guarded(f"chmod 4755 {jail.workspace}/bin; chmod g+s {jail.workspace}/bin; echo done")
    result = jail.cli("learn", "-p", profile(jail.root, ""), "-o", str(learned), "-w", str(jail.workspace), "--",
                      "/bin/sh", "-c", script)
    assert result.returncode == 0 and "done" in result.stdout, (result.stdout, result.stderr)
    assert learned.is_file()
    assert setid_files(jail.workspace) == []
