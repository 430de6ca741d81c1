"""Scripted model servers on 127.0.0.1 for the real agents that speak other protocols than tests/model_server.py.

AnthropicServer answers Anthropic's `/v1/messages` (a JSON answer, or with `"stream": true` the server-sent
events Claude Code reads: message_start, content_block_start/delta/stop, message_delta, message_stop). The
script is the same `say`/`call` messages as tests/model_server.py, answered by turn (the number of assistant
messages in the request), so a retry or an agent's side request gets the same answer again.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from model_server import ScriptedHandler, say, serve


def _text(content: Any) -> str:
    """A tool result's or message's text: a string, or the text blocks of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


class AnthropicServer:
    """Answers /v1/messages with script[turn]; records every request body."""

    def __init__(self, script: list[dict[str, Any]], model: str = "claude-scripted") -> None:
        self.script = list(script)
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(ScriptedHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                path = self.path.split("?", 1)[0]
                if path.endswith("/count_tokens"):
                    return self._send(200, {"input_tokens": 1})
                if path != "/v1/messages":
                    return self._send(404, {"type": "error", "error": {"type": "not_found_error", "message": path}})
                with server.lock:
                    server.requests.append(body)
                turn = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
                # A message id per answer: Claude Code joins consecutive answers with one id into one message.
                body_id = f"msg_{turn}_{len(server.requests)}"
                message = server.script[turn] if turn < len(server.script) else say("(the script has ended)")
                blocks = server.blocks(message, turn)
                stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
                if not body.get("stream"):
                    return self._send(200, {**server.envelope(body, body_id), "content": blocks, "stop_reason": stop})
                self._events(body, body_id, blocks, stop)

            def _events(self, body: dict[str, Any], body_id: str, blocks: list[dict[str, Any]], stop: str) -> None:
                events: list[dict[str, Any]] = [{"type": "message_start",
                                                 "message": {**server.envelope(body, body_id), "content": []}}]
                for i, block in enumerate(blocks):
                    if block["type"] == "text":
                        start, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": block["text"]}
                    else:
                        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                        delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
                    events += [{"type": "content_block_start", "index": i, "content_block": start},
                               {"type": "content_block_delta", "index": i, "delta": delta},
                               {"type": "content_block_stop", "index": i}]
                events += [{"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                            "usage": {"output_tokens": 1}}, {"type": "message_stop"}]
                payload = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()
                self._send_raw(200, "text/event-stream", payload)

        self.httpd, self.url = serve(Handler)

    def envelope(self, body: dict[str, Any], message_id: str) -> dict[str, Any]:
        return {"id": message_id, "type": "message", "role": "assistant", "model": body.get("model", self.model),
                "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}

    @staticmethod
    def blocks(message: dict[str, Any], turn: int) -> list[dict[str, Any]]:
        """A scripted message as Anthropic content blocks (tool names and arguments as the script says)."""
        out: list[dict[str, Any]] = []
        if message.get("content"):
            out.append({"type": "text", "text": message["content"]})
        for i, c in enumerate(message.get("tool_calls") or []):
            out.append({"type": "tool_use", "id": f"toolu_{turn}_{i}", "name": c["function"]["name"],
                        "input": c["function"]["arguments"]})
        return out

    def tool_results(self) -> list[str]:
        """The tool results the agent sent, in order, from the request with the most turns."""
        with self.lock:
            longest = max(self.requests, key=lambda b: len(b.get("messages", [])), default={"messages": []})
        return [_text(b.get("content")) for m in longest["messages"] if m.get("role") == "user"
                and isinstance(m.get("content"), list) for b in m["content"]
                if isinstance(b, dict) and b.get("type") == "tool_result"]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class ResponsesServer:
    """Answers OpenAI's Responses API (`/v1/responses`, server-sent events, what Codex speaks) with
    script[turn], the turn being the number of function calls in the request's input; records every body."""

    def __init__(self, script: list[dict[str, Any]], model: str = "scripted") -> None:
        self.script = list(script)
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(ScriptedHandler):
            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path.split("?", 1)[0] != "/v1/responses":
                    return self._send_raw(404, "application/json", json.dumps({"error": self.path}).encode())
                with server.lock:
                    server.requests.append(body)
                    number = len(server.requests)
                items = [i for i in body.get("input", []) if isinstance(i, dict)]
                turn = sum(1 for i in items if i.get("type") == "function_call")
                message = server.script[turn] if turn < len(server.script) else say("(the script has ended)")
                output: list[dict[str, Any]] = []
                if message.get("content"):
                    output.append({"type": "message", "role": "assistant", "id": f"msg_{number}",
                                   "content": [{"type": "output_text", "text": message["content"]}]})
                for i, c in enumerate(message.get("tool_calls") or []):
                    output.append({"type": "function_call", "id": f"fc_{number}_{i}", "call_id": f"call_{turn}_{i}",
                                   "name": c["function"]["name"], "arguments": json.dumps(c["function"]["arguments"])})
                usage = {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}
                events: list[dict[str, Any]] = [{"type": "response.created", "response": {"id": f"resp_{number}"}}]
                events += [{"type": "response.output_item.done", "output_index": i, "item": item}
                           for i, item in enumerate(output)]
                events.append({"type": "response.completed", "response": {"id": f"resp_{number}", "usage": usage}})
                payload = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()
                self._send_raw(200, "text/event-stream", payload)

        self.httpd, self.url = serve(Handler)

    def tool_results(self) -> list[str]:
        """The function call outputs the agent sent, in order, from the request with the most input items."""
        with self.lock:
            longest = max(self.requests, key=lambda b: len(b.get("input", [])), default={"input": []})
        return [str(i.get("output", "")) for i in longest["input"]
                if isinstance(i, dict) and i.get("type") == "function_call_output"]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class GeminiServer:
    """Answers Gemini's `/v1beta/models/M:generateContent` and `:streamGenerateContent?alt=sse` (what Gemini
    CLI speaks) with script[turn], the turn being the model's function calls so far; a request for JSON (its
    router's complexity question) gets the lowest score. Records every body."""

    def __init__(self, script: list[dict[str, Any]]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(ScriptedHandler):
            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if not self.path.startswith("/v1beta/models/"):
                    return self._send_raw(404, "application/json", json.dumps({"error": self.path}).encode())
                with server.lock:
                    server.requests.append(body)
                contents = [c for c in body.get("contents", []) if isinstance(c, dict)]
                turn = sum(1 for c in contents if c.get("role") == "model"
                           and any("functionCall" in p for p in c.get("parts", [])))
                config = body.get("generationConfig") or {}
                if config.get("responseMimeType") == "application/json" or "responseJsonSchema" in config:
                    parts = [{"text": json.dumps({"complexity_reasoning": "scripted", "complexity_score": 1})}]
                else:
                    message = server.script[turn] if turn < len(server.script) else say("(the script has ended)")
                    parts = [{"text": message["content"]}] if message.get("content") else []
                    parts += [{"functionCall": {"name": c["function"]["name"], "args": c["function"]["arguments"]}}
                              for c in message.get("tool_calls") or []]
                chunk = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP",
                                         "index": 0}],
                         "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2}}
                if ":streamGenerateContent" in self.path:
                    return self._send_raw(200, "text/event-stream", f"data: {json.dumps(chunk)}\n\n".encode())
                self._send_raw(200, "application/json", json.dumps(chunk).encode())

        self.httpd, self.url = serve(Handler)

    def tool_results(self) -> list[str]:
        """The function responses the agent sent, in order, from the request with the most contents."""
        with self.lock:
            longest = max(self.requests, key=lambda b: len(b.get("contents", [])), default={"contents": []})
        return [json.dumps(p["functionResponse"].get("response")) for c in longest["contents"]
                for p in c.get("parts", []) if isinstance(p, dict) and "functionResponse" in p]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
