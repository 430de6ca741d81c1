"""A scripted model server on 127.0.0.1 for the agent tests: real HTTP, real clients.

It serves Ollama's `/api/chat` (one JSON answer, or with `"stream": true` a JSON line per chunk)
and the OpenAI-compatible `/v1/chat/completions` (one answer, or server-sent events), so that the
same script drives the reference agent and agents that speak either protocol.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def say(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": name, "arguments": arguments}}]}


class ScriptedHandler(BaseHTTPRequestHandler):
    """What every scripted model server's handler shares (here and in model_servers.py): answers whole, as
    JSON or raw bytes, and no request log on stderr."""

    def _send_raw(self, status: int, kind: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _send(self, status: int, data: dict[str, Any]) -> None:
        self._send_raw(status, "application/json", json.dumps(data).encode())

    def log_message(self, *_args: object) -> None:
        pass


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """A threaded server of `handler` on a free port of 127.0.0.1, serving in the background; and its URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


class EchoHandler(ScriptedHandler):
    """Any request answered 200 with its method and path: what a forward let through shows up here."""

    def _answer(self) -> None:
        self._send(200, {"path": self.path, "method": self.command})

    do_GET = do_POST = do_DELETE = _answer  # noqa: N815 - the standard library's names


@contextmanager
def echo_server() -> Iterator[int]:
    """An EchoHandler server on 127.0.0.1 for the block; its port."""
    httpd, _ = serve(EchoHandler)
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


class ModelServer:
    """Answers /api/chat with the next scripted message; records every request."""

    def __init__(self, script: list[dict[str, Any]], model: str = "scripted", by_turn: bool = False) -> None:
        """by_turn: answer with script[number of assistant messages in the request] rather than the next one,
        so that an agent that retries a request, or sends one of its own, gets the same answer again."""
        self.script = list(script)
        self.model = model
        self.by_turn = by_turn
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(ScriptedHandler):
            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                if self.path not in ("/api/chat", "/v1/chat/completions"):
                    return self._send(404, {"error": f"no {self.path}"})
                if body.get("model") != server.model:
                    return self._send(404, {"error": f"model '{body.get('model')}' not found"})
                message = server._next(body)
                if self.path == "/v1/chat/completions":
                    return self._openai(message, bool(body.get("stream")))
                if body.get("stream"):
                    content = message.get("content") or ""
                    chunks = [{"role": "assistant", "content": content[i:i + 8]} for i in range(0, len(content), 8)]
                    if message.get("tool_calls"):
                        chunks.append({"role": "assistant", "content": "", "tool_calls": message["tool_calls"]})
                    lines = [{"model": server.model, "created_at": "2026-11-23T00:00:00Z", "message": chunk,
                              "done": False} for chunk in chunks]
                    lines.append({"model": server.model, "created_at": "2026-11-23T00:00:00Z",
                                  "message": {"role": "assistant", "content": ""}, "done": True,
                                  "done_reason": "stop"})
                    return self._send_raw(200, "application/x-ndjson",
                                          "".join(json.dumps(line) + "\n" for line in lines).encode())
                self._send(200, {"model": server.model, "created_at": "2026-11-23T00:00:00Z", "message": message,
                                 "done": True, "done_reason": "stop"})

            def _openai(self, message: dict[str, Any], stream: bool) -> None:
                calls = [{"id": f"call_{i}", "type": "function",
                          "function": {"name": c["function"]["name"],
                                       "arguments": json.dumps(c["function"]["arguments"])}}
                         for i, c in enumerate(message.get("tool_calls") or [])]
                reply: dict[str, Any] = {"role": "assistant", "content": message.get("content") or None}
                if calls:
                    reply["tool_calls"] = calls
                finish = "tool_calls" if calls else "stop"
                if not stream:
                    return self._send(200, {"id": "chatcmpl-1", "object": "chat.completion", "created": 0,
                                            "model": server.model, "choices": [
                                                {"index": 0, "message": reply, "finish_reason": finish}]})
                delta = [{"index": 0, "delta": reply, "finish_reason": None},
                         {"index": 0, "delta": {}, "finish_reason": finish}]
                events = [{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": server.model,
                           "choices": [choice]} for choice in delta]
                payload = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
                self._send_raw(200, "text/event-stream", payload.encode())

        self.httpd, self.url = serve(Handler)

    def _next(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.by_turn:
            turn = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
            return self.script[turn] if turn < len(self.script) else say("(the script has ended)")
        return self.script.pop(0) if self.script else say("(the script has ended)")

    def tool_results(self) -> list[str]:
        """The tool results the model was sent, in order (from the last request, which holds them all)."""
        return [m.get("content", "") for m in self.requests[-1]["messages"] if m["role"] == "tool"]  # "" is left out

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
