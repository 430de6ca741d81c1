"""Proxy throughput: 100 MB downloads through the jail's proxy against the same downloads on loopback.

The server runs on the host's 127.0.0.1. Direct: `curl` on the host fetches it. Proxied: `curl` in a
jail fetches it by name through the proxy (the name mapped to 127.0.0.1 for the bench), so the bytes
go server -> proxy (supervisor) -> unix socket -> pid 1's bridge -> curl. Interleaved, median of N;
jail start-up is measured separately (a run of /bin/true) and subtracted.
"""

from __future__ import annotations

import http.server
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
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
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    args = arguments(__doc__, "proxy", 5)
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
    samples: dict[str, list[float]] = {"direct": [], "proxied": [], "start-up": []}
    loop = f"for i in $(seq {DOWNLOADS}); do {curl} -sS -o /dev/null http://%s:{port}/; done"
    for _ in range(args.runs):
        samples["direct"].append(timed(["/bin/sh", "-c", loop % "127.0.0.1"]))
        samples["proxied"].append(timed([*jail, "/bin/sh", "-c", loop % "bench.test"]))
        samples["start-up"].append(timed([*jail, "/bin/true"]))
    server.shutdown()
    shutil.rmtree(workspace, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    transfer = medians["proxied"] - medians["start-up"]
    mb = DOWNLOADS * SIZE / (1 << 20)
    results = {**header("proxy", args.runs), "megabytes": mb,
               "seconds": {name: round(v, 4) for name, v in medians.items()},
               "MB/s": {"direct": round(mb / medians["direct"], 1), "proxied": round(mb / transfer, 1)},
               "proxied / direct throughput": round(medians["direct"] / transfer, 3)}
    print(f"{DOWNLOADS} downloads of {SIZE >> 20} MB over loopback, median of {args.runs} interleaved runs")
    print(f"  direct {results['MB/s']['direct']} MB/s, through the jail's proxy {results['MB/s']['proxied']} MB/s "
          f"(x{results['proxied / direct throughput']:.2f}; jail start-up {medians['start-up'] * 1000:.0f} ms "
          "subtracted)")
    save(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
