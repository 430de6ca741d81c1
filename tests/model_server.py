"""A scripted Ollama-compatible model server on 127.0.0.1, for the agent tests: real HTTP, real client."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def say(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": name, "arguments": arguments}}]}


class ModelServer:
    """Answers /api/chat with the next scripted message; records every request."""

    def __init__(self, script: list[dict[str, Any]], model: str = "scripted") -> None:
        self.script = list(script)
        self.model = model
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                if self.path != "/api/chat":
                    return self._send(404, {"error": f"no {self.path}"})
                if body.get("model") != server.model:
                    return self._send(404, {"error": f"model '{body.get('model')}' not found"})
                message = server.script.pop(0) if server.script else say("(the script has ended)")
                self._send(200, {"model": server.model, "created_at": "2026-11-23T00:00:00Z", "message": message,
                                 "done": True, "done_reason": "stop"})

            def _send(self, status: int, data: dict[str, Any]) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def tool_results(self) -> list[str]:
        """The tool results the model was sent, in order (from the last request, which holds them all)."""
        return [m.get("content", "") for m in self.requests[-1]["messages"] if m["role"] == "tool"]  # "" is left out

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
