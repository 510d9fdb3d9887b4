"""Self-tests of the loopback fake model servers and env builders (urllib only, no CLIs)."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.anthropic import AnthropicFake
from tests.fakes.base import FakeModelServer
from tests.fakes.env import (
    CLI_BIN,
    CODEX_KEY_VAR,
    claude_env,
    cli_path,
    codex_env,
    codex_native_path,
    full_env,
    opencode_env,
)
from tests.fakes.openai_chat import TITLE_TEXT, ChatFake
from tests.fakes.openai_responses import ResponsesFake
from tests.fakes.replies import (
    Drop,
    Echo,
    Error,
    Hang,
    Reply,
    Text,
    Thinking,
    ToolCall,
    Usage,
    anthropic_rate_limited,
    codex_usage_limit,
    reply_from_dict,
    reply_to_dict,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

# --- helpers -------------------------------------------------------------------------------------


def post(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def sse(raw: bytes) -> list[tuple[str | None, Any]]:
    """(event name, decoded data) pairs of an SSE body."""
    out: list[tuple[str | None, Any]] = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        name = None
        data = ""
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
        out.append((name, data if data == "[DONE]" else json.loads(data)))
    return out


def anthropic_body(*messages: dict[str, Any], stream: bool = True) -> dict[str, Any]:
    return {"model": "claude-test", "stream": stream, "messages": list(messages), "max_tokens": 100}


def _serve(cls: type[FakeModelServer]) -> Iterator[FakeModelServer]:
    with cls() as srv:
        yield srv


@pytest.fixture(scope="module")
def _anthropic() -> Iterator[FakeModelServer]:
    yield from _serve(AnthropicFake)


@pytest.fixture(scope="module")
def _responses() -> Iterator[FakeModelServer]:
    yield from _serve(ResponsesFake)


@pytest.fixture(scope="module")
def _chat() -> Iterator[FakeModelServer]:
    yield from _serve(ChatFake)


def _fresh(srv: FakeModelServer) -> FakeModelServer:
    srv.reset()
    srv.default = None
    return srv


@pytest.fixture
def anthropic(_anthropic: FakeModelServer) -> FakeModelServer:
    return _fresh(_anthropic)


@pytest.fixture
def responses(_responses: FakeModelServer) -> FakeModelServer:
    return _fresh(_responses)


@pytest.fixture
def chat(_chat: FakeModelServer) -> FakeModelServer:
    return _fresh(_chat)


# --- replies -------------------------------------------------------------------------------------


def test_reply_dicts_round_trip() -> None:
    replies: list[Reply] = [
        Text("hi", chunks=2, delay_s=0.1, usage=Usage(10, 2, cached_tokens=3)),
        Echo(),
        ToolCall("echo hi", call_id="c1"),
        Thinking("hmm", "ok"),
        Error(429, "slow down", headers={"retry-after": "1"}),
        Drop("par"),
        Hang(0.5, then=Text("late")),
    ]
    assert [reply_from_dict(reply_to_dict(r)) for r in replies] == replies
    assert reply_to_dict(Text("x"))["kind"] == "text"


def test_reply_from_dict_rejects_unknown_fields() -> None:
    with pytest.raises(TypeError):
        reply_from_dict({"kind": "text", "txt": "typo"})


# --- anthropic -----------------------------------------------------------------------------------


def test_anthropic_stream_has_the_event_order_claude_expects(anthropic: FakeModelServer) -> None:
    anthropic.enqueue(Text("hello world", chunks=3, usage=Usage(input_tokens=10, output_tokens=5)))
    status, headers, raw = post(
        anthropic.url + "/v1/messages?beta=true", anthropic_body({"role": "user", "content": "hi"})
    )
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    events = sse(raw)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta") == "hello world"
    assert events[0][1]["message"]["usage"]["input_tokens"] == 10
    assert events[-2][1]["usage"]["output_tokens"] == 5
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"


def test_anthropic_answers_plain_json_when_not_streaming(anthropic: FakeModelServer) -> None:
    anthropic.enqueue(Text("fallback"))
    status, _, raw = post(
        anthropic.url + "/v1/messages", anthropic_body({"role": "user", "content": "x"}, stream=False)
    )
    message = json.loads(raw)
    assert status == 200
    assert message["content"] == [{"type": "text", "text": "fallback"}]
    assert message["stop_reason"] == "end_turn"


def test_anthropic_echo_accepts_system_messages_and_takes_the_prompt_block(anthropic: FakeModelServer) -> None:
    body = anthropic_body(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                {"type": "text", "text": "first"},
            ],
        },
        {"role": "system", "content": "agent list"},
        {"role": "assistant", "content": [{"type": "text", "text": "ECHO ..."}]},
        {"role": "user", "content": [{"type": "text", "text": "second prompt"}]},
        stream=False,
    )
    _, _, raw = post(anthropic.url + "/v1/messages", body)
    assert json.loads(raw)["content"][0]["text"] == "ECHO messages=4 last_len=13 last=second prompt"
    assert anthropic.user_texts(body) == ["<system-reminder>ctx</system-reminder>", "first", "second prompt"]


def test_anthropic_tool_call_then_tool_result_follow_up(anthropic: FakeModelServer) -> None:
    anthropic.enqueue(ToolCall("echo hi", call_id="toolu_1"))
    _, _, raw = post(anthropic.url + "/v1/messages", anthropic_body({"role": "user", "content": "go"}))
    events = sse(raw)
    start = next(d for n, d in events if n == "content_block_start")
    assert start["content_block"]["name"] == "Bash"
    partial = "".join(d["delta"]["partial_json"] for n, d in events if n == "content_block_delta")
    assert json.loads(partial)["command"] == "echo hi"
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    follow_up = anthropic_body(
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "hi"}]},
        stream=False,
    )
    _, _, raw = post(anthropic.url + "/v1/messages", follow_up)
    assert json.loads(raw)["content"][0]["text"] == "Tool said: hi"


def test_anthropic_thinking_block_carries_a_signature(anthropic: FakeModelServer) -> None:
    anthropic.enqueue(Thinking("ponder", "answer"))
    _, _, raw = post(anthropic.url + "/v1/messages", anthropic_body({"role": "user", "content": "q"}))
    deltas = [d["delta"] for n, d in sse(raw) if n == "content_block_delta"]
    types = [d["type"] for d in deltas]
    assert types.count("signature_delta") == 1
    assert types.index("signature_delta") < types.index("text_delta")
    assert "".join(d.get("thinking", "") for d in deltas) == "ponder"


def test_anthropic_rate_limit_helper_sends_unified_headers(anthropic: FakeModelServer) -> None:
    anthropic.enqueue(anthropic_rate_limited(1_900_000_000, claim="seven_day"))
    status, headers, raw = post(anthropic.url + "/v1/messages", anthropic_body({"role": "user", "content": "q"}))
    assert status == 429
    assert headers["anthropic-ratelimit-unified-status"] == "rejected"
    assert headers["anthropic-ratelimit-unified-reset"] == "1900000000"
    assert headers["anthropic-ratelimit-unified-representative-claim"] == "seven_day"
    assert json.loads(raw) == {"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limited"}}


def test_error_body_override_replaces_the_whole_body(anthropic: FakeModelServer) -> None:
    anthropic.enqueue(Error(400, body="not json at all"))
    status, _, raw = post(anthropic.url + "/v1/messages", anthropic_body({"role": "user", "content": "q"}))
    assert (status, raw) == (400, b"not json at all")


# --- openai responses (codex) --------------------------------------------------------------------


def responses_body(*items: dict[str, Any]) -> dict[str, Any]:
    return {"model": "gpt-5.5", "stream": True, "input": list(items)}


def user_item(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def test_responses_tool_call_is_exec_command_with_cmd(responses: FakeModelServer) -> None:
    responses.enqueue(ToolCall("echo hi", call_id="call_1"))
    _, _, raw = post(responses.url + "/v1/responses", responses_body(user_item("go")))
    events = sse(raw)
    assert events[0][0] == "response.created" and events[-1][0] == "response.completed"
    done = next(d["item"] for n, d in events if n == "response.output_item.done")
    assert (done["type"], done["name"], done["call_id"]) == ("function_call", "exec_command", "call_1")
    assert json.loads(done["arguments"]) == {"cmd": "echo hi"}


def test_responses_completed_carries_detailed_usage(responses: FakeModelServer) -> None:
    responses.enqueue(Thinking("think", "done", usage=Usage(100, 20, cached_tokens=10, reasoning_tokens=7)))
    _, _, raw = post(responses.url + "/v1/responses", responses_body(user_item("q")))
    events = sse(raw)
    kinds = [d["item"]["type"] for n, d in events if n == "response.output_item.done"]
    assert kinds == ["reasoning", "message"]
    usage = events[-1][1]["response"]["usage"]
    assert usage["input_tokens_details"] == {"cached_tokens": 10}
    assert usage["output_tokens_details"] == {"reasoning_tokens": 7}
    assert usage["total_tokens"] == 120


def test_responses_default_reply_after_function_call_output(responses: FakeModelServer) -> None:
    body = responses_body(
        user_item("go"),
        {"type": "function_call", "name": "exec_command", "call_id": "c", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "Output:\nhi\n"},
    )
    _, _, raw = post(responses.url + "/v1/responses", body)
    message = next(d["item"] for n, d in sse(raw) if n == "response.output_item.done")
    assert message["content"][0]["text"] == "Tool said: Output:\nhi\n"


def test_codex_usage_limit_body(responses: FakeModelServer) -> None:
    responses.enqueue(codex_usage_limit(2_000, plan_type="pro", now=1_000))
    status, _, raw = post(responses.url + "/v1/responses", responses_body(user_item("q")))
    error = json.loads(raw)["error"]
    assert status == 429
    assert error["type"] == "usage_limit_reached"
    assert (error["plan_type"], error["resets_at"], error["resets_in_seconds"]) == ("pro", 2_000, 1_000)


def test_responses_websocket_upgrade_gets_404(responses: FakeModelServer) -> None:
    status, _ = get(responses.url + "/v1/responses", {"Upgrade": "websocket", "Connection": "Upgrade"})
    assert status == 404
    assert [(r.method, r.kind) for r in responses.requests] == [("GET", "not_found")]
    assert responses.model_requests == []


# --- openai chat (opencode) ----------------------------------------------------------------------


def chat_body(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"model": "text", "stream": True, "stream_options": {"include_usage": True}, "messages": list(messages)}


def test_chat_title_requests_do_not_consume_the_queue(chat: FakeModelServer) -> None:
    chat.enqueue(Text("real answer"))
    title = chat_body(
        {"role": "system", "content": "You are a title generator. You output ONLY a thread title."},
        {"role": "user", "content": "hello"},
    )
    _, _, raw = post(chat.url + "/v1/chat/completions", title)
    text = "".join(d["choices"][0]["delta"].get("content", "") for _, d in sse(raw) if d != "[DONE]" and d["choices"])
    assert text == TITLE_TEXT
    assert chat.pending == 1 and chat.model_requests == []
    assert [r.kind for r in chat.requests] == ["title"]


def test_chat_stream_ends_with_usage_chunk_and_done(chat: FakeModelServer) -> None:
    chat.enqueue(Text("abc", usage=Usage(50, 3)))
    _, _, raw = post(chat.url + "/v1/chat/completions", chat_body({"role": "user", "content": "q"}))
    events = [d for _, d in sse(raw)]
    assert events[-1] == "[DONE]"
    assert events[-2]["choices"] == [] and events[-2]["usage"]["prompt_tokens"] == 50
    assert events[-3]["choices"][0]["finish_reason"] == "stop"


def test_chat_reasoning_then_tool_call(chat: FakeModelServer) -> None:
    chat.enqueue(Thinking("why", "because"), ToolCall("ls", call_id="call_9"))
    _, _, raw = post(chat.url + "/v1/chat/completions", chat_body({"role": "user", "content": "q"}))
    deltas = [d["choices"][0]["delta"] for _, d in sse(raw) if d != "[DONE]" and d["choices"]]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "why"
    assert "".join(d.get("content", "") for d in deltas) == "because"
    _, _, raw = post(chat.url + "/v1/chat/completions", chat_body({"role": "user", "content": "q"}))
    chunks = [d for _, d in sse(raw) if d != "[DONE]" and d["choices"]]
    calls = [c for d in chunks for c in d["choices"][0]["delta"].get("tool_calls", [])]
    assert calls[0]["id"] == "call_9" and calls[0]["function"]["name"] == "bash"
    assert json.loads("".join(c["function"]["arguments"] for c in calls))["command"] == "ls"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_chat_models_listed_and_npm_404(chat: FakeModelServer) -> None:
    status, raw = get(chat.url + "/v1/models")
    assert status == 200 and "text" in [m["id"] for m in json.loads(raw)["data"]]
    assert get(chat.url + "/npm/@opencode-ai%2fplugin")[0] == 404
    assert [r.kind for r in chat.requests] == ["other", "not_found"]


# --- shared server behaviour ---------------------------------------------------------------------


def test_connect_is_refused_and_logged(chat: FakeModelServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", chat.port, timeout=5)
    conn.set_tunnel("api.example.com", 443)
    with pytest.raises(OSError, match="403"):
        conn.connect()
    conn.close()
    attempts = chat.non_loopback_attempts()
    assert [(r.method, r.path, r.kind) for r in attempts] == [("CONNECT", "api.example.com:443", "connect")]


def test_drop_closes_the_connection_mid_stream(chat: FakeModelServer) -> None:
    chat.enqueue(Drop("half"))
    with pytest.raises(http.client.IncompleteRead) as info:
        post(chat.url + "/v1/chat/completions", chat_body({"role": "user", "content": "q"}))
    assert b"half" in info.value.partial


def test_stop_interrupts_a_hang() -> None:
    srv = ChatFake().start()
    srv.enqueue(Hang(30))
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(post(srv.url + "/v1/chat/completions", chat_body({"role": "user", "content": "q"})))
        except Exception as exc:  # the connection is closed under the client
            outcome.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    deadline = time.monotonic() + 2
    while not srv.model_requests and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    srv.stop()
    worker.join(timeout=3)
    assert not worker.is_alive() and outcome
    assert time.monotonic() - started < 2


def test_queue_is_fifo_and_each_reply_is_used_once(chat: FakeModelServer) -> None:
    chat.enqueue(*(Text(f"r{i}", chunks=1) for i in range(8)))
    texts: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        _, _, raw = post(
            chat.url + "/v1/chat/completions", {**chat_body({"role": "user", "content": "q"}), "stream": False}
        )
        with lock:
            texts.append(json.loads(raw)["choices"][0]["message"]["content"])

    workers = [threading.Thread(target=call) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(texts) == sorted(f"r{i}" for i in range(8))
    assert chat.pending == 0
    # once the queue is empty the default reply is Echo
    _, _, raw = post(
        chat.url + "/v1/chat/completions", {**chat_body({"role": "user", "content": "q"}), "stream": False}
    )
    assert json.loads(raw)["choices"][0]["message"]["content"].startswith("ECHO messages=1 last_len=1 last=q")


def test_control_endpoints(anthropic: FakeModelServer) -> None:
    status, _, raw = post(anthropic.url + "/_control/enqueue", [{"kind": "text", "text": "from control"}])
    assert status == 200 and json.loads(raw)["pending"] == 1
    _, _, raw = post(anthropic.url + "/v1/messages", anthropic_body({"role": "user", "content": "q"}, stream=False))
    assert json.loads(raw)["content"][0]["text"] == "from control"
    status, raw = get(anthropic.url + "/_control/requests")
    logged = json.loads(raw)
    assert [(r["kind"], r["reply"]) for r in logged] == [("model", "text")]
    assert logged[0]["body"]["messages"][0]["content"] == "q"
    post(anthropic.url + "/_control/reset", {})
    assert anthropic.requests == []


def test_count_occurrences_separates_new_prompts_from_history(anthropic: FakeModelServer) -> None:
    first = anthropic_body({"role": "user", "content": "PROMPT-A"}, stream=False)
    second = anthropic_body(
        {"role": "user", "content": "PROMPT-A"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "PROMPT-B"},
        stream=False,
    )
    post(anthropic.url + "/v1/messages", first)
    post(anthropic.url + "/v1/messages", second)
    assert anthropic.count_occurrences("PROMPT-A") == 1
    assert anthropic.count_occurrences("PROMPT-A", anywhere=True) == 2
    assert anthropic.count_occurrences("PROMPT-B") == 1


def test_log_file_gets_one_json_line_per_request(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    with ResponsesFake(log_path=log) as srv:
        post(srv.url + "/v1/responses", responses_body(user_item("q")))
        get(srv.url + "/nope")
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(entry["path"], entry["kind"]) for entry in lines] == [("/v1/responses", "model"), ("/nope", "not_found")]


def test_standalone_runner_writes_the_port_file(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_chat", "--port-file", str(port_file)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not port_file.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        status, raw = get(f"http://127.0.0.1:{port_file.read_text()}/v1/models")
        assert status == 200 and json.loads(raw)["object"] == "list"
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0


# --- env builders --------------------------------------------------------------------------------


def test_claude_env_api_key_or_oauth(tmp_path: Path) -> None:
    env = claude_env("http://127.0.0.1:1", tmp_path)
    assert env["ANTHROPIC_API_KEY"] == "sk-ant-test" and "CLAUDE_CODE_OAUTH_TOKEN" not in env
    assert env["CLAUDE_CODE_MAX_RETRIES"] == "0" and env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert env["HTTPS_PROXY"] == "http://127.0.0.1:1" and "127.0.0.1" in env["NO_PROXY"]
    oauth = claude_env("http://127.0.0.1:1", tmp_path, oauth=True, max_retries=2)
    assert oauth["CLAUDE_CODE_OAUTH_TOKEN"].startswith("sk-ant-oat01-") and "ANTHROPIC_API_KEY" not in oauth
    assert oauth["CLAUDE_CODE_MAX_RETRIES"] == "2"
    assert Path(env["HOME"]).is_dir() and env["PATH"].split(":")[0] == str(CLI_BIN)


def test_codex_env_writes_a_fake_provider_config(tmp_path: Path) -> None:
    env = codex_env("http://127.0.0.1:7", tmp_path, stream_max_retries=1)
    config = (Path(env["CODEX_HOME"]) / "config.toml").read_text()
    assert 'model_provider = "fake"' in config
    assert 'base_url = "http://127.0.0.1:7/v1"' in config
    assert 'wire_api = "responses"' in config and "stream_max_retries = 1" in config
    assert "[analytics]\nenabled = false" in config and "[features]\nplugins = false" in config
    assert env[CODEX_KEY_VAR] == "sk-test"


def test_opencode_env_config_and_plugin_install_stub(tmp_path: Path) -> None:
    env = opencode_env("http://127.0.0.1:8", tmp_path)
    config = json.loads(env["OPENCODE_CONFIG_CONTENT"])
    provider = config["provider"]["fake"]
    assert provider["options"]["baseURL"] == "http://127.0.0.1:8/v1"
    assert provider["models"]["reasoning"]["reasoning"] is True and provider["models"]["text"]["cost"]["input"] > 0
    assert config["enabled_providers"] == ["fake"] and config["model"] == "fake/text"
    opencode_dir = Path(env["XDG_CONFIG_HOME"]) / "opencode"
    assert (opencode_dir / "node_modules").is_dir()
    lock = json.loads((opencode_dir / "package-lock.json").read_text())
    assert lock["packages"][""]["dependencies"]["@opencode-ai/plugin"] == "1.18.33"
    assert env["OPENCODE_DISABLE_MODELS_FETCH"] == "1" and env["NPM_CONFIG_REGISTRY"].startswith("http://127.0.0.1:")


def test_full_env_inherits_nothing_but_the_basics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "must-not-leak")
    env = full_env(claude_env("http://127.0.0.1:1", tmp_path))
    assert "OPENAI_API_KEY" not in env and env["TZ"] == "UTC"


def test_cli_paths_point_at_the_pinned_binaries() -> None:
    for name in ("claude", "codex", "opencode"):
        assert cli_path(name).parent == CLI_BIN
    assert codex_native_path().name == "codex" and codex_native_path().is_file()


def test_drop_on_a_non_streaming_request_truncates_the_body(anthropic: FakeModelServer) -> None:
    anthropic.enqueue(Drop("half"))
    with pytest.raises(http.client.IncompleteRead):
        post(anthropic.url + "/v1/messages", anthropic_body({"role": "user", "content": "q"}, stream=False))


def test_plain_http_proxy_requests_are_refused_and_logged(chat: FakeModelServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", chat.port, timeout=5)
    conn.request("GET", "http://registry.example.com/v1/chat/completions")
    assert conn.getresponse().status == 403
    conn.close()
    assert [(r.kind, r.path) for r in chat.non_loopback_attempts()] == [
        ("proxy", "http://registry.example.com/v1/chat/completions")
    ]
    assert chat.model_requests == []
