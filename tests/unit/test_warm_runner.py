"""WarmRunner (issue 14) with a scripted WarmClient: no process, a fake clock."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

import caw
from caw.events import (
    ErrorEvent,
    Event,
    RawEvent,
    ResultEvent,
    RetryEvent,
    SessionStarted,
    TextEvent,
    ToolCallEvent,
    UsageEvent,
    WarningEvent,
)
from caw.models import Turn, UsageStats
from caw.providers import get_provider
from caw.providers.base import Invocation, Provider, RunConfig, TurnParser, TurnRequest, WarmClient, WarmClosed
from caw.session import Session, SessionSetup
from caw.session.candidate import Candidate
from caw.session.turn import TurnControl, TurnOptions, run_turn
from caw.session.warm import RESTARTED, WarmRunner


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Wait:
    seconds: float


@dataclass
class Die:
    exit_code: int = -9


@dataclass
class Do:
    fn: Callable[[], None]


HANG = "hang"  # nothing more until interrupted
Item = Event | Wait | Die | Do | str


@dataclass
class Log:
    started: list[TurnRequest] = field(default_factory=list)
    clients: list[FakeClient] = field(default_factory=list)


class FakeClient(WarmClient):
    """Plays one script per turn; ``interrupt`` ends the turn (as claude's aborted result does)."""

    def __init__(self, provider: Provider, config: RunConfig, env: Mapping[str, str], fake: FakeProvider) -> None:
        super().__init__(provider, "/bin/fake", config, env)
        self.fake = fake
        self.clock = fake.clock
        self._items: list[Item] = []
        self._done = True
        self._alive = False
        self._key: str | None = None
        self.interrupts = 0
        self.closed = 0
        self.killed_since: list[set[int]] = []
        self.wake = threading.Event()

    def start(self, request: TurnRequest, *, timeout: float | None) -> None:
        self.fake.log.started.append(request)
        if self.fake.start_blocks:  # a slow handshake (MCP servers starting): until someone closes it
            self.fake.starting.set()
            self.wake.wait(10)
            if self.closed:
                raise WarmClosed("closed while starting")
        self._alive = True
        self._key = request.resume_key

    def begin(self, request: TurnRequest) -> None:
        if not self._alive:
            raise WarmClosed("gone")
        self._items = list(self.fake.turns.pop(0))
        self._done = False

    def poll(self, timeout: float) -> list[Event]:
        out: list[Event] = []
        while self._items:
            item = self._items[0]
            if isinstance(item, Wait):
                step = min(item.seconds, timeout)
                self.clock.t += step
                item.seconds -= step
                if item.seconds > 0:
                    return out
                self._items.pop(0)
                continue
            if isinstance(item, Die):
                if out:
                    return out
                self._alive = False
                raise WarmClosed("killed", exit_code=item.exit_code, stderr_tail="boom")
            if isinstance(item, Do):
                self._items.pop(0)
                item.fn()
                continue
            if item == HANG:
                break
            self._items.pop(0)
            if item == "ended":
                self._done = True
                return out
            assert not isinstance(item, str)
            out.append(item)
            if isinstance(item, SessionStarted):
                self._key = item.session_id
            if isinstance(item, ResultEvent) or (isinstance(item, ErrorEvent) and item.fatal):
                self._done = True
                return out
        if not out:
            self.clock.t += timeout
            if self.fake.blocking:
                self.wake.wait(0.005)  # a real client blocks here; the cancel thread is on its way
        return out

    @property
    def turn_done(self) -> bool:
        return self._done

    def interrupt(self) -> None:
        self.interrupts += 1
        if not self._done:
            self._items = [UsageEvent(provider="fake", usage=UsageStats(output_tokens=1), final=True), "ended"]
        self.wake.set()

    @property
    def alive(self) -> bool:
        return self._alive

    @property
    def resume_key(self) -> str | None:
        return self._key

    def tool_pids(self) -> set[int]:
        return {1}

    def kill_tools_since(self, before: set[int]) -> list[int]:
        self.killed_since.append(before)
        return []

    def close(self, grace_s: float = 2.0) -> None:
        self.closed += 1
        self._alive = False
        self._done = True
        self.wake.set()

    def stderr_tail(self) -> str:
        return "fake stderr"


class _Parser(TurnParser):
    def on_json(self, obj: dict[str, Any]) -> list[Event]:
        return []


class FakeProvider(Provider):
    name = "fake"
    binary_name = "fake"

    def __init__(self, turns: list[list[Item]], *, warm: bool = True) -> None:
        self.turns = turns
        self.warm = warm
        self.clock = Clock()
        self.log = Log()
        self.blocking = False
        self.start_blocks = False
        self.starting = threading.Event()

    def build(self, binary: str, config: RunConfig, request: TurnRequest) -> Invocation:
        return Invocation(argv=[binary])

    def parser(self, config: RunConfig | None = None, request: TurnRequest | None = None) -> TurnParser:
        return _Parser()

    def continuation_prompt(self, original: str) -> str:
        return original

    def warm_client(self, binary: str, config: RunConfig, env: Mapping[str, str]) -> WarmClient | None:
        if not self.warm:
            return None
        client = FakeClient(self, config, env, self)
        self.log.clients.append(client)
        return client


def answer(text: str, key: str = "conv-1") -> list[Item]:
    return [
        SessionStarted(provider="fake", session_id=key),
        TextEvent(provider="fake", text=text),
        UsageEvent(provider="fake", usage=UsageStats(input_tokens=3, output_tokens=2), final=True),
        ResultEvent(provider="fake"),
    ]


def drive(gen: Generator[Event, None, Turn]) -> tuple[list[Event], Turn | BaseException]:
    events: list[Event] = []
    try:
        while True:
            events.append(next(gen))
    except StopIteration as stop:
        return events, stop.value
    except caw.CawError as exc:
        return events, exc


def call(
    runner: WarmRunner,
    prov: FakeProvider,
    prompt: str = "hi",
    *,
    key: str | None = None,
    options: TurnOptions | None = None,
    control: TurnControl | None = None,
    config: RunConfig | None = None,
) -> tuple[list[Event], Turn | BaseException]:
    gen = runner(
        prov,
        "/bin/fake",
        config or RunConfig(cwd="/tmp"),
        TurnRequest(prompt=prompt, resume_key=key),
        base_env={},
        options=options or TurnOptions(),
        control=control,
        clock=prov.clock,
    )
    return drive(gen)


def test_turns_reuse_one_client_through_the_assembler() -> None:
    prov = FakeProvider([answer("one"), answer("two")])
    runner = WarmRunner(idle_timeout=None)
    _, first = call(runner, prov)
    events, second = call(runner, prov, "again", key="conv-1")
    assert isinstance(first, Turn) and isinstance(second, Turn)
    assert (first.result, second.result) == ("one", "two")
    assert second.status == "completed" and second.usage.output_tokens == 2
    assert len(prov.log.clients) == 1 and len(prov.log.started) == 1
    assert [type(e) for e in events][-1] is ResultEvent
    runner.close()
    assert prov.log.clients[0].closed == 1


def test_a_turn_without_a_result_still_completes() -> None:
    """A client that saw its turn's end without a result event: the turn completes (a cold exit 0 would)."""
    prov = FakeProvider([[TextEvent(provider="fake", text="x"), "ended"]])
    events, turn = call(WarmRunner(idle_timeout=None), prov)
    assert isinstance(turn, Turn) and turn.status == "completed" and turn.result == "x"
    assert isinstance(events[-1], ResultEvent)


def test_first_output_watchdog_interrupts_and_keeps_the_client() -> None:
    prov = FakeProvider([[SessionStarted(provider="fake", session_id="c"), HANG], answer("later", "c")])
    runner = WarmRunner(idle_timeout=None)
    _, err = call(runner, prov, options=TurnOptions(first_output_timeout=5))
    assert isinstance(err, caw.FirstOutputTimeout)
    assert err.turn is not None and err.turn.status == "timeout"
    client = prov.log.clients[0]
    assert client.interrupts == 1 and client.killed_since == [{1}]
    _, turn = call(runner, prov, key="c")
    assert isinstance(turn, Turn) and turn.result == "later"
    assert len(prov.log.clients) == 1


def test_idle_watchdog_counts_from_the_last_event() -> None:
    prov = FakeProvider([[TextEvent(provider="fake", text="a"), Wait(8), TextEvent(provider="fake", text="b"), HANG]])
    runner = WarmRunner(idle_timeout=None)
    start = prov.clock.t
    events, err = call(runner, prov, options=TurnOptions(idle_timeout=10))
    assert isinstance(err, caw.IdleTimeout)
    assert prov.clock.t - start == pytest.approx(18, abs=0.2)
    assert [e.text for e in events if isinstance(e, TextEvent)] == ["a", "b"]
    assert err.turn is not None and err.turn.result == "ab"


def test_whole_turn_watchdog() -> None:
    busy: list[Item] = []
    for i in range(50):
        busy += [TextEvent(provider="fake", text=str(i)), Wait(1)]
    prov = FakeProvider([busy])
    _, err = call(WarmRunner(idle_timeout=None), prov, options=TurnOptions(timeout=20, idle_timeout=5))
    assert isinstance(err, caw.TurnTimeout)


def test_a_run_of_retries_is_unavailable() -> None:
    retries: list[Item] = []
    for _ in range(30):
        retries += [RetryEvent(provider="fake", message="overloaded"), Wait(10)]
    prov = FakeProvider([retries])
    _, err = call(WarmRunner(idle_timeout=None), prov, options=TurnOptions(transient_timeout=60))
    assert isinstance(err, caw.ProviderUnavailable)


def test_cancel_flag_interrupts_kills_the_tools_and_keeps_the_client() -> None:
    control = TurnControl()
    prov = FakeProvider(
        [
            [
                ToolCallEvent(provider="fake", id="t1", name="Bash", arguments={"command": "sleep 100"}),
                Do(control.cancelled.set),
                HANG,
            ],
            answer("still here"),
        ]
    )
    runner = WarmRunner(idle_timeout=None)
    events, err = call(runner, prov, control=control)
    assert isinstance(err, caw.TurnCancelled)
    assert err.turn is not None and err.turn.status == "cancelled" and err.turn.tool_uses
    assert isinstance(events[-1], ErrorEvent) and events[-1].kind == "cancelled" and not events[-1].fatal
    client = prov.log.clients[0]
    assert client.interrupts == 1 and client.killed_since == [{1}] and client.closed == 0
    _, turn = call(runner, prov)  # the cancelled turn named no conversation
    assert isinstance(turn, Turn) and turn.result == "still here" and len(prov.log.clients) == 1


def test_control_cancel_from_another_thread_goes_through_interrupt() -> None:
    control = TurnControl()
    prov = FakeProvider([[TextEvent(provider="fake", text="partial"), HANG]])
    prov.blocking = True
    runner = WarmRunner(idle_timeout=None)
    gen = runner(prov, "/bin/fake", RunConfig(), TurnRequest("p"), base_env={}, control=control, clock=prov.clock)
    assert isinstance(next(gen), TextEvent)
    canceller = threading.Thread(target=control.cancel)
    canceller.start()
    _, err = drive(gen)
    canceller.join(5)
    assert not canceller.is_alive()
    assert isinstance(err, caw.TurnCancelled) and err.turn is not None and err.turn.result == "partial"
    assert prov.log.clients[0].interrupts == 1 and prov.log.clients[0].closed == 0


def test_control_cancel_inside_the_stream_loop_does_not_wait_out_the_grace() -> None:
    # found by QA with an independent fake: `session.cancel()` called in the `for ev in session.stream(...)` loop
    # waited the whole grace for a runner that only moves on when the loop asks for the next event, then
    # stopped the warm CLI (the next send started it again)
    control = TurnControl()
    prov = FakeProvider([[TextEvent(provider="fake", text="partial"), HANG], answer("same process")])
    prov.blocking = True
    runner = WarmRunner(idle_timeout=None)
    config = RunConfig(cwd="/tmp")
    gen = runner(prov, "/bin/fake", config, TurnRequest("p"), base_env={}, control=control, clock=prov.clock)
    assert isinstance(next(gen), TextEvent)
    control.cancel()  # the consumer's own thread
    assert prov.log.clients[0].closed == 0
    _, err = drive(gen)
    assert isinstance(err, caw.TurnCancelled) and err.turn is not None and err.turn.result == "partial"
    assert prov.log.clients[0].interrupts == 1 and prov.log.clients[0].closed == 0
    _, turn = call(runner, prov)
    assert isinstance(turn, Turn) and turn.result == "same process" and len(prov.log.clients) == 1


def test_cancel_before_the_turn_sends_nothing() -> None:
    control = TurnControl()
    control.cancelled.set()
    prov = FakeProvider([answer("never")])
    events, err = call(WarmRunner(idle_timeout=None), prov, control=control)
    assert isinstance(err, caw.TurnCancelled)
    assert prov.turns == [answer("never")]  # begin never ran
    assert prov.log.started == []  # nor did the CLI start
    assert isinstance(events[-1], ErrorEvent) and events[-1].kind == "cancelled"


def test_a_cancel_during_a_slow_start_stops_the_client_at_once() -> None:
    prov = FakeProvider([answer("never")])
    prov.start_blocks = True
    control = TurnControl()
    runner = WarmRunner(idle_timeout=None)
    canceller = threading.Thread(target=lambda: (prov.starting.wait(5), control.cancel()))
    canceller.start()
    events, err = call(runner, prov, control=control)
    canceller.join(5)
    assert isinstance(err, caw.TurnCancelled) and err.turn is not None and err.turn.status == "cancelled"
    assert isinstance(events[-1], ErrorEvent) and events[-1].kind == "cancelled"
    assert prov.log.clients[0].closed >= 1 and runner._slots == {}
    assert "fake" not in runner._crashed  # a cancel is no crash: the next start gets no restart note


def test_closing_the_stream_settles_the_turn() -> None:
    prov = FakeProvider([[TextEvent(provider="fake", text="a"), HANG], answer("b")])
    runner = WarmRunner(idle_timeout=None)
    control = TurnControl()
    gen = runner(prov, "/bin/fake", RunConfig(), TurnRequest("p"), base_env={}, control=control, clock=prov.clock)
    next(gen)
    gen.close()
    assert control.turn is not None and control.turn.status == "cancelled"
    assert prov.log.clients[0].interrupts == 1 and prov.log.clients[0].closed == 0
    _, turn = call(runner, prov, key="conv-1")
    assert isinstance(turn, Turn) and turn.result == "b"


def test_warm_closed_mid_turn_fails_the_turn_and_the_next_call_resumes_with_a_note() -> None:
    prov = FakeProvider(
        [answer("one"), [TextEvent(provider="fake", text="half"), Die(-9)], answer("resumed")],
    )
    runner = WarmRunner(idle_timeout=None)
    call(runner, prov)
    _, err = call(runner, prov, key="conv-1")
    assert isinstance(err, caw.ProviderCrashed)
    assert err.exit_code == -9 and err.stderr_tail == "boom"
    assert err.turn is not None and err.turn.status == "failed" and err.turn.result == "half"
    events, turn = call(runner, prov, key="conv-1")
    assert isinstance(turn, Turn) and turn.result == "resumed"
    [note] = [e for e in events if isinstance(e, WarningEvent)]
    assert note.code == RESTARTED and "resumed the conversation" in note.message
    assert [r.resume_key for r in prov.log.started] == [None, "conv-1"]
    assert prov.log.clients[0].closed >= 1


def test_a_client_that_died_between_turns_is_restarted_transparently() -> None:
    prov = FakeProvider([answer("one"), answer("two")])
    runner = WarmRunner(idle_timeout=None)
    call(runner, prov)
    prov.log.clients[0]._alive = False
    events, turn = call(runner, prov, key="conv-1")
    assert isinstance(turn, Turn) and turn.status == "completed"
    assert any(isinstance(e, WarningEvent) and e.code == RESTARTED for e in events)
    assert len(prov.log.clients) == 2


def test_an_idle_client_is_restarted_quietly() -> None:
    prov = FakeProvider([answer("one"), answer("two")])
    runner = WarmRunner(idle_timeout=60)
    call(runner, prov)
    prov.clock.t += 61
    events, turn = call(runner, prov, key="conv-1")
    assert isinstance(turn, Turn) and turn.result == "two"
    assert not any(isinstance(e, WarningEvent) for e in events)
    assert len(prov.log.clients) == 2 and prov.log.clients[0].closed == 1
    assert prov.log.started[-1].resume_key == "conv-1"
    runner.close()


def test_the_idle_timer_stops_a_parked_client() -> None:
    prov = FakeProvider([answer("one")])
    runner = WarmRunner(idle_timeout=0.01)
    call(runner, prov)
    client = prov.log.clients[0]
    slot = runner._slots["fake"]
    assert slot.timer is not None
    slot.timer.join(5)
    assert client.closed == 1 and "fake" not in runner._slots


def test_another_config_or_conversation_restarts_the_client() -> None:
    prov = FakeProvider([answer("one"), answer("two"), answer("three", "other")])
    runner = WarmRunner(idle_timeout=None)
    call(runner, prov)
    call(runner, prov, key="conv-1", config=RunConfig(cwd="/tmp", model="bigger"))
    assert len(prov.log.clients) == 2
    call(runner, prov, key=None, config=RunConfig(cwd="/tmp", model="bigger"))  # the session started afresh
    assert len(prov.log.clients) == 3


def test_a_provider_without_a_warm_mode_runs_cold() -> None:
    calls: list[str] = []

    def cold(provider: Provider, binary: str | None, config: RunConfig, request: TurnRequest, **_: Any):  # type: ignore[no-untyped-def]
        calls.append(request.prompt)
        yield TextEvent(provider="fake", text="cold")
        return Turn(input=request.prompt, provider="fake", status="completed")

    prov = FakeProvider([], warm=False)
    _, turn = call(WarmRunner(cold=cold), prov, "cold please")
    assert isinstance(turn, Turn) and calls == ["cold please"]


def test_no_binary_is_not_installed() -> None:
    control = TurnControl()
    gen = WarmRunner()(FakeProvider([]), None, RunConfig(), TurnRequest("p"), base_env={}, control=control)
    _, err = drive(gen)
    assert isinstance(err, caw.ProviderNotInstalled)
    assert control.turn is not None and control.turn.status == "failed"


def test_session_uses_a_warm_runner_and_end_closes_it() -> None:
    prov = FakeProvider([answer("one"), answer("two")])
    cand = Candidate(prov, RunConfig(cwd="/tmp"), binary_path="/bin/fake", _located=True)
    session = Session([cand], SessionSetup(warm=True, runner=run_turn, clock=prov.clock))
    assert session.send("a").result == "one"
    assert session.send("b").result == "two"
    assert len(prov.log.clients) == 1
    session.end()
    assert prov.log.clients[0].closed == 1


# ---- the claude client's line handling, no process ---------------------------------------------------------
def _claude_client(tools: caw.ToolGroup | None = None) -> tuple[Any, list[dict[str, Any]]]:
    client = get_provider("claude").warm_client("/bin/claude", RunConfig(tools=tools), {})
    assert client is not None
    sent: list[dict[str, Any]] = []
    client._send = sent.append  # type: ignore[attr-defined]
    from caw.providers.claude import ClaudeParser

    client._parser, client._done = ClaudeParser(), False  # type: ignore[attr-defined]
    return client, sent


def _result(cost: float, model_in: int) -> str:
    return json.dumps(
        {
            "type": "result",
            "subtype": "success",
            "is_error": False,
            "result": "ok",
            "usage": {"input_tokens": 10, "output_tokens": 2},
            "total_cost_usd": cost,
            "modelUsage": {"m": {"inputTokens": model_in, "outputTokens": 2, "costUSD": cost, "contextWindow": 9}},
        }
    )


def test_claude_warm_garbled_and_unknown_lines_are_raw_never_a_crash() -> None:
    client, _ = _claude_client()
    [raw] = client._on_line("this is not json {")
    assert isinstance(raw, RawEvent) and raw.data == {"line": "this is not json {"}
    [raw2] = client._on_line('{"type": "brand_new_frame", "x": 1}')
    assert isinstance(raw2, RawEvent)
    assert client._on_line('{"type": "keep_alive"}') == []
    assert client._on_line('{"type": "control_cancel_request", "request_id": "r9"}') == []
    assert client._on_line("[1, 2]") == [RawEvent(provider="claude", data={"line": "[1, 2]"})]


def test_claude_warm_answers_every_control_request() -> None:
    client, sent = _claude_client(tools=caw.ToolGroup.EXEC)
    ask = {"type": "control_request", "request_id": "r1"}
    client._on_line(json.dumps({**ask, "request": {"subtype": "can_use_tool", "tool_name": "Bash", "input": {"c": 1}}}))
    client._on_line(
        json.dumps({**ask, "request_id": "r2", "request": {"subtype": "can_use_tool", "tool_name": "Write"}})
    )
    mcp = {"subtype": "mcp_message", "server_name": "s", "message": {"jsonrpc": "2.0", "id": 7, "method": "tools/list"}}
    client._on_line(json.dumps({**ask, "request_id": "r3", "request": mcp}))
    client._on_line(json.dumps({**ask, "request_id": "r4", "request": {"subtype": "hook_callback"}}))
    replies = {m["response"]["request_id"]: m["response"] for m in sent}
    assert replies["r1"]["response"] == {"behavior": "allow", "updatedInput": {"c": 1}}
    assert replies["r2"]["response"]["behavior"] == "deny"
    assert replies["r3"]["response"]["mcp_response"]["error"]["code"] == -32601
    assert replies["r4"]["subtype"] == "error"


def test_claude_warm_usage_is_per_turn_although_the_cli_sums_it() -> None:
    client, _ = _claude_client()
    first = next(e for e in client._on_line(_result(0.05, 100)) if isinstance(e, UsageEvent))
    assert client.turn_done
    client._done = False
    from caw.providers.claude import ClaudeParser

    client._parser = ClaudeParser()
    second = next(e for e in client._on_line(_result(0.12, 250)) if isinstance(e, UsageEvent))
    assert first.usage.cost_usd == pytest.approx(0.05)
    assert second.usage.cost_usd == pytest.approx(0.07)
    assert client._models_seen["m"]["inputTokens"] == 250


@dataclass(frozen=True)
class _FlaggedRequest(TurnRequest):
    """A request with a command-line option (as ``output_schema`` or ``max_turns`` are on claude)."""

    some_cli_flag: int | None = None


def test_a_turn_with_command_line_options_runs_cold_and_retires_the_warm_process() -> None:
    calls: list[str] = []

    def cold(provider: Provider, binary: str | None, config: RunConfig, request: TurnRequest, **_: Any):  # type: ignore[no-untyped-def]
        calls.append(request.prompt)
        yield TextEvent(provider="fake", text="cold")
        return Turn(input=request.prompt, provider="fake", status="completed")

    prov = FakeProvider([answer("one"), answer("three")])
    runner = WarmRunner(idle_timeout=None, cold=cold)
    call(runner, prov)
    gen = runner(
        prov, "/bin/fake", RunConfig(cwd="/tmp"), _FlaggedRequest("two", "conv-1", some_cli_flag=3), base_env={}
    )
    _, turn = drive(gen)
    assert isinstance(turn, Turn) and calls == ["two"]
    assert prov.log.clients[0].closed == 1  # its history would lag behind the cold turn
    _, third = call(runner, prov, "three", key="conv-1")
    assert isinstance(third, Turn) and third.result == "three"
    assert [r.resume_key for r in prov.log.started] == [None, "conv-1"]


def test_the_provider_that_answers_retires_the_warm_processes_of_those_that_failed() -> None:
    failing = FakeProvider([[ErrorEvent(provider="fake", kind="auth", message="no login")]])
    answering = FakeProvider([answer("hello")])
    answering.name = "other"  # type: ignore[misc]
    runner = WarmRunner(idle_timeout=None)
    _, err = call(runner, failing)
    assert isinstance(err, caw.AuthenticationError)
    assert failing.log.clients[0].closed == 0  # kept: the order may come back to it on a later first send
    _, turn = call(runner, answering)
    assert isinstance(turn, Turn) and turn.result == "hello"
    assert failing.log.clients[0].closed == 1 and list(runner._slots) == ["other"]


def test_a_one_turn_session_goes_warm_only_where_that_is_faster() -> None:
    calls: list[str] = []

    def cold(provider: Provider, binary: str | None, config: RunConfig, request: TurnRequest, **_: Any):  # type: ignore[no-untyped-def]
        calls.append(provider.name)
        yield TextEvent(provider=provider.name, text="cold")
        return Turn(input=request.prompt, provider=provider.name, status="completed")

    slow_start = FakeProvider([answer("warm")])
    _, turn = call(WarmRunner(one_turn=True, cold=cold), slow_start)
    assert calls == ["fake"] and slow_start.log.clients == []
    fast_start = FakeProvider([answer("warm")])
    fast_start.warm_single_turn = True  # type: ignore[misc]
    _, turn = call(WarmRunner(one_turn=True, cold=cold), fast_start)
    assert isinstance(turn, Turn) and turn.result == "warm" and len(fast_start.log.clients) == 1
    assert not get_provider("claude").warm_single_turn  # measured 1.16x: docs/dev/warm-sessions.md


def test_agent_warm_option_and_caw_warm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAW_WARM", raising=False)
    default = caw.Agent(provider="claude").start_session()
    assert default._warm is not None and not default._warm.one_turn  # warm by default (issue 14)
    default.end()
    one = caw.Agent(provider="claude").start_session(one_turn=True)
    assert one._warm is not None and one._warm.one_turn  # warm only where one warm turn pays (nowhere today)
    one.end()
    assert caw.Agent(provider="claude", warm=False).start_session()._warm is None
    warm = caw.Agent(provider="claude", warm=True, warm_idle_timeout=30).start_session()
    assert warm._warm is not None and warm._warm.idle_timeout == 30 and not warm._warm.one_turn
    warm.end()
    monkeypatch.setenv("CAW_WARM", "1")
    assert caw.Agent(provider="claude").start_session()._warm is not None
    assert caw.Agent(provider="claude", warm=False).start_session()._warm is None
    monkeypatch.setenv("CAW_WARM", "0")
    assert caw.Agent(provider="claude").start_session()._warm is None
    # a scripted runner is never replaced
    assert caw.Agent(provider="claude", warm=True, runner=lambda *a, **k: iter(())).start_session()._warm is None
    with pytest.raises(caw.ConfigurationError):
        caw.Agent(provider="claude", warm_idle_timeout=-1)


def test_completion_asks_for_a_one_turn_warm_session(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[SessionSetup] = []
    real = Session.__init__

    def spy(self: Session, candidates: list[Candidate], setup: SessionSetup, *a: Any, **kw: Any) -> None:
        seen.append(setup)
        real(self, candidates, setup, *a, **kw)

    monkeypatch.setattr(Session, "__init__", spy)
    monkeypatch.setenv("CAW_WARM", "1")
    from tests.unit.scripted import ScriptedRunner

    caw.Agent(provider="claude", runner=ScriptedRunner({})).completion("hi")
    caw.Agent(provider="claude", runner=ScriptedRunner({}), warm=True).completion("hi")
    assert [(s.warm, s.warm_one_turn) for s in seen] == [(True, True), (True, False)]


def test_caw_run_and_caw_resume_ask_for_one_turn_sessions(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """The default is warm, but ``caw run`` / ``caw resume`` send one message: they run cold where a warm start
    does not pay (every CLI today), as ``completion()`` does."""
    from typer.testing import CliRunner

    from caw.cli import CliContext, app
    from tests.unit.scripted import ScriptedRunner

    seen: list[SessionSetup] = []
    real = Session.__init__

    def spy(self: Session, candidates: list[Candidate], setup: SessionSetup, *a: Any, **kw: Any) -> None:
        seen.append(setup)
        real(self, candidates, setup, *a, **kw)

    monkeypatch.setattr(Session, "__init__", spy)
    monkeypatch.delenv("CAW_WARM", raising=False)
    context = CliContext(agent_options={"runner": ScriptedRunner({})})
    data = ["--data-dir", str(tmp_path)]
    first = CliRunner().invoke(app, ["run", "--provider", "claude", "--json", *data, "hi"], obj=context)
    assert first.exit_code == 0, first.output
    handle = json.loads(first.stdout)["resume_handle"]
    again = CliRunner().invoke(app, ["resume", handle, "--json", *data, "more"], obj=context)
    assert again.exit_code == 0, again.output
    assert [(s.warm, s.warm_one_turn) for s in seen] == [(True, True), (True, True)]


def test_a_cli_that_exits_during_the_warm_handshake_runs_its_turns_cold() -> None:
    """A version or wrapper that only knows one-shot runs exits before the long-lived mode answers: the
    session says so once (``warm_unavailable``) and runs that provider cold from then on."""
    calls: list[str] = []

    def cold(provider: Provider, binary: str | None, config: RunConfig, request: TurnRequest, **_: Any):  # type: ignore[no-untyped-def]
        calls.append(request.prompt)
        yield TextEvent(provider="fake", text="cold")
        return Turn(input=request.prompt, provider="fake", status="completed")

    class OneShotOnly(FakeClient):
        def start(self, request: TurnRequest, *, timeout: float | None) -> None:
            raise WarmClosed("exited with code 1", exit_code=1, stderr_tail="error: unknown option")

    prov = FakeProvider([])
    prov.warm_client = lambda binary, config, env: OneShotOnly(prov, config, env, prov)  # type: ignore[method-assign]
    runner = WarmRunner(cold=cold)
    events, turn = call(runner, prov, "first")
    assert isinstance(turn, Turn) and turn.status == "completed"
    [warning] = [e for e in events if isinstance(e, WarningEvent)]
    assert warning.code == "warm_unavailable" and "run cold" in warning.message
    events2, turn2 = call(runner, prov, "second")
    assert isinstance(turn2, Turn) and calls == ["first", "second"]
    assert not [e for e in events2 if isinstance(e, WarningEvent)]  # said once
