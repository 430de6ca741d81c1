"""One escape attempt, run inside the jail by tests/escape/test_escape.py.

usage: probe.py HOST_NAMESPACES_JSON NAME [ARG...]

It refuses to run unless its user, mount and pid namespaces differ from the
host's: a jail bug must fail a test, never touch the host. Syscall probes
use bad pointers or invalid arguments, so that an allowed syscall fails
with EFAULT or EINVAL and has no effect, while a blocked one fails with the
filter's errno. Prints one JSON object: {"ret": ..., "errno": ...}.
"""

import ctypes
import json
import os
import socket
import sys

NUMBERS = {  # x86_64, aarch64
    "io_uring_setup": (425, 425), "open_by_handle_at": (304, 265), "ptrace": (101, 117),
    "process_vm_writev": (311, 271), "unshare": (272, 97), "clone": (56, 220), "clone3": (435, 435),
    "mount": (165, 40), "chroot": (161, 51), "keyctl": (250, 219), "bpf": (321, 280), "userfaultfd": (323, 282),
    "perf_event_open": (298, 241), "personality": (135, 92), "ioctl": (16, 29), "getpid": (39, 172),
    "kill": (62, 129), "setns": (308, 268), "add_key": (248, 217), "fsopen": (430, 430),
}
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
CLONE_NEWUSER, CLONE_FS = 0x10000000, 0x00000200


def guard(host: dict[str, str]) -> None:
    for name, ident in host.items():
        if os.readlink(f"/proc/self/ns/{name}") == ident:
            print(json.dumps({"refused": f"same {name} namespace as the host"}))
            sys.exit(99)


def call(name: str, *args: int) -> dict[str, int]:
    number = NUMBERS[name][0 if os.uname().machine == "x86_64" else 1]
    ctypes.set_errno(0)
    ret = libc.syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args))
    return {"ret": int(ret), "errno": ctypes.get_errno() if ret == -1 else 0}


def attempt(function) -> dict[str, int]:  # noqa: ANN001
    try:
        function()
        return {"ret": 0, "errno": 0}
    except OSError as exc:
        return {"ret": -1, "errno": exc.errno or 0}


def probe(name: str, args: list[str]) -> dict[str, int]:
    bad = 8  # a pointer nobody maps
    if name == "io_uring":
        return call("io_uring_setup", 1, bad)
    if name == "open_by_handle_at":
        return call("open_by_handle_at", -1, bad, 0)
    if name == "ptrace":  # PTRACE_PEEKDATA of a process we do not trace
        return call("ptrace", 2, int(args[0]), bad, 0)
    if name == "process_vm_writev":
        return call("process_vm_writev", int(args[0]), bad, 1, bad, 1, 0)
    if name == "unshare":
        return call("unshare", CLONE_NEWUSER | CLONE_FS)  # invalid together: EINVAL if allowed
    if name == "clone_newuser":
        return call("clone", CLONE_NEWUSER | CLONE_FS, 0, 0, 0, 0)
    if name == "clone3":
        return call("clone3", bad, 88)
    if name == "setns":
        return call("setns", -1, 0)
    if name == "mount":
        return call("mount", bad, bad, bad, 0, 0)
    if name == "fsopen":
        return call("fsopen", bad, 0)
    if name == "chroot":
        return call("chroot", bad)
    if name == "keyctl":
        return call("keyctl", 0x7FFFFFFF, 0, 0, 0, 0)
    if name == "add_key":
        return call("add_key", bad, bad, 0, 0, 0)
    if name == "bpf":
        return call("bpf", 0, bad, 8)
    if name == "userfaultfd":
        return call("userfaultfd", 0x7FFFFFFF)
    if name == "perf_event_open":
        return call("perf_event_open", bad, 0, -1, -1, 0)
    if name == "personality":
        return call("personality", int(args[0], 0))
    if name == "tiocsti":  # inject a key press into our terminal (stdin)
        request = int(args[0], 0)
        buffer = ctypes.create_string_buffer(b"x")
        ctypes.set_errno(0)
        number = NUMBERS["ioctl"][0 if os.uname().machine == "x86_64" else 1]
        ret = libc.syscall(ctypes.c_long(number), ctypes.c_long(0), ctypes.c_ulong(request), buffer)
        return {"ret": int(ret), "errno": ctypes.get_errno() if ret == -1 else 0}
    if name == "x32":  # getpid through the x32 ABI: the filter kills the process
        return call_raw(0x40000000 | NUMBERS["getpid"][0])
    if name == "socket":
        family = {"vsock": 40, "alg": 38}[args[0]]
        return attempt(lambda: socket.socket(family, socket.SOCK_STREAM if family == 40 else socket.SOCK_SEQPACKET))
    if name == "write":
        def write() -> None:
            with open(args[0], "w") as f:
                f.write("escaped\n")
        return attempt(write)
    if name == "read":
        return attempt(lambda: open(args[0]).read())
    if name == "connect_unix":
        def connect() -> None:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(3)
                s.connect(args[0] if not args[0].startswith("@") else "\0" + args[0][1:])
        return attempt(connect)
    if name == "connect_tcp":
        def connect_tcp() -> None:
            with socket.create_connection(("127.0.0.1", int(args[0])), timeout=3):
                pass
        return attempt(connect_tcp)
    if name == "kill":
        return call("kill", int(args[0]), 0)
    raise SystemExit(f"unknown probe {name}")


def call_raw(number: int) -> dict[str, int]:
    ctypes.set_errno(0)
    ret = libc.syscall(ctypes.c_long(number))
    return {"ret": int(ret), "errno": ctypes.get_errno() if ret == -1 else 0}


if __name__ == "__main__":
    guard(json.loads(sys.argv[1]))
    print(json.dumps(probe(sys.argv[2], sys.argv[3:])), flush=True)
