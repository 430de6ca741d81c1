"""The model forward's cost per request: an Ollama-like request through the jail's forward against a direct one.

The server, on the host's 127.0.0.1, answers `POST /api/chat` with a small JSON reply, as Ollama
does for a non-streamed chat (its inference left out: that is the same whichever way the request
came). One client script (the system's python3, `http.client`) times each request from its
connect to the last byte of the answer, REQUESTS of them after a warm-up, and prints their median:
- direct: on the host, a new connection per request (as every request through the forward is:
  its answer says Connection: close);
- direct, keep-alive: on the host, one connection for all (what a client keeps when it can);
- forwarded (ollama): in a jail, through the filtered forward (protocol "ollama", the default),
  which parses and checks each request, connects to the server, relays the head and splices the
  body back;
- forwarded (tcp): in a jail, through the raw relay (protocol "tcp"), a new connection per
  request too, to show what the filter itself adds over forwarding bytes.
Interleaved runs (the four, then again); the figure is the median of the runs' medians, and the
added latency is forwarded minus direct, per run (side by side), then its median. The issue's
goal: at most 1 ms added per request.
"""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from common import arguments, header, save

SHELLJAIL = str(Path(sys.executable).parent / "shelljail")
REQUESTS = 300
REPLY = json.dumps({"model": "bench", "created_at": "2026-12-02T00:00:00Z", "done": True, "done_reason": "stop",
                    "message": {"role": "assistant", "content": "Hello! How can I help you today?"}}).encode()

CLIENT = """\
import http.client, json, statistics, sys, time
port, count, reuse = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "keep-alive"
body = json.dumps({"model": "bench", "stream": False, "messages": [{"role": "user", "content": "Hello"}]})
times, connection = [], None
for i in range(count + 30):  # the first 30: warm-up (the server's threads, the forward's first imports)
    start = time.perf_counter()
    if connection is None:
        connection = http.client.HTTPConnection("127.0.0.1", port)
    connection.request("POST", "/api/chat", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    if not reuse or response.will_close:
        connection.close()
        connection = None
    if i >= 30:
        times.append(time.perf_counter() - start)
    assert response.status == 200 and b"Hello!" in data, (response.status, data)
print(json.dumps({"median": statistics.median(times), "min": min(times)}))
"""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Go's servers (Ollama) do

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(REPLY)))
        self.end_headers()
        self.wfile.write(REPLY)

    def log_message(self, *_args: object) -> None:
        pass


def timed(command: list[str]) -> float:
    out = subprocess.run(command, check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL).stdout
    return json.loads(out.splitlines()[-1])["median"]


def main() -> int:
    args = arguments(__doc__, "forward", 7)
    python = shutil.which("python3", path="/usr/bin:/bin")
    if not python:
        print("forward bench skipped: no python3 in /usr/bin")
        return 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    workspace = tempfile.mkdtemp(prefix="shelljail-bench-")
    (Path(workspace) / "client.py").write_text(CLIENT)
    profiles = {}
    for protocol in ("ollama", "tcp"):
        profiles[protocol] = Path(workspace) / f"{protocol}.toml"
        profiles[protocol].write_text(f'extends = "coding-agent"\n[network]\nforward = [{{ address = '
                                      f'"127.0.0.1:{port}", protocol = "{protocol}" }}]\n')
    client = [python, str(Path(workspace) / "client.py"), str(port), str(REQUESTS)]
    ways = {
        "direct": client + ["new"],
        "direct, keep-alive": client + ["keep-alive"],
        # The client would keep its connection: through the filter it reconnects, told Connection: close.
        # Through the raw relay it could keep it: made to reconnect too, for the same work as "direct".
        **{f"forwarded ({protocol})": [SHELLJAIL, "run", "-p", str(path), "-w", workspace, "--interposer", "off",
                                       "--", python, "client.py", str(port), str(REQUESTS),
                                       "keep-alive" if protocol == "ollama" else "new"]
           for protocol, path in profiles.items()},
    }
    samples: dict[str, list[float]] = {way: [] for way in ways}
    for _ in range(args.runs):
        for way, command in ways.items():
            samples[way].append(timed(command))
    server.shutdown()
    shutil.rmtree(workspace, ignore_errors=True)
    us = {way: [v * 1e6 for v in values] for way, values in samples.items()}
    results = {**header("forward", args.runs), "requests per run": REQUESTS,
               "microseconds per request (median of runs' medians)": {
                   way: {"median": round(statistics.median(v), 1), "min": round(min(v), 1), "max": round(max(v), 1)}
                   for way, v in us.items()}}
    print(f"POST /api/chat with a small JSON reply: the median of {REQUESTS} requests per run, "
          f"median of {args.runs} interleaved runs")
    for way, v in us.items():
        print(f"  {way:22} {statistics.median(v):8.1f} us   min {min(v):8.1f}   max {max(v):8.1f}")
    added = {}
    for protocol in ("ollama", "tcp"):
        pairs = [f - d for f, d in zip(us[f"forwarded ({protocol})"], us["direct"], strict=True)]
        added[protocol] = {"median": round(statistics.median(pairs), 1), "min": round(min(pairs), 1),
                           "max": round(max(pairs), 1)}
        print(f"  added by the forward ({protocol}): {added[protocol]['median']:.1f} us per request "
              f"(runs: min {added[protocol]['min']:.1f}, max {added[protocol]['max']:.1f})")
    kept = [f - d for f, d in zip(us["forwarded (ollama)"], us["direct, keep-alive"], strict=True)]
    results["added microseconds per request, over a direct keep-alive client"] = round(statistics.median(kept), 1)
    print(f"  added over a direct client that keeps its connection: {statistics.median(kept):.1f} us")
    filtering = [o - t for o, t in zip(us["forwarded (ollama)"], us["forwarded (tcp)"], strict=True)]
    results["added microseconds per request, over direct"] = added
    results["added microseconds per request, ollama over tcp (the filter itself)"] = round(
        statistics.median(filtering), 1)
    results["goal: at most 1000 us added (ollama over direct)"] = "met" if added["ollama"]["median"] <= 1000 else \
        "NOT met"
    print(f"  the filter itself (ollama over tcp): {results[list(results)[-2]]:.1f} us; "
          f"goal of 1 ms: {results[list(results)[-1]]}")
    save(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
