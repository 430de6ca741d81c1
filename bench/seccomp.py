"""The cost of the default seccomp filter (and Landlock) on syscall-heavy work inside the jail.

Workloads: `find` over most of /usr (getdents, stat), a Python start that imports
many modules, and a loop of three million getppid() calls. Each runs in the
jail with the default policy and with `seccomp.enabled = false` (and with
Landlock off too), interleaved, median of N runs; the ratio is the cost.
"seccomp off" still loads the setid guard (a 53-instruction filter), so the
first ratio compares two filters; the second includes Landlock's share.

Exact, where the timings on a shared machine are not: the default program's
length, the BPF instructions each hot syscall runs through (interpreted
here), and whether the kernel runs the program at all for it: since Linux
5.11 the kernel emulates each filter once for every syscall number and
skips it for numbers it allows whatever the arguments (the action cache).
"""

from __future__ import annotations

import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
from common import arguments, header, save  # noqa: E402

SHELLJAIL = str(Path(sys.executable).parent / "shelljail")
WORKLOADS = {
    "find /usr -type f, x5": ["/bin/sh", "-c", "for i in 1 2 3 4 5; do find /usr/lib /usr/include /usr/bin "
                                                "/usr/share/doc /usr/share/locale -type f; done"],
    "python imports, x5": ["/bin/sh", "-c", "for i in 1 2 3 4 5; do /usr/bin/python3 -I -c 'import json, "
                                            "email.parser, http.client, asyncio, unittest, xml.dom.minidom, sqlite3, "
                                            "decimal, argparse, logging'; done"],
    "3M getppid (worst case)": ["/usr/bin/python3", "-c", "import os\nfor _ in range(3000000): os.getppid()"],
}


# (syscall, number on x86_64, arguments): the calls a build or a `find` makes most
HOT_CALLS = (("getppid", 110, ()), ("read", 0, ()), ("close", 3, ()), ("mmap", 9, ()), ("futex", 202, ()),
             ("newfstatat", 262, ()), ("getdents64", 217, ()), ("openat O_RDONLY", 257, (-100, 0, 0, 0)),
             ("openat O_CREAT 0644", 257, (-100, 0, 0o101, 0o644)), ("ioctl TCGETS", 16, (0, 0x5401)),
             ("clone (fork)", 56, (0x01200011,)), ("mkdir 0755", 83, (0, 0o755)), ("socket AF_INET", 41, (2, 1)))
_ARCH_X86_64 = 0xC000003E
_RET_ALLOW = 0x7FFF0000


def walk(program: bytes, number: int, args: tuple[int, ...] = ()) -> tuple[int, int]:
    """(the action, the instructions run) of a libseccomp program for one call: the subset
    of classic BPF libseccomp emits (absolute loads, AND, conditional and plain jumps, returns)."""
    words = [a & 0xFFFFFFFFFFFFFFFF for a in (*args, 0, 0, 0, 0, 0, 0)[:6]]
    data = struct.pack("<iIQ6Q", number, _ARCH_X86_64, 0, *words)
    accumulator, pc, count = 0, 0, 0
    while True:
        code, true_offset, false_offset, k = struct.unpack_from("<HBBI", program, pc * 8)
        count += 1
        if code == 0x20:  # ld [k]
            accumulator = struct.unpack_from("<I", data, k)[0]
        elif code == 0x54:  # and #k
            accumulator &= k
        elif code == 0x05:  # ja
            pc += k
        elif code in (0x15, 0x25, 0x35, 0x45):  # jeq, jgt, jge, jset
            taken = {0x15: accumulator == k, 0x25: accumulator > k, 0x35: accumulator >= k,
                     0x45: bool(accumulator & k)}[code]
            pc += true_offset if taken else false_offset
        elif code == 0x06:  # ret #k
            return k, count
        else:
            raise ValueError(f"BPF instruction {code:#x} at {pc}: not one libseccomp emits")
        pc += 1


def kernel_skips(program: bytes, number: int) -> bool:
    """Whether the kernel's action cache lets `number` through without running the program:
    its emulation (seccomp_is_const_allow) reaches ALLOW having loaded only the number and arch."""
    accumulator, pc = 0, 0
    while True:
        code, true_offset, false_offset, k = struct.unpack_from("<HBBI", program, pc * 8)
        if code == 0x20:
            if k not in (0, 4):
                return False  # an argument: depends on the call
            accumulator = number if k == 0 else _ARCH_X86_64
        elif code == 0x54:
            accumulator &= k
        elif code == 0x05:
            pc += k
        elif code in (0x15, 0x25, 0x35, 0x45):
            taken = {0x15: accumulator == k, 0x25: accumulator > k, 0x35: accumulator >= k,
                     0x45: bool(accumulator & k)}[code]
            pc += true_offset if taken else false_offset
        elif code == 0x06:
            return k == _RET_ALLOW
        else:
            return False
        pc += 1


def program_figures() -> dict:
    """The default filter's length and what each hot call costs in it (x86_64 only)."""
    from jail.policy import profile as profiles
    from jail.seccomp import filters

    policy = profiles.load("coding-agent").seccomp
    program = filters.build(policy.errno, policy.kill, policy.log, policy.errno_value, True)
    calls = {}
    for name, number, args in HOT_CALLS:
        action, count = walk(program, number, args)
        calls[name] = {"instructions": count, "skipped by the kernel": kernel_skips(program, number),
                       "allowed": action == _RET_ALLOW}
    skipped = sum(kernel_skips(program, number) for number in range(463))
    return {"instructions": len(program) // 8, "syscall numbers 0-462 the kernel skips the filter for": skipped,
            "calls": calls}


def main() -> int:
    args = arguments(__doc__, "seccomp", 10)
    workspace = tempfile.mkdtemp(prefix="shelljail-bench-")
    profiles = {"default": "coding-agent"}
    for name, text in (("seccomp off", "[seccomp]\nenabled = false\n"),
                       ("seccomp and landlock off", "[seccomp]\nenabled = false\n[landlock]\nmode = \"off\"\n")):
        path = Path(workspace) / f"{name.replace(' ', '-')}.toml"
        path.write_text(f'extends = "coding-agent"\n{text}')
        profiles[name] = str(path)
    results: dict = {**header("seccomp", args.runs), "workloads": {}}
    if os.uname().machine == "x86_64":
        results["default program"] = program_figures()
    for workload, command in WORKLOADS.items():
        samples: dict[str, list[float]] = {name: [] for name in profiles}
        for run in range(args.runs):
            # A fixed order favoured the last profile of each round (find: x1.2 for Landlock in
            # that order, x0.98 in ABBA order): every other round runs them backwards.
            order = list(profiles.items())
            for name, profile in order if run % 2 == 0 else order[::-1]:
                started = time.perf_counter()
                subprocess.run([SHELLJAIL, "run", "-p", profile, "-w", workspace, "--interposer", "off", "--",
                                *command], check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
                samples[name].append(time.perf_counter() - started)
        medians = {name: statistics.median(values) for name, values in samples.items()}
        results["workloads"][workload] = {
            "seconds": {name: round(value, 4) for name, value in medians.items()},
            "default / seccomp off": round(medians["default"] / medians["seccomp off"], 3),
            "default / both off": round(medians["default"] / medians["seccomp and landlock off"], 3),
            "landlock: seccomp off / both off": round(medians["seccomp off"] / medians["seccomp and landlock off"], 3),
        }
    shutil.rmtree(workspace, ignore_errors=True)
    print(f"seccomp and landlock cost, median of {args.runs} interleaved runs")
    for workload, figures in results["workloads"].items():
        print(f"  {workload:24} default {figures['seconds']['default']:.3f} s, "
              f"x{figures['default / seccomp off']:.3f} of seccomp off, "
              f"x{figures['default / both off']:.3f} of both off")
    save(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
