"""Claude Code (`claude -p --output-format stream-json --verbose`).

Protocol facts this adapter relies on (observed on 2.1.197 and 2.1.332, see shared/reference/claude-cli.md):

* ``stream-json`` needs ``--verbose``; the prompt goes on stdin (no argv prompt), so a 1 MB prompt or one
  starting with ``-`` arrives verbatim;
* each content block is its own ``assistant`` event, and blocks of one API message share ``message.id``;
* ``assistant.message.usage`` is a snapshot taken at message start: the turn's usage is ``result.usage``;
* errors come out as ``result`` with ``subtype: "success"`` and ``is_error: true``; the class of error is in
  the synthetic assistant message's ``error`` field and in ``api_error_status`` (null for "Repeated 529");
* ``system/api_retry`` announces a retry the CLI makes on its own; ``rate_limit_event`` carries the reset
  time (epoch seconds) on the subscription path; ``allowed`` events arrive on healthy turns too;
* a 200 reply whose text is ``Claude AI usage limit reached|<epoch>`` is passed through as a success;
* resume is scoped to the working directory and the config home (``CLAUDE_CONFIG_DIR``);
* an interrupted turn (SIGINT) ends with ``result`` ``error_during_execution``, ``terminal_reason:
  "aborted_tools"`` (or ``aborted_streaming``) and ``errors: ["[ede_diagnostic] result_type=…"]``: that
  line is the CLI's internal diagnostic (its own SDK filters it out), not an error to show;
* with ``--include-partial-messages`` (opt-in through ``extra_args``) ``stream_event`` frames carry the raw
  SSE events; the aggregated ``assistant`` event of a block follows its last delta, and a stream the CLI
  abandons (cut mid-way, then asked again without streaming) is never confirmed by an ``assistant`` event.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

from caw.events import (
    ErrorEvent,
    ErrorKind,
    Event,
    RateLimitEvent,
    RawEvent,
    ResultEvent,
    RetryEvent,
    SessionStarted,
    TextEvent,
    ThinkingEvent,
    ToolCallEvent,
    ToolDeniedEvent,
    ToolResultEvent,
    UsageEvent,
    WarningEvent,
)
from caw.models import MCPServer, ModelTier, ToolGroup, UsageStats
from caw.providers.base import (
    InteractiveCommand,
    Invocation,
    Provider,
    RunConfig,
    TurnParser,
    TurnRequest,
    WarmClient,
    env_signal,
    file_signal,
    fits_argv,
    user_home,
)
from caw.providers.markers import CLAUDE_MARKERS
from caw.text import clip, last_meaningful_line

# ToolGroup -> Claude Code's built-in tool names
TOOL_NAMES: dict[ToolGroup, tuple[str, ...]] = {
    ToolGroup.READER: ("Read", "Glob", "Grep"),
    ToolGroup.WRITER: ("Edit", "Write", "NotebookEdit"),
    ToolGroup.EXEC: ("Bash", "TaskOutput", "TaskStop"),
    ToolGroup.WEB: ("WebFetch", "WebSearch"),
    ToolGroup.PARALLEL: ("Task",),
    ToolGroup.INTERACTION: ("AskUserQuestion",),
}

#: result subtypes of claude's own caps (issue 16): the turn was stopped on purpose, not failed
_CAP_KINDS: dict[str, ErrorKind] = {
    "error_max_budget_usd": "budget",
    "error_max_turns": "budget",
    "error_max_structured_output_retries": "structured_output",
}
_ERROR_KINDS: dict[str, ErrorKind] = {
    "rate_limit": "rate_limit",
    "authentication_failed": "auth",
    "billing_error": "billing",
    "server_error": "server",
    "invalid_request": "invalid_request",
}

_LIMIT_KINDS = {
    "five_hour": "session",
    "seven_day": "weekly",
    "seven_day_opus": "weekly",
    "seven_day_sonnet": "weekly",
    "overage": "usage",
}

# the old 200-with-text usage limit; the CLI passes it through as a success
_LEGACY_LIMIT = re.compile(r"^\s*Claude AI usage limit reached\|(\d{9,13})\s*$")

# argv strings are limited to 128 KiB on Linux; above this a system prompt goes through a file
_MAX_ARG = 100_000

# `claude -- <name>` still runs subcommand <name> (commander dispatches on the first operand)
_SUBCOMMANDS = frozenset(
    {
        "agents", "auth", "auto-mode", "doctor", "gateway", "help", "install", "mcp", "plugin", "plugins",
        "project", "setup-token", "ultrareview", "update", "upgrade",
    }
)  # fmt: skip

# where a login can come from, in the order claude looks (env first, then the credentials file)
_CREDENTIAL_VARS = (
    "CLAUDE_CODE_OAUTH_TOKEN",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
)


def tool_names(group: ToolGroup) -> list[str]:
    names: list[str] = []
    for flag, members in TOOL_NAMES.items():
        if flag in group:
            names.extend(members)
    return names


def _write_private(data: str, suffix: str) -> Path:
    """A temp file only this user can read (MCP configs may carry tokens in env); StorageError if it cannot be."""
    from caw.state.store import storage_errors

    with storage_errors("create a temp file in", tempfile.gettempdir()):
        fd, name = tempfile.mkstemp(prefix="caw-", suffix=suffix)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, data.encode())
        finally:
            os.close(fd)
    return Path(name)


def mcp_config_json(servers: tuple[MCPServer, ...]) -> str:
    entries: dict[str, Any] = {}
    for s in servers:
        if s.url:
            entries[s.name] = {"type": "http", "url": s.url}
        else:
            entries[s.name] = {"command": s.command, "args": list(s.args), "env": dict(s.env)}
        # claude 2.1.332 defers MCP tools behind ToolSearch; alwaysLoad puts them in the first request
        entries[s.name]["alwaysLoad"] = not s.defer_tools
        if s.tool_timeout is not None:
            entries[s.name]["timeout"] = int(s.tool_timeout * 1000)  # ms, per call
    return json.dumps({"mcpServers": entries})


class ClaudeProvider(Provider):
    aliases = ("claude_code", "claude-code")
    name = "claude"
    binary_name = "claude"
    config_home_var = "CLAUDE_CONFIG_DIR"
    tiers: ClassVar[dict[ModelTier, str]] = {ModelTier.STRONGEST: "opus", ModelTier.FAST: "haiku"}
    #: the detector's provider guess; the tuple lives in markers.py, so `import caw` registers it cheaply
    limit_markers: ClassVar[tuple[str, ...]] = CLAUDE_MARKERS
    #: ``stream_text`` is ``--include-partial-messages``, a flag of the process: a warm claude started without
    #: it cannot take it per message, so a turn metered by a token or cost budget runs cold
    warm_request_fields: ClassVar[frozenset[str]] = frozenset()
    #: claude >= 2.1.3xx records the system prompt on a conversation's first request and reuses it on every
    #: resume (--system-prompt-snapshot, on by default): a different prompt on resume is ignored
    keeps_first_system_prompt = True
    supports_permission_callback = True
    install_command = "npm install -g @anthropic-ai/claude-code"
    login_command = "run `claude /login` or set ANTHROPIC_API_KEY"
    #: its credential variables: caw masks their values in what it writes and prints (issue 17.4)
    secret_env_vars: ClassVar[tuple[str, ...]] = _CREDENTIAL_VARS[:3]  # the two switches hold no secret
    reports_cost = True  # result.total_cost_usd: the CLI's list-price estimate, also on a subscription
    output_schema_mode = "flag"  # --json-schema: a StructuredOutput tool, result.structured_output

    def build(self, binary: str, config: RunConfig, request: TurnRequest) -> Invocation:
        inv = self._invocation(binary, config, request, ["-p", "--output-format", "stream-json", "--verbose"])
        inv.stdin = request.prompt.encode()
        return inv

    def warm_invocation(self, binary: str, config: RunConfig, request: TurnRequest) -> Invocation:
        """The long-lived mode (issue 14): stream-json in and out, no ``-p``, every other flag as ``build``'s.
        Messages go on stdin, one JSON line each (``caw.providers.claude_warm``)."""
        mode = ["--output-format", "stream-json", "--verbose", "--input-format", "stream-json"]
        return self._invocation(binary, config, request, mode)

    def warm_client(self, binary: str, config: RunConfig, env: Mapping[str, str]) -> WarmClient | None:
        from caw.providers.claude_warm import ClaudeWarmClient

        allowed = frozenset(tool_names(config.tools)) if config.tools is not None else frozenset()
        return ClaudeWarmClient(
            self,
            binary,
            config,
            env,
            invocation=lambda request: self.warm_invocation(binary, config, request),
            parser=ClaudeParser,
            allowed_tools=allowed,
        )

    def _invocation(self, binary: str, config: RunConfig, request: TurnRequest, mode: list[str]) -> Invocation:
        inv = Invocation(argv=[*self.executable(binary), *mode])
        if request.resume_key:
            inv.argv += ["--resume", request.resume_key]
        elif request.new_key:
            inv.argv += ["--session-id", request.new_key]
        inv.argv += config_args(config, inv.temp_paths)
        if config.permission_prompt_tool:
            # claude calls this MCP tool instead of refusing what its rules would prompt for
            inv.argv += ["--permission-prompt-tool", config.permission_prompt_tool]
        if request.output_schema is not None:
            # issue 16: claude offers a StructuredOutput tool with this schema; result.structured_output is the answer
            inv.argv += ["--json-schema", json.dumps(request.output_schema, ensure_ascii=False)]
        if request.max_budget_usd is not None:
            inv.argv += ["--max-budget-usd", f"{request.max_budget_usd:.6f}"]
        if request.max_turns is not None:
            inv.argv += ["--max-turns", str(request.max_turns)]
        if request.stream_text and "--include-partial-messages" not in inv.argv:
            # a budget is metering the turn: without this claude reports text per finished message
            inv.argv.append("--include-partial-messages")
        if "--settings" not in config.extra_args:
            # claude >= 2.1.234 may continue by itself when a usage limit resets: caw's auto-wait owns that
            inv.argv += ["--settings", _NO_AUTO_CONTINUE]
        # and its retry watchdog must not sit out a usage limit silently (caw waits visibly, or reports it)
        inv.env["CLAUDE_CODE_RETRY_WATCHDOG_MAX_USAGE_LIMIT_WAIT_MS"] = "0"
        inv.cwd = config.cwd
        return inv

    def continuation_prompt(self, original: str) -> str:
        # claude keeps the limited prompt in the transcript and adds "Continue from where you left off."
        # itself on --resume (claude-cli.md §4): sending the original again would duplicate it
        return "continue"

    def parser(self, config: RunConfig | None = None, request: TurnRequest | None = None) -> ClaudeParser:
        return ClaudeParser()

    def interactive_command(self, binary: str, config: RunConfig, prompt: str) -> InteractiveCommand:
        # the same mapping as build (scripted), without -p/--output-format/--verbose
        cmd = InteractiveCommand(argv=[*self.executable(binary)])
        cmd.argv += config_args(config, cmd.temp_paths)
        if prompt:
            if fits_argv(prompt) and prompt not in _SUBCOMMANDS:
                cmd.argv += ["--", prompt]  # `--`: a prompt may start with "-"; it also ends the variadic --tools
            else:
                cmd.paste = prompt
        return cmd

    def credential_signal(self, env: Mapping[str, str]) -> str | None:
        home = self.config_home(env)
        config_home = Path(home) if home else user_home(env) / ".claude"
        return env_signal(env, _CREDENTIAL_VARS) or file_signal(env, config_home / ".credentials.json")


_NO_AUTO_CONTINUE = '{"autoContinueAtUsageLimit": false}'
#: caw.tools.permissions.SERVER_NAME (not imported: `caw run` keeps the endpoint unloaded): claude calls it
#: itself through --permission-prompt-tool, so the model gets no allow rule for it
_PERMISSION_SERVER = "caw_permissions"


def config_args(config: RunConfig, temp_paths: list[Path]) -> list[str]:
    """Flags for caw's configuration, the same in scripted (``-p``) and interactive runs.

    Temp files it writes (0600) are appended to ``temp_paths`` for the caller to delete after the run.
    """
    argv: list[str] = []
    if config.model:
        argv += ["--model", config.model]
    if config.reasoning:
        argv += ["--effort", config.reasoning]
    if config.system_prompt:
        # appended, not replaced: the agent keeps Claude Code's instructions for its own tools
        if len(config.system_prompt.encode()) > _MAX_ARG:
            path = _write_private(config.system_prompt, ".txt")
            temp_paths.append(path)
            argv += ["--append-system-prompt-file", str(path)]
        else:
            argv += ["--append-system-prompt", config.system_prompt]
    argv += ["--permission-mode", permission_mode(config.tools)]
    allowed: list[str] = []
    if config.tools is not None:
        names = tool_names(config.tools)
        argv += ["--tools", ",".join(names)]
        allowed += names
    # the MCP servers caw configures may be called without a prompt (a -p run has nobody to ask)
    allowed += [f"mcp__{s.name}" for s in config.mcp_servers if s.name != _PERMISSION_SERVER]
    if allowed:
        argv += ["--allowedTools", ",".join(allowed)]
    if config.mcp_servers:
        path = _write_private(mcp_config_json(config.mcp_servers), ".json")
        temp_paths.append(path)
        argv += ["--mcp-config", str(path), "--strict-mcp-config"]
    argv += list(config.extra_args)
    return argv


def permission_mode(tools: ToolGroup | None) -> str:
    """caw never bypasses permissions: writes are pre-approved only when the user granted WRITER."""
    if tools is not None and ToolGroup.WRITER in tools:
        return "acceptEdits"
    return "default"


def _epoch(value: Any) -> datetime | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if seconds > 1e12:  # milliseconds
        seconds /= 1000.0
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _tool_output(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for item in content:
            if isinstance(item, dict) and item.get("type") == "text":
                parts.append(str(item.get("text", "")))
            elif isinstance(item, dict):
                parts.append(f"[{item.get('type', 'content')}]")
        return "\n".join(parts)
    return "" if content is None else json.dumps(content)


def usage_from_result(usage: dict[str, Any], cost: Any, model_usage: Any = None) -> UsageStats:
    """The turn's usage. After the CLI's non-streaming fallback (a stream cut mid-way) ``result.usage`` is
    all zeros while ``modelUsage`` (per model) still has the real numbers: use those then."""
    tokens = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    if not any(usage.get(k) for k in tokens) and isinstance(model_usage, dict) and model_usage:
        per_model = [m for m in model_usage.values() if isinstance(m, dict)]
        return UsageStats(
            input_tokens=sum(int(m.get("inputTokens") or 0) for m in per_model),
            output_tokens=sum(int(m.get("outputTokens") or 0) for m in per_model),
            cache_read_tokens=sum(int(m.get("cacheReadInputTokens") or 0) for m in per_model),
            cache_write_tokens=sum(int(m.get("cacheCreationInputTokens") or 0) for m in per_model),
            cost_usd=float(cost) if isinstance(cost, (int, float)) else None,
        )
    return UsageStats(
        input_tokens=int(usage.get("input_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
        cache_read_tokens=int(usage.get("cache_read_input_tokens") or 0),
        cache_write_tokens=int(usage.get("cache_creation_input_tokens") or 0),
        cost_usd=float(cost) if isinstance(cost, (int, float)) else None,
    )


class ClaudeParser(TurnParser):
    provider = "claude"

    def __init__(self) -> None:
        super().__init__()
        self._assistant_error: str | None = None
        self._terminal_reason: str | None = None  # set by an interrupted turn's result (aborted_*)
        self._streaming_id: str | None = None  # the message whose deltas are streaming (message_start)
        # text streamed as deltas and not yet confirmed by the message's assistant event: message id -> text
        self._streamed: dict[str, list[str]] = {}

    def on_json(self, obj: dict[str, Any]) -> list[Event]:
        kind = obj.get("type")
        if kind == "stream_event":
            if obj.get("parent_tool_use_id"):
                return []  # a subagent's stream: its messages are not the turn's answer
            return self._stream_event(obj.get("event") or {})
        if kind == "assistant":
            return [*self._abandoned(obj), *self._assistant(obj)]
        if kind == "user":
            return self._user(obj)
        if kind == "result":
            return self._result(obj)
        if kind == "system":
            return self._system(obj)
        if kind == "rate_limit_event":
            return self._rate_limit(obj.get("rate_limit_info") or {})
        if kind == "keep_alive":
            return []  # 2.1.3xx heartbeats: no content, and either side may send them
        # conversation_reset (2.1.3xx) and anything newer stay raw: kept, never a crash
        return [RawEvent(provider=self.provider, data=obj)]

    def _system(self, obj: dict[str, Any]) -> list[Event]:
        sub = obj.get("subtype")
        if sub == "init":
            return [
                SessionStarted(
                    provider=self.provider,
                    session_id=str(obj["session_id"]),
                    model=obj.get("model"),
                    cli_version=obj.get("claude_code_version"),
                )
            ]
        if sub == "api_retry":
            status = obj.get("error_status")
            return [
                RetryEvent(
                    provider=self.provider,
                    attempt=obj.get("attempt"),
                    max_retries=obj.get("max_retries"),
                    delay_ms=obj.get("retry_delay_ms"),
                    status=status if isinstance(status, int) else None,
                    message=str(obj.get("error") or ""),
                )
            ]
        if sub == "session_writes_lost":
            # 2.1.3xx: the disk refused transcript lines (ENOSPC/EDQUOT); a later --resume may miss turns
            code = obj.get("error_code") or "a write error"
            return [
                WarningEvent(
                    provider=self.provider,
                    code="session_writes_lost",
                    message=f"claude could not save its transcript ({code}): resuming this conversation may miss turns",
                )
            ]
        return [RawEvent(provider=self.provider, data=obj)]

    def _stream_event(self, event: dict[str, Any]) -> list[Event]:
        """``--include-partial-messages``: text deltas become TextEvents as they stream; the rest is dropped
        (the aggregated ``assistant`` events carry the same blocks whole)."""
        etype = event.get("type")
        if etype == "message_start":
            mid = (event.get("message") or {}).get("id")
            self._streaming_id = str(mid) if mid else None
            return []
        delta = event.get("delta") or {}
        if etype == "content_block_delta" and delta.get("type") == "text_delta" and self._streaming_id:
            text = str(delta.get("text") or "")
            self._streamed.setdefault(self._streaming_id, []).append(text)
            return [TextEvent(provider=self.provider, text=text, message_id=self._streaming_id)]
        return []

    def _abandoned(self, obj: dict[str, Any]) -> list[Event]:
        """Deltas of another message that no assistant event confirmed: the CLI dropped that stream."""
        mid = (obj.get("message") or {}).get("id")
        gone = [m for m in self._streamed if m != mid]
        for m in gone:
            del self._streamed[m]
        if not gone:
            return []
        return [
            WarningEvent(
                provider=self.provider,
                message="claude's response stream broke off and it asked again: the text streamed before this "
                "notice was cut short, the complete answer follows",
            )
        ]

    def _assistant(self, obj: dict[str, Any]) -> list[Event]:
        msg = obj.get("message") or {}
        if obj.get("error"):
            # the synthetic message the CLI writes when retries give up: its text is the error message
            self._assistant_error = str(obj["error"])
            return []
        mid = msg.get("id")
        events: list[Event] = []
        for block in msg.get("content") or []:
            btype = block.get("type")
            if btype == "text":
                text = str(block.get("text", ""))
                streamed = "".join(self._streamed.pop(mid, [])) if mid else ""
                if streamed and text.startswith(streamed):
                    text = text[len(streamed) :]  # the deltas said it already: only what they missed
                elif streamed:
                    text = ""  # the deltas are what the consumer saw; the assembler merged them into the block
                if text:
                    events.append(TextEvent(provider=self.provider, text=text, message_id=mid))
            elif btype == "thinking":
                events.append(ThinkingEvent(provider=self.provider, text=block.get("thinking", ""), message_id=mid))
            elif btype == "tool_use":
                args = block.get("input")
                events.append(
                    ToolCallEvent(
                        provider=self.provider,
                        id=str(block.get("id", "")),
                        name=str(block.get("name", "")),
                        arguments=args if isinstance(args, dict) else {"input": args},
                    )
                )
        return events

    def _user(self, obj: dict[str, Any]) -> list[Event]:
        if obj.get("isReplay"):
            return []
        content = (obj.get("message") or {}).get("content")
        events: list[Event] = []
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    events.append(
                        ToolResultEvent(
                            provider=self.provider,
                            id=str(block.get("tool_use_id", "")),
                            output=_tool_output(block.get("content")),
                            is_error=bool(block.get("is_error")),
                        )
                    )
        return events

    def _rate_limit(self, info: dict[str, Any]) -> list[Event]:
        raw_status = str(info.get("status") or "")
        status = "rejected" if raw_status == "rejected" else "warning" if "warning" in raw_status else "allowed"
        limit_type = str(info.get("rateLimitType") or "")
        return [
            RateLimitEvent(
                provider=self.provider,
                status=status,
                resets_at=_epoch(info.get("resetsAt")),
                kind=_LIMIT_KINDS.get(limit_type, "rate" if not limit_type else "usage"),
            )
        ]

    def _result(self, obj: dict[str, Any]) -> list[Event]:
        events: list[Event] = [
            UsageEvent(
                provider=self.provider,
                usage=usage_from_result(obj.get("usage") or {}, obj.get("total_cost_usd"), obj.get("modelUsage")),
                final=True,
            )
        ]
        events += self._denials(obj.get("permission_denials"))
        text = obj.get("result")
        status = obj.get("api_error_status")
        status = status if isinstance(status, int) else None
        if obj.get("is_error"):
            # issue 12: "[ede_diagnostic] …" is claude's internal note on an interrupted turn, never the error
            errors = [e for e in obj.get("errors") or [] if not str(e).startswith("[ede_diagnostic]")]
            reason = str(obj.get("terminal_reason") or "")
            if not text and not errors and reason.startswith("aborted"):
                # interrupted: caw's cancel reports it (run_turn); finish() says so if someone else stopped it
                self._terminal_reason = reason
                return events
            message = str(text) if text else "; ".join(str(e) for e in errors) or "the turn failed"
            # issue 16: its own caps (--max-budget-usd, --max-turns) and schema retries are caw's errors too
            kind = _CAP_KINDS.get(str(obj.get("subtype") or "")) or self._error_kind(status, message)
            events.append(ErrorEvent(provider=self.provider, kind=kind, message=message, status=status))
            return events
        legacy = _LEGACY_LIMIT.match(text) if isinstance(text, str) else None
        if legacy:
            events.append(
                RateLimitEvent(
                    provider=self.provider,
                    status="rejected",
                    resets_at=_epoch(legacy.group(1)),
                    kind="usage",
                    message=str(text),
                )
            )
            events.append(ErrorEvent(provider=self.provider, kind="rate_limit", message=str(text)))
            return events
        events.append(
            ResultEvent(
                provider=self.provider,
                text=text if isinstance(text, str) else None,
                duration_ms=obj.get("duration_ms"),
                stop_reason=obj.get("stop_reason"),
                structured=obj.get("structured_output"),
            )
        )
        return events

    def _denials(self, denials: Any) -> list[Event]:
        """``result.permission_denials``: the tool uses the permission mode refused (issue 12 item 5)."""
        if not isinstance(denials, list):
            return []
        return [
            ToolDeniedEvent(
                provider=self.provider,
                id=str(d.get("tool_use_id") or ""),
                name=str(d.get("tool_name") or "?"),
                message=clip(json.dumps(d.get("tool_input") or {}, ensure_ascii=False), 200),
            )
            for d in denials
            if isinstance(d, dict)
        ]

    def _error_kind(self, status: int | None, message: str) -> ErrorKind:
        if "No conversation found" in message:
            return "not_found"
        if "Prompt is too long" in message or "prompt is too long" in message:
            return "context_overflow"
        if self._assistant_error in _ERROR_KINDS:
            return _ERROR_KINDS[self._assistant_error]
        if status == 429:
            return "rate_limit"
        if status in (401, 403):
            return "auth"
        if status is not None and status >= 500:
            return "server"
        if status is not None and 400 <= status < 500:
            return "invalid_request"
        if "API Error" in message or "Unable to connect" in message:
            return "server"
        return "unknown"

    def finish(self, exit_code: int | None, stderr: str) -> list[Event]:
        if self.closed:
            return []
        if self._terminal_reason is not None:
            self.closed = True
            message = f"claude was interrupted before it finished the turn ({self._terminal_reason})"
            return [ErrorEvent(provider=self.provider, kind="cancelled", message=message)]
        line = last_meaningful_line(stderr)
        if "No conversation found" in stderr:
            self.closed = True
            return [ErrorEvent(provider=self.provider, kind="not_found", message=line)]
        return super().finish(exit_code, stderr)
