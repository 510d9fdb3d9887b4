"""Fake OpenAI Responses API for the real `codex` CLI.

`POST /v1/responses` answered as SSE: `response.created`, then per output item
`response.output_item.added` / deltas / `response.output_item.done`, then `response.completed`
with `usage` (`input_tokens_details.cached_tokens`, `output_tokens_details.reasoning_tokens`).
codex re-sends the whole history every request (`input` items: messages, `function_call`,
`function_call_output`, ...). A websocket upgrade (`GET /v1/responses`) gets a 404, which makes the
built-in openai provider fall back to HTTP POST.

Run standalone: `python -m tests.fakes.openai_responses --port-file F [--log requests.jsonl]`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, ClassVar

from tests.fakes.base import FakeModelServer, Responder, iter_text_blocks, serve_main
from tests.fakes.openai_common import openai_error_body
from tests.fakes.replies import Drop, Echo, Error, Reply, Text, Thinking, ToolCall, Usage, resolve_tool

# codex 0.169 offers its shell as the function tool `exec_command` with a required `cmd` string.
SHELL_TOOL = "exec_command"

_TOOL_OUTPUT_TYPES = ("function_call_output", "custom_tool_call_output")

# send(event_type, **fields): one SSE event with a running sequence_number
_Send = Callable[..., None]


class ResponsesFake(FakeModelServer):
    """Fake `POST /v1/responses` (SSE) for codex."""

    model_paths: ClassVar[frozenset[str]] = frozenset({"/v1/responses"})
    name: ClassVar[str] = "openai_responses"

    # --- reading requests ---------------------------------------------------------------------

    def _items(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        items = body.get("input")
        if isinstance(items, str):
            return [{"type": "message", "role": "user", "content": items}]
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    @staticmethod
    def _is_user_message(item: dict[str, Any]) -> bool:
        return item.get("type", "message") == "message" and item.get("role") == "user"

    def user_texts(self, body: dict[str, Any]) -> list[str]:
        return [
            t
            for item in self._items(body)
            if self._is_user_message(item)
            for t in iter_text_blocks(item.get("content"), "input_text")
        ]

    def last_user_text(self, body: dict[str, Any]) -> str:
        for item in reversed(self._items(body)):
            if self._is_user_message(item):
                texts = list(iter_text_blocks(item.get("content"), "input_text"))
                if texts:
                    return texts[-1]
        return ""

    def message_count(self, body: dict[str, Any]) -> int:
        return len(self._items(body))

    def tool_result_text(self, body: dict[str, Any]) -> str | None:
        items = self._items(body)
        if not items or items[-1].get("type") not in _TOOL_OUTPUT_TYPES:
            return None
        output = items[-1].get("output")
        if isinstance(output, str):
            return output
        return "\n".join(iter_text_blocks(output, "input_text"))

    # --- writing replies ----------------------------------------------------------------------

    def error_body(self, reply: Error) -> dict[str, Any]:
        return openai_error_body(reply)

    def render(self, out: Responder, reply: Reply, body: dict[str, Any], raw_len: int) -> None:
        response_id = self.new_id("resp_fake_")
        model = str(body.get("model") or "gpt-fake")
        seq = iter(range(1_000_000))

        def send(event_type: str, **fields: Any) -> None:
            out.event({"type": event_type, "sequence_number": next(seq), **fields}, event_type)

        def response(status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None) -> dict[str, Any]:
            return {
                "id": response_id,
                "object": "response",
                "created_at": int(time.time()),
                "status": status,
                "model": model,
                "output": output,
                "usage": usage,
            }

        out.start_stream()
        send("response.created", response=response("in_progress", [], None))
        chunks = reply.chunks if isinstance(reply, Text) else 3
        delay = reply.delay_s if isinstance(reply, Text) else 0.0
        output: list[dict[str, Any]] = []
        reasoning_chars = 0
        explicit: Usage | None = None

        if isinstance(reply, Drop):
            item = self._message_item(reply.partial_text)
            send("response.output_item.added", output_index=0, item=dict(item, content=[], status="in_progress"))
            send(
                "response.output_text.delta",
                item_id=item["id"],
                output_index=0,
                content_index=0,
                delta=reply.partial_text,
            )
            out.drop()
            return
        if isinstance(reply, Thinking):
            explicit = reply.usage
            reasoning_chars = len(reply.thought)
            output.append(self._stream_reasoning(send, len(output), reply.thought, chunks))
            output.append(self._stream_message(send, out, len(output), reply.text, chunks, delay))
        elif isinstance(reply, ToolCall):
            explicit = reply.usage
            output.append(self._stream_tool_call(send, len(output), reply, chunks, body))
        elif isinstance(reply, Text):
            explicit = reply.usage
            output.append(self._stream_message(send, out, len(output), reply.text, chunks, delay))
        elif isinstance(reply, Echo):
            output.append(self._stream_message(send, out, 0, self.echo_text(body), chunks, delay))
        else:
            raise TypeError(f"unsupported reply {reply!r}")
        usage = self._usage(explicit, output, raw_len, reasoning_chars)
        send("response.completed", response=response("completed", output, usage))
        out.end_stream()

    def _message_item(self, text: str) -> dict[str, Any]:
        return {
            "id": self.new_id("msg_fake_"),
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }

    def _stream_message(
        self, send: _Send, out: Responder, index: int, text: str, chunks: int, delay: float
    ) -> dict[str, Any]:
        item = self._message_item(text)
        send("response.output_item.added", output_index=index, item=dict(item, content=[], status="in_progress"))
        part = {"type": "output_text", "text": "", "annotations": []}
        send("response.content_part.added", item_id=item["id"], output_index=index, content_index=0, part=part)
        for i, piece in enumerate(self.split_text(text, chunks)):
            if i:
                out.wait(delay)
            send("response.output_text.delta", item_id=item["id"], output_index=index, content_index=0, delta=piece)
        send("response.output_text.done", item_id=item["id"], output_index=index, content_index=0, text=text)
        send(
            "response.content_part.done",
            item_id=item["id"],
            output_index=index,
            content_index=0,
            part=item["content"][0],
        )
        send("response.output_item.done", output_index=index, item=item)
        return item

    def _stream_reasoning(self, send: _Send, index: int, thought: str, chunks: int) -> dict[str, Any]:
        item_id = self.new_id("rs_fake_")
        item = {
            "id": item_id,
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": thought}],
            "encrypted_content": None,
        }
        send("response.output_item.added", output_index=index, item=dict(item, summary=[]))
        send(
            "response.reasoning_summary_part.added",
            item_id=item_id,
            output_index=index,
            summary_index=0,
            part={"type": "summary_text", "text": ""},
        )
        for piece in self.split_text(thought, chunks):
            send(
                "response.reasoning_summary_text.delta",
                item_id=item_id,
                output_index=index,
                summary_index=0,
                delta=piece,
            )
        send("response.reasoning_summary_text.done", item_id=item_id, output_index=index, summary_index=0, text=thought)
        send(
            "response.reasoning_summary_part.done",
            item_id=item_id,
            output_index=index,
            summary_index=0,
            part={"type": "summary_text", "text": thought},
        )
        send("response.output_item.done", output_index=index, item=item)
        return item

    def _stream_tool_call(
        self, send: _Send, index: int, reply: ToolCall, chunks: int, body: dict[str, Any]
    ) -> dict[str, Any]:
        arguments = json.dumps(reply.input if reply.input is not None else {"cmd": reply.command})
        item = {
            "id": self.new_id("fc_fake_"),
            "type": "function_call",
            "status": "completed",
            "name": SHELL_TOOL,
            "call_id": reply.call_id or self.new_id("call_fake_"),
            "arguments": arguments,
        }
        if reply.tool:
            # codex 0.171 offers each MCP server as a function namespace ``mcp__<server>`` of plain names
            spaces = {
                f"{t.get('name')}__{f.get('name')}": (str(t.get("name")), str(f.get("name")))
                for t in body.get("tools") or []
                if isinstance(t, dict) and t.get("type") == "namespace"
                for f in t.get("tools") or []
                if isinstance(f, dict)
            }
            plain = [str(t.get("name")) for t in body.get("tools") or [] if isinstance(t, dict)]
            name = resolve_tool(reply.tool, plain + list(spaces))
            if name in spaces:
                item["namespace"], item["name"] = spaces[name]
            else:
                item["name"] = name
        send("response.output_item.added", output_index=index, item=dict(item, arguments="", status="in_progress"))
        for piece in self.split_text(arguments, chunks):
            send("response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=piece)
        send("response.function_call_arguments.done", item_id=item["id"], output_index=index, arguments=arguments)
        send("response.output_item.done", output_index=index, item=item)
        return item

    @staticmethod
    def _usage(
        explicit: Usage | None, output: list[dict[str, Any]], raw_len: int, reasoning_chars: int
    ) -> dict[str, Any]:
        u = explicit or Usage()
        input_tokens = u.input_tokens if u.input_tokens is not None else max(1, raw_len // 4)
        reasoning = u.reasoning_tokens or max(0, reasoning_chars // 4)
        output_tokens = (
            u.output_tokens if u.output_tokens is not None else max(1, len(json.dumps(output)) // 16) + reasoning
        )
        return {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": u.cached_tokens},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": input_tokens + output_tokens,
        }


if __name__ == "__main__":
    raise SystemExit(serve_main(ResponsesFake))
