"""Fake Anthropic Messages API for the real `claude` CLI.

`POST /v1/messages` (the CLI adds `?beta=true`): SSE when `stream` is true (message_start → ping →
content_block_start/delta/stop per block → message_delta → message_stop), plain JSON otherwise
(claude falls back to a non-streaming request after a broken stream). `messages` may contain
`role: "system"` entries (claude's mid-conversation system messages); they count as messages but
never as user text.

Run standalone: `python -m tests.fakes.anthropic --port-file F [--log requests.jsonl]`.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from tests.fakes.base import FakeModelServer, Responder, iter_text_blocks, serve_main
from tests.fakes.replies import Drop, Echo, Error, Reply, Text, Thinking, ToolCall, Usage, resolve_tool

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def _is_tool_result_message(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


class AnthropicFake(FakeModelServer):
    """Fake `POST /v1/messages` (SSE and non-streaming) for claude."""

    model_paths: ClassVar[frozenset[str]] = frozenset({"/v1/messages"})
    name: ClassVar[str] = "anthropic"

    # --- reading requests ---------------------------------------------------------------------

    def _messages(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        messages = body.get("messages")
        return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []

    def user_texts(self, body: dict[str, Any]) -> list[str]:
        return [t for m in self._messages(body) if m.get("role") == "user" for t in iter_text_blocks(m.get("content"))]

    def last_user_text(self, body: dict[str, Any]) -> str:
        # claude prepends <system-reminder> text blocks to the prompt's message: the prompt is the
        # last text block of the newest user message that has text.
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
        if not messages or messages[-1].get("role") != "user" or not _is_tool_result_message(messages[-1]):
            return None
        texts: list[str] = []
        for block in messages[-1]["content"]:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                texts.extend(iter_text_blocks(block.get("content")))
        return "\n".join(texts)

    # --- writing replies ----------------------------------------------------------------------

    def error_body(self, reply: Error) -> dict[str, Any]:
        kind = reply.type or _ERROR_TYPES.get(reply.status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": reply.message}}

    def _blocks(self, reply: Reply, body: dict[str, Any]) -> tuple[list[dict[str, Any]], str, Usage | None]:
        """Content blocks (complete), stop_reason and explicit usage of a reply."""
        if isinstance(reply, Echo):
            return [{"type": "text", "text": self.echo_text(body)}], "end_turn", None
        if isinstance(reply, Text):
            return [{"type": "text", "text": reply.text}], "end_turn", reply.usage
        if isinstance(reply, Thinking):
            signature = "fake-signature-" + self.new_id("sig")
            blocks = [
                {"type": "thinking", "thinking": reply.thought, "signature": signature},
                {"type": "text", "text": reply.text},
            ]
            return blocks, "end_turn", reply.usage
        if isinstance(reply, ToolCall):
            block = {
                "type": "tool_use",
                "id": reply.call_id or self.new_id("toolu_fake_"),
                "name": resolve_tool(reply.tool, _offered(body)) if reply.tool else "Bash",
                "input": reply.input
                if reply.input is not None
                else {"command": reply.command, "description": reply.description},
            }
            return [block], "tool_use", reply.usage
        if isinstance(reply, Drop):
            return [{"type": "text", "text": reply.partial_text}], "end_turn", None
        raise TypeError(f"unsupported reply {reply!r}")

    def _usage(self, usage: Usage | None, blocks: list[dict[str, Any]], raw_len: int) -> dict[str, int]:
        u = usage or Usage()
        out_chars = sum(len(json.dumps(b)) for b in blocks)
        return {
            "input_tokens": u.input_tokens if u.input_tokens is not None else max(1, raw_len // 4),
            "output_tokens": u.output_tokens if u.output_tokens is not None else max(1, out_chars // 4),
            "cache_creation_input_tokens": u.cache_creation_tokens,
            "cache_read_input_tokens": u.cached_tokens,
        }

    def render(self, out: Responder, reply: Reply, body: dict[str, Any], raw_len: int) -> None:
        blocks, stop_reason, explicit = self._blocks(reply, body)
        usage = self._usage(explicit, blocks, raw_len)
        message_id = self.new_id("msg_fake_")
        model = str(body.get("model") or "claude-fake")
        headers = {"request-id": self.new_id("req_fake_")}
        if not body.get("stream"):
            message = {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": blocks,
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": usage,
            }
            out.send_json(200, message, headers)
            return
        chunks = reply.chunks if isinstance(reply, Text) else 3
        delay = reply.delay_s if isinstance(reply, Text) else 0.0
        out.start_stream(headers)
        start_usage = dict(usage, output_tokens=1)
        out.event(
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
            "message_start",
        )
        out.event({"type": "ping"}, "ping")
        if isinstance(reply, Drop):
            self._stream_block(out, 0, blocks[0], 1, 0.0, close=False)
            out.drop()
            return
        for index, block in enumerate(blocks):
            self._stream_block(out, index, block, chunks, delay)
        out.event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": usage,
            },
            "message_delta",
        )
        out.event({"type": "message_stop"}, "message_stop")
        out.end_stream()

    def _stream_block(
        self, out: Responder, index: int, block: dict[str, Any], chunks: int, delay: float, close: bool = True
    ) -> None:
        kind = block["type"]
        if kind == "text":
            start: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in self.split_text(block["text"], chunks)]
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": p} for p in self.split_text(block["thinking"], chunks)]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:  # tool_use: the input arrives as partial JSON
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            deltas = [
                {"type": "input_json_delta", "partial_json": p}
                for p in self.split_text(json.dumps(block["input"]), chunks)
            ]
        out.event({"type": "content_block_start", "index": index, "content_block": start}, "content_block_start")
        for i, delta in enumerate(deltas):
            if i:
                out.wait(delay)
            out.event({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")
        if not close:  # Drop: the stream breaks inside the block
            return
        out.event({"type": "content_block_stop", "index": index}, "content_block_stop")


def _offered(body: dict[str, Any]) -> list[str]:
    return [str(t.get("name")) for t in body.get("tools") or [] if isinstance(t, dict)]


if __name__ == "__main__":
    raise SystemExit(serve_main(AnthropicFake))
