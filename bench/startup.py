"""Start-up cost of `shelljail run -- /bin/true` against bwrap, firejail, sandbox-runtime and a bare /bin/true.

bwrap gets the same namespaces and the same mounts: its arguments are built
from the view shelljail resolves for the default profile. "shelljail run" is
the default, everything on (interposer, seccomp, Landlock, audit log);
"jail core only" turns the interposer, seccomp and Landlock off. Runs are
interleaved (A B C A B C ...) so that machine noise hits every contender
alike; each figure is the median of N runs with min and max, and ratios are
against bwrap and /bin/true measured in the same run. sandbox-runtime
(Anthropic's `srt`, from npm into bench/cache/srt by `make bench-deps`) runs
with settings that allow writes to the workspace only and no network.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import arguments, header, save  # noqa: E402

from jail.policy import profile, spec, view  # noqa: E402

SRT = ROOT / "bench" / "cache" / "srt" / "node_modules" / ".bin" / "srt"


def bwrap_argv(resolved: view.View) -> list[str]:
    argv = ["bwrap", "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net",
            "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "shelljail",
            "--proc", "/proc", "--dev", "/dev"]
    for mount in resolved.mounts:
        if isinstance(mount, view.Bind):
            argv += ["--bind" if mount.writable else "--ro-bind", mount.source, mount.target]
        elif isinstance(mount, view.Symlink):
            argv += ["--symlink", mount.points_to, mount.target]
        elif isinstance(mount, view.Tmpfs):
            argv += ["--tmpfs", mount.target]
    return [*argv, "--chdir", resolved.workspace, "--", "/bin/true"]


def time_once(argv: list[str], cwd: str) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdin=subprocess.DEVNULL)
    return (time.perf_counter() - started) * 1000


def main() -> int:
    args = arguments(__doc__, "startup", 20, peers=True)

    workspace = tempfile.mkdtemp(prefix="shelljail-bench-")
    shelljail = str(Path(sys.executable).parent / "shelljail")
    core = Path(workspace) / "core-only.toml"
    core.write_text('extends = "coding-agent"\n[seccomp]\nenabled = false\n[landlock]\nmode = "off"\n'
                    '[interposer]\nenabled = false\n')
    contenders = {
        "/bin/true": ["/bin/true"],
        "shelljail run": [shelljail, "run", "-w", workspace, "--", "/bin/true"],
        "shelljail, jail core only": [shelljail, "run", "-p", str(core), "-w", workspace, "--", "/bin/true"],
    }
    skipped = []
    if shutil.which("bwrap"):
        _, home = spec.caller_identity(os.environ)
        resolved = view.resolve(profile.load(), workspace, home, "bench")
        contenders["bwrap (same mounts)"] = bwrap_argv(resolved)
    else:
        skipped.append("bwrap: not installed (make bench-deps)")
    if shutil.which("firejail"):  # its defaults: no profile, so none of its own filters are chosen for it
        contenders["firejail --noprofile"] = ["firejail", "--quiet", "--noprofile", "/bin/true"]
    else:
        skipped.append("firejail: not installed (make bench-deps)")
    missing = [tool for tool in ("bwrap", "socat", "rg") if not shutil.which(tool)]
    if not SRT.exists():
        skipped.append("sandbox-runtime: not installed (make bench-deps)")
    elif missing:
        skipped.append(f"sandbox-runtime: needs {', '.join(missing)} (make bench-deps)")
    else:
        settings = Path(workspace) / "srt-settings.json"
        settings.write_text('{"network": {"allowedDomains": [], "deniedDomains": []}, "filesystem": '
                            f'{{"denyRead": [], "allowWrite": ["{workspace}"], "denyWrite": []}}}}')
        contenders["sandbox-runtime (srt)"] = [str(SRT), "-s", str(settings), "/bin/true"]

    if skipped and not args.without_peers:  # a ratio against nothing is no result: say so, loudly
        shutil.rmtree(workspace, ignore_errors=True)
        print(f"bench/startup.py: a peer to compare with is missing: {'; '.join(skipped)}. Install them "
              "(make bench-deps), or pass --without-peers to measure shelljail alone", file=sys.stderr)
        return 1
    for argv in contenders.values():  # warm-up: page cache, .pyc files
        for _ in range(3):
            time_once(argv, workspace)
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.runs):
        for name, argv in contenders.items():
            samples[name].append(time_once(argv, workspace))
    shutil.rmtree(workspace, ignore_errors=True)

    medians = {name: statistics.median(values) for name, values in samples.items()}
    results = {
        **header("startup", args.runs), "skipped": skipped,
        "ms": {name: {"median": round(medians[name], 2), "min": round(min(v), 2), "max": round(max(v), 2)}
               for name, v in samples.items()},
        "ratios": {},
    }
    for baseline in ("bwrap (same mounts)", "firejail --noprofile", "sandbox-runtime (srt)", "/bin/true"):
        if baseline in medians:
            results["ratios"][f"shelljail / {baseline}"] = round(medians["shelljail run"] / medians[baseline], 2)
            results["ratios"][f"jail core / {baseline}"] = round(
                medians["shelljail, jail core only"] / medians[baseline], 2)

    print(f"start-up, median of {args.runs} interleaved runs (ms)")
    for name, figures in results["ms"].items():
        print(f"  {name:26} {figures['median']:8.2f}   min {figures['min']:7.2f}   max {figures['max']:7.2f}")
    for name, ratio in results["ratios"].items():
        print(f"  {name:34} {ratio:6.2f}x")
    for note in skipped:
        print(f"  skipped: {note}")
    save(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
