"""What the interposer costs: analysis throughput, and time added per shell inside a real jail.

(1) decisions per second on the benign corpora, one thread, warm (per second of wall time, and of CPU time);
(2) milliseconds added per `sh -c true` started by a program (each one judged) and
    by a shell (a child shell, passed after an ancestry check), interposer on vs off;
(3) scale: one line of N commands (an `&&` chain, and a script of N lines), N = 10 ... 10,000:
    seconds per line (wall and CPU) and microseconds per command (linear when the latter stays flat);
    and a line shaped as the script Codex CLI wraps each of its commands in (issue #25), generated here;
(4) configure-style workloads, time on / time off: a real autoconf `configure`
    (pycrypto 2.6.1's, from PyPI; `make bench-deps` fetches it), and a worst
    case made of nothing but short shells (100 `sh -c` and a 100-recipe make).
Each figure is the median of N runs, interleaved on/off; ratios are within one run.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPORA = ROOT / "tests" / "data" / "corpora"

from common import arguments, header, save  # noqa: E402

from interposer.judge import Policy, decide  # noqa: E402
from jail.policy import environment, profile  # noqa: E402

SHELLJAIL = str(Path(sys.executable).parent / "shelljail")
SHELLS = 300


def throughput(runs: int) -> tuple[dict[str, float], dict[str, float]]:
    """Decisions per second of wall time, and per second of this process's CPU time (the latter is what to
    compare on a machine shared with other work: time spent waiting for a core is not counted)."""
    loaded = profile.load("coding-agent")
    env = environment.build(loaded.environment, {}, {"workspace": "/w/p", "home": "/home/u", "user": "u"})
    policy = Policy(loaded.interposer, "/w/p", "/home/u", env)
    out, cpu = {}, {}
    for name in ("tldr_common_linux_unique.txt", "secbash_harmless.txt", "nl2bash_unique.txt"):
        lines = [line.rstrip("\n") for line in open(CORPORA / name) if line.strip()]
        for line in lines[:200]:  # warm: parser loaded, caches filled
            decide(line, "/w/p", policy)
        rates, cpu_rates = [], []
        for _ in range(runs):
            started, cpu_started = time.perf_counter(), time.process_time()
            for line in lines:
                decide(line, "/w/p", policy)
            rates.append(len(lines) / (time.perf_counter() - started))
            cpu_rates.append(len(lines) / (time.process_time() - cpu_started))
        out[name] = round(statistics.median(rates))
        cpu[name] = round(statistics.median(cpu_rates))
    return out, cpu


def scale(runs: int) -> dict[str, dict[str, dict[str, float]]]:
    """Decision time for one line of N commands: the walk must grow linearly, not recurse (#23)."""
    loaded = profile.load("coding-agent")
    env = environment.build(loaded.environment, {}, {"workspace": "/w/p", "home": "/home/u", "user": "u"})
    policy = Policy(loaded.interposer, "/w/p", "/home/u", env)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for form, separator in (("chain", " && "), ("script", "\n")):
        out[form] = {}
        for size in (10, 100, 1_000, 10_000):
            line = separator.join(f"echo {i} > out{i % 7}.txt" if form == "script"
                                  else f"echo {i}" for i in range(size))
            samples, cpu_samples = [], []
            for _ in range(runs):
                started, cpu_started = time.perf_counter(), time.process_time()
                decision = decide(line, "/w/p", policy)
                samples.append(time.perf_counter() - started)
                cpu_samples.append(time.process_time() - cpu_started)
            seconds, cpu_seconds = statistics.median(samples), statistics.median(cpu_samples)
            out[form][str(size)] = {"seconds": round(seconds, 4), "us_per_command": round(seconds / size * 1e6, 1),
                                    "cpu_seconds": round(cpu_seconds, 4), "decision": decision.decision}
    return out


def codex_wrapper(variables: int = 56, command: str = "ls") -> str:
    """A line shaped as the one Codex CLI runs for every command (38 KB there, ~230 simple commands): each
    variable of its shell snapshot saved, the snapshot sourced, each variable restored or unset, the command."""
    names = [f"CODEX_VARIABLE_{i}" for i in range(variables)]
    saved = [f'__SNAPSHOT_SET_{i}="${{{name}+x}}"\n__SNAPSHOT_{i}="${{{name}-}}"' for i, name in enumerate(names)]
    restored = [f'if [ -n "${{__SNAPSHOT_SET_{i}}}" ]; then\n'
                f'  if [ -z "${{{name}+x}}" ] || [ "${{{name}-}}" != "${{__SNAPSHOT_{i}}}" ]; then '
                f'export {name}="${{__SNAPSHOT_{i}}}"; else export {name}; fi\n'
                f'else builtin unset {name} 2>/dev/null || command unset {name}; fi\n'
                f'builtin unset __SNAPSHOT_SET_{i} __SNAPSHOT_{i} 2>/dev/null || '
                f'command unset __SNAPSHOT_SET_{i} __SNAPSHOT_{i}' for i, name in enumerate(names)]
    return "\n".join([*saved, "if . '/home/u/.codex/shell_snapshots/s.sh' >/dev/null 2>&1; then :; fi", *restored,
                      f"exec '/bin/bash' -c '{command}'"])


def wrapper(runs: int) -> dict[str, float | int | str]:
    """Milliseconds to judge the Codex-shaped line: what each of that agent's commands costs (#25)."""
    loaded = profile.load("coding-agent")
    env = environment.build(loaded.environment, {}, {"workspace": "/w/p", "home": "/home/u", "user": "u"})
    policy = Policy(loaded.interposer, "/w/p", "/home/u", env)
    line = codex_wrapper()
    decision = decide(line, "/w/p", policy)
    samples, cpu_samples = [], []
    for _ in range(runs * 10):  # short: more samples for a steady median
        started, cpu_started = time.perf_counter(), time.process_time()
        decide(line, "/w/p", policy)
        samples.append(time.perf_counter() - started)
        cpu_samples.append(time.process_time() - cpu_started)
    return {"bytes": len(line), "programs": len(decision.commands), "ms": round(statistics.median(samples) * 1e3, 2),
            "cpu_ms": round(statistics.median(cpu_samples) * 1e3, 2), "decision": decision.decision}


def timed(workspace: str, interposer: str, command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([SHELLJAIL, "run", "-w", workspace, "--interposer", interposer, "--", *command],
                   check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


def real_configure(workspace: str) -> list[str] | None:
    archive = ROOT / "bench" / "cache" / "pycrypto-2.6.1.tar.gz"
    if not archive.exists():
        return None
    # owned by the caller, not by the archive's uid (a jailed root has no CAP_DAC_OVERRIDE)
    subprocess.run(["tar", "xzf", str(archive), "--no-same-owner", "-C", workspace], check=True)
    return ["/bin/sh", "-c", "cd pycrypto-2.6.1 && ./configure"]


def shells_only(workspace: str) -> list[str]:
    """Nothing but short shells: the worst case for an interposer at /bin/sh."""
    Path(workspace, "Makefile").write_text("".join(
        f"t{i}:\n\t@test -d . && echo {i} > /dev/null\n" for i in range(100)) + "all: " +
        " ".join(f"t{i}" for i in range(100)) + "\n")
    script = "\n".join(f"sh -c 'test -n \"x{i}\" && echo ok{i} | tr a-z A-Z' > /dev/null" for i in range(100))
    Path(workspace, "configure.sh").write_text("#!/bin/sh\n" + script + "\nmake -s all\n")
    return ["/bin/sh", "./configure.sh"]


def main() -> int:
    args = arguments(__doc__, "interposer", 5)
    results: dict = header("interposer", args.runs)

    results["decisions_per_second"], results["decisions_per_cpu_second"] = throughput(args.runs)
    results["scale"] = scale(args.runs)
    results["codex_wrapper"] = wrapper(args.runs)

    workspace = tempfile.mkdtemp(prefix="shelljail-bench-")
    loops = {
        "judged (started by a program)": ["/usr/bin/python3", "-c",
                                          f"import subprocess\nfor _ in range({SHELLS}): "
                                          "subprocess.run(['/bin/sh', '-c', 'true'])"],
        "child shell (started by a shell)": ["/bin/bash", "-c", f"for i in $(seq {SHELLS}); do /bin/sh -c true; done"],
    }
    added = {}
    for name, command in loops.items():
        samples: dict[str, list[float]] = {"on": [], "off": []}
        for _ in range(args.runs):
            for mode in ("off", "on"):
                samples[mode].append(timed(workspace, mode, command))
        on, off = statistics.median(samples["on"]), statistics.median(samples["off"])
        added[name] = {"ms_added_per_shell": round((on - off) / SHELLS * 1000, 3),
                       "seconds_on": round(on, 3), "seconds_off": round(off, 3)}
    results["per_shell"] = added

    results["configure_like"] = {}
    for name, make_command in (("real configure (pycrypto 2.6.1)", real_configure),
                               ("shells only (worst case)", shells_only)):
        command = make_command(workspace)
        if command is None:
            results["configure_like"][name] = "skipped: run make bench-deps"
            continue
        samples = {"on": [], "off": []}
        for _ in range(args.runs):
            for mode in ("off", "on"):
                samples[mode].append(timed(workspace, mode, command))
        on, off = statistics.median(samples["on"]), statistics.median(samples["off"])
        results["configure_like"][name] = {"seconds_on": round(on, 3), "seconds_off": round(off, 3),
                                           "ratio": round(on / off, 3)}
    shutil.rmtree(workspace, ignore_errors=True)

    print(f"interposer, median of {args.runs} runs")
    for name, rate in results["decisions_per_second"].items():
        print(f"  analysis throughput, {name:30} {rate:8d} commands/s "
              f"({results['decisions_per_cpu_second'][name]} per CPU second)")
    for form, sizes in results["scale"].items():
        for size, figures in sizes.items():
            print(f"  one {form} of {int(size):6d} commands: {figures['seconds']:8.4f} s "
                  f"({figures['cpu_seconds']:.4f} s CPU), "
                  f"{figures['us_per_command']:7.1f} us per command ({figures['decision']})")
    codex = results["codex_wrapper"]
    print(f"  a Codex-shaped wrapper ({codex['bytes']} bytes, {codex['programs']} programs): {codex['ms']:.2f} ms "
          f"({codex['cpu_ms']:.2f} ms CPU, {codex['decision']})")
    for name, figures in added.items():
        print(f"  added per sh -c true, {name:34} {figures['ms_added_per_shell']:6.2f} ms")
    for name, c in results["configure_like"].items():
        if isinstance(c, str):
            print(f"  {name}: {c}")
        else:
            print(f"  {name}: {c['seconds_on']:.2f} s on, {c['seconds_off']:.2f} s off, ratio {c['ratio']:.2f}")
    save(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
