"""Fake OpenAI Chat Completions API for the real `opencode` CLI (`@ai-sdk/openai-compatible`).

`POST /v1/chat/completions`: SSE chunks (`delta.content`, `delta.reasoning_content`,
`delta.tool_calls`), a final `finish_reason` chunk, a usage chunk (`choices: []`) when
`stream_options.include_usage` is set, then `data: [DONE]`; plain JSON when not streaming.
Title requests (system prompt "You are a title generator...") get a short title without
consuming the queue and are logged with kind `title`, so `.model_requests` skips them.
`GET /v1/models` lists the fake model ids. Anything else (e.g. `GET /npm/...` from opencode's
plugin installer) is logged and 404ed by the base class.

Run standalone: `python -m tests.fakes.openai_chat --port-file F [--log requests.jsonl]`.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar

from tests.fakes.base import FakeModelServer, Responder, iter_text_blocks, serve_main
from tests.fakes.openai_common import openai_error_body
from tests.fakes.replies import Drop, Echo, Error, Reply, Text, Thinking, ToolCall, Usage, resolve_tool

TITLE_MARKER = "You are a title generator"
TITLE_TEXT = "Fake session title"
MODEL_IDS = ("text", "reasoning", "tool", "title")


class ChatFake(FakeModelServer):
    """Fake `POST /v1/chat/completions` (SSE and JSON) for opencode."""

    model_paths: ClassVar[frozenset[str]] = frozenset({"/v1/chat/completions"})
    name: ClassVar[str] = "openai_chat"

    # --- reading requests ---------------------------------------------------------------------

    def _messages(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        messages = body.get("messages")
        return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []

    def user_texts(self, body: dict[str, Any]) -> list[str]:
        return [t for m in self._messages(body) if m.get("role") == "user" for t in iter_text_blocks(m.get("content"))]

    def last_user_text(self, body: dict[str, Any]) -> str:
        for message in reversed(self._messages(body)):
            if message.get("role") == "user":
                texts = list(iter_text_blocks(message.get("content")))
                if texts:
                    return texts[-1]
        return ""

    def message_count(self, body: dict[str, Any]) -> int:
        return len(self._messages(body))

    def tool_result_text(self, body: dict[str, Any]) -> str | None:
        messages = self._messages(body)
        if not messages or messages[-1].get("role") != "tool":
            return None
        return "\n".join(iter_text_blocks(messages[-1].get("content")))

    def classify(self, method: str, path: str, body: dict[str, Any] | None) -> str:
        kind = super().classify(method, path, body)
        if kind == "model" and body is not None and self._is_title_request(body):
            return "title"
        return kind

    def _is_title_request(self, body: dict[str, Any]) -> bool:
        for message in self._messages(body):
            texts = iter_text_blocks(message.get("content"))
            if message.get("role") == "system" and any(t.lstrip().startswith(TITLE_MARKER) for t in texts):
                return True
        return False

    # --- writing replies ----------------------------------------------------------------------

    def error_body(self, reply: Error) -> dict[str, Any]:
        return openai_error_body(reply)

    def handle_other(self, out: Responder, method: str, path: str, body: dict[str, Any] | None) -> bool:
        if method == "GET" and path == "/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in MODEL_IDS]
            out.send_json(200, {"object": "list", "data": data})
            return True
        return False

    def handle_side_call(self, out: Responder, kind: str, body: dict[str, Any]) -> None:
        self.render(out, Text(TITLE_TEXT, chunks=1), body, 0)

    def render(self, out: Responder, reply: Reply, body: dict[str, Any], raw_len: int) -> None:
        completion_id = self.new_id("chatcmpl-fake")
        model = str(body.get("model") or "fake")
        created = int(time.time())
        content, reasoning, tool_calls, finish, explicit = self._parts(reply, body)
        usage = self._usage(explicit, content, reasoning, tool_calls, raw_len)
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": content or None}
            if reasoning:
                message["reasoning_content"] = reasoning
            if tool_calls:
                message["tool_calls"] = tool_calls
            completion = {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
            }
            out.send_json(200, completion)
            return

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> None:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            out.event(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [choice],
                }
            )

        chunks = reply.chunks if isinstance(reply, Text) else 3
        delay = reply.delay_s if isinstance(reply, Text) else 0.0
        out.start_stream()
        chunk({"role": "assistant", "content": ""})
        if isinstance(reply, Drop):
            chunk({"content": content})
            out.drop()
            return
        for piece in self.split_text(reasoning, chunks) if reasoning else []:
            chunk({"reasoning_content": piece})
        for i, piece in enumerate(self.split_text(content, chunks) if content else []):
            if i:
                out.wait(delay)
            chunk({"content": piece})
        for index, call in enumerate(tool_calls):
            head = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            chunk({"tool_calls": [head]})
            for piece in self.split_text(call["function"]["arguments"], chunks):
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        chunk({}, finish)
        if (body.get("stream_options") or {}).get("include_usage"):
            out.event(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
            )
        out.event("[DONE]")
        out.end_stream()

    def _parts(self, reply: Reply, body: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]], str, Usage | None]:
        """content, reasoning, tool_calls, finish_reason and explicit usage of a reply."""
        if isinstance(reply, Echo):
            return self.echo_text(body), "", [], "stop", None
        if isinstance(reply, Text):
            return reply.text, "", [], "stop", reply.usage
        if isinstance(reply, Thinking):
            return reply.text, reply.thought, [], "stop", reply.usage
        if isinstance(reply, ToolCall):
            tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
            offered = [str((t.get("function") or {}).get("name")) for t in tools]
            call = {
                "id": reply.call_id or self.new_id("call_fake_"),
                "type": "function",
                "function": {
                    "name": resolve_tool(reply.tool, offered) if reply.tool else "bash",
                    "arguments": json.dumps(
                        reply.input
                        if reply.input is not None
                        else {"command": reply.command, "description": reply.description}
                    ),
                },
            }
            return "", "", [call], "tool_calls", reply.usage
        if isinstance(reply, Drop):
            return reply.partial_text, "", [], "stop", None
        raise TypeError(f"unsupported reply {reply!r}")

    @staticmethod
    def _usage(
        explicit: Usage | None, content: str, reasoning: str, tool_calls: list[dict[str, Any]], raw_len: int
    ) -> dict[str, Any]:
        u = explicit or Usage()
        prompt = u.input_tokens if u.input_tokens is not None else max(1, raw_len // 4)
        reasoning_tokens = u.reasoning_tokens or len(reasoning) // 4
        completion = (
            u.output_tokens
            if u.output_tokens is not None
            else max(1, (len(content) + len(json.dumps(tool_calls)) * bool(tool_calls)) // 4) + reasoning_tokens
        )
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
        }


if __name__ == "__main__":
    raise SystemExit(serve_main(ChatFake))
