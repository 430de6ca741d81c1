"""Proxy throughput: 100 MB downloads through the jail's proxy against the same downloads on loopback.

The server runs on the host's 127.0.0.1. Direct: `curl` on the host fetches it. Proxied: `curl` in a
jail fetches it by name through the proxy (the name mapped to 127.0.0.1 for the bench), so the bytes
go server -> the supervisor's proxy -> the jail's socket (which pid 1 accepted and passed to the
proxy) -> curl. Each download's own time is curl's (`%{time_total}`), so the jail's start-up is not
in it. Interleaved (direct, proxied, direct, ...); each sample is the total of DOWNLOADS downloads;
median of N samples, with min and max.
"""

from __future__ import annotations

import http.server
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from common import arguments, header, save

SHELLJAIL = str(Path(sys.executable).parent / "shelljail")
SIZE = 100 << 20
DOWNLOADS = 5  # per sample: 500 MB, so that the jail's start-up (subtracted) is small beside it
CHUNK = b"\0" * (1 << 20)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(SIZE))
        self.end_headers()
        for _ in range(SIZE // len(CHUNK)):
            self.wfile.write(CHUNK)

    def log_message(self, *_args: object) -> None:
        pass


def timed(command: list[str]) -> float:
    """The seconds the downloads took, by curl's own clock (one line per download)."""
    out = subprocess.run(command, check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL).stdout
    times = [float(line) for line in out.split()]
    assert len(times) == DOWNLOADS, out
    return sum(times)


def main() -> int:
    args = arguments(__doc__, "proxy", 15)  # cheap (about a second a run), and direct downloads vary 2x
    curl = shutil.which("curl")
    if not curl:
        print("proxy bench skipped: curl is not installed")
        return 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    workspace = tempfile.mkdtemp(prefix="shelljail-bench-")
    profile = Path(workspace) / "bench.toml"
    profile.write_text(f'extends = "coding-agent"\n[network]\nallow = ["bench.test:{port}"]\n'
                       f'allow_addresses = ["127.0.0.1/32"]\n[network.hosts]\n"bench.test" = "127.0.0.1"\n')
    jail = [SHELLJAIL, "run", "-p", str(profile), "-w", workspace, "--interposer", "off", "--"]
    samples: dict[str, list[float]] = {"direct": [], "proxied": []}
    loop = (f"for i in $(seq {DOWNLOADS}); do {curl} -sS -o /dev/null -w '%{{time_total}}\\n' "
            f"http://HOST:{port}/; done")
    for _ in range(args.runs):
        samples["direct"].append(timed(["/bin/sh", "-c", loop.replace("HOST", "127.0.0.1")]))
        samples["proxied"].append(timed([*jail, "/bin/sh", "-c", loop.replace("HOST", "bench.test")]))
    server.shutdown()
    shutil.rmtree(workspace, ignore_errors=True)
    mb = DOWNLOADS * SIZE / (1 << 20)
    rates = {name: [mb / v for v in values] for name, values in samples.items()}
    medians = {name: statistics.median(values) for name, values in samples.items()}
    ratios = [d / p for d, p in zip(samples["direct"], samples["proxied"], strict=True)]  # pairs run side by side
    results = {**header("proxy", args.runs), "megabytes": mb,
               "seconds": {name: round(v, 4) for name, v in medians.items()},
               "MB/s": {name: {"median": round(statistics.median(v), 1), "min": round(min(v), 1),
                               "max": round(max(v), 1)} for name, v in rates.items()},
               "proxied / direct throughput": round(medians["direct"] / medians["proxied"], 3),
               "pairwise ratio": {"median": round(statistics.median(ratios), 3), "min": round(min(ratios), 3),
                                  "max": round(max(ratios), 3)}}
    print(f"{DOWNLOADS} downloads of {SIZE >> 20} MB over loopback, median of {args.runs} interleaved runs "
          "(curl's own download times)")
    for name in ("direct", "proxied"):
        figures = results["MB/s"][name]
        print(f"  {name:8} {figures['median']:8.1f} MB/s   min {figures['min']:8.1f}   max {figures['max']:8.1f}")
    print(f"  proxied / direct: x{results['proxied / direct throughput']:.2f} (pairs: median "
          f"x{results['pairwise ratio']['median']:.2f}, min x{results['pairwise ratio']['min']:.2f}, "
          f"max x{results['pairwise ratio']['max']:.2f})")
    save(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
