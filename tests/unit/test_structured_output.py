"""``output=`` through a real Agent and Session over a scripted runner (issue 16): validation, the one repair
turn, ``StructuredOutputError``, what each CLI is asked, and ``Turn.parsed`` on disk."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict

import caw
from caw.errors import ConfigurationError, StructuredOutputError, TurnFailed
from caw.events import Event, ResultEvent, SessionStarted, ToolCallEvent
from caw.models import ToolUse, Turn
from caw.providers.base import Provider, RunConfig, TurnRequest
from caw.state.store import SessionStore
from caw.structured.schema import extract_json, output_spec
from tests.unit.scripted import ScriptedRunner


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "ledger"))
    monkeypatch.delenv("CAW_PROVIDER", raising=False)


class City(BaseModel):
    name: str
    population: int = 0


class Report(BaseModel):
    title: str
    cities: list[City]
    note: str | None = None


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Movie(TypedDict):
    title: str
    year: int


REPORT = {"title": "t", "cities": [{"name": "Oslo", "population": 700000}]}


def test_a_model_class_gives_a_model_instance_and_the_raw_text() -> None:
    runner = ScriptedRunner({"claude": [json.dumps(REPORT)]})
    traj = caw.Agent(provider="claude", runner=runner).completion("report", output=Report)
    turn = traj.turns[-1]
    assert isinstance(turn.parsed, Report) and turn.parsed.cities[0].name == "Oslo"
    assert traj.parsed is turn.parsed
    assert turn.result == json.dumps(REPORT)
    request = runner.calls[0][1]
    assert request.output_schema == Report.model_json_schema()  # claude takes it as --json-schema
    assert request.prompt == "report"


@pytest.mark.parametrize(
    ("output", "reply", "expected"),
    [
        (Point, '{"x": 1, "y": 2}', Point(1, 2)),
        (Movie, '```json\n{"title": "Alien", "year": 1979}\n```', {"title": "Alien", "year": 1979}),
        (
            {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
            '{"ok": true}',
            {"ok": True},
        ),
        (list[int], '{"value": [1, 2, 3]}', [1, 2, 3]),
    ],
)
def test_dataclass_typeddict_schema_dict_and_a_wrapped_list(output: Any, reply: str, expected: Any) -> None:
    runner = ScriptedRunner({"claude": [reply]})
    traj = caw.Agent(provider="claude", runner=runner).completion("go", output=output)
    assert traj.turns[-1].parsed == expected


def test_opencode_is_asked_for_json_in_the_prompt_and_the_users_input_is_recorded() -> None:
    runner = ScriptedRunner({"opencode": ['Sure! {"x": 3, "y": 4} Hope that helps.']})
    traj = caw.Agent(provider="opencode", runner=runner).completion("where?", output=Point)
    request = runner.calls[0][1]
    assert request.output_schema == output_spec(Point).schema  # `opencode run` ignores it; the warm client takes it
    assert request.prompt.startswith("where?") and "JSON schema" in request.prompt
    assert traj.turns[0].input == "where?"
    assert traj.turns[0].parsed == Point(3, 4)


def test_codex_strict_answer_gets_the_users_defaults_back() -> None:
    runner = ScriptedRunner(
        {"codex": ['{"title": "t", "cities": [{"name": "Oslo", "population": null}], "note": null}']}
    )
    traj = caw.Agent(provider="codex", runner=runner).completion("report", output=Report)
    assert traj.turns[0].parsed == Report(title="t", cities=[City(name="Oslo")])


def test_a_schema_codex_cannot_take_is_refused_before_any_run() -> None:
    class Bag(BaseModel):
        counts: dict[str, int]

    runner = ScriptedRunner({"codex": ["{}"]})
    with pytest.raises(ConfigurationError, match="additionalProperties"):
        caw.Agent(provider="codex", runner=runner).completion("x", output=Bag)
    assert runner.calls == []


def test_an_invalid_answer_gets_one_repair_turn_with_the_errors() -> None:
    runner = ScriptedRunner({"claude": ['{"title": "t"}', json.dumps(REPORT)]})
    session = caw.Agent(provider="claude", runner=runner).start_session()
    turn = session.send("report", output=Report)
    assert isinstance(turn.parsed, Report)
    _first, repair = (c[1] for c in runner.calls)
    assert repair.resume_key == "claude-conv"  # the same conversation
    assert "cities: Field required" in repair.prompt
    assert [t.parsed is None for t in session.trajectory.turns] == [True, False]
    assert session.trajectory.result == json.dumps(REPORT)


def test_invalid_twice_raises_with_the_raw_text_and_the_errors() -> None:
    runner = ScriptedRunner({"claude": ["no json here", '{"title": 5, "cities": []}']})
    with pytest.raises(StructuredOutputError) as info:
        caw.Agent(provider="claude", runner=runner).completion("report", output=Report)
    err = info.value
    assert err.raw == '{"title": 5, "cities": []}'
    assert err.errors == ["title: Input should be a valid string"]
    assert err.schema == Report.model_json_schema() and err.attempts == 2
    assert err.turn is not None and err.turn.status == "completed"
    assert len(err.trajectory.turns) == 2  # type: ignore[attr-defined]
    assert "after 2 tries" in str(err)


def _claude_structured(data: Any) -> Any:
    """A runner like claude with --json-schema: the answer comes as result.structured_output, no text."""

    def run(
        provider: Provider, binary: str | None, config: RunConfig, request: TurnRequest, **_: Any
    ) -> Generator[Event, None, Turn]:
        yield SessionStarted(provider=provider.name, session_id="c1")
        yield ToolCallEvent(provider=provider.name, id="t1", name="StructuredOutput", arguments=data)
        yield ResultEvent(provider=provider.name, text=json.dumps(data), structured=data)
        turn = Turn(input=request.prompt, provider=provider.name, status="completed")
        turn.output.append(ToolUse(id="t1", name="StructuredOutput", arguments=data))
        return turn

    return run


def test_claude_structured_output_is_the_answer_and_becomes_the_turns_text() -> None:
    traj = caw.Agent(provider="claude", runner=_claude_structured(REPORT)).completion("r", output=Report)
    turn = traj.turns[0]
    assert isinstance(turn.parsed, Report)
    assert json.loads(turn.result) == REPORT


def test_claude_giving_up_on_its_own_retries_is_a_structured_output_error() -> None:
    def run(
        provider: Provider, binary: str | None, config: RunConfig, request: TurnRequest, **_: Any
    ) -> Generator[Event, None, Turn]:
        yield SessionStarted(provider=provider.name, session_id="c1")
        turn = Turn(input=request.prompt, provider=provider.name, status="failed")
        turn.output.append(ToolUse(id="t1", name="StructuredOutput", arguments={"title": "t"}))
        message = "Failed to provide valid structured output after 5 attempts"
        raise TurnFailed("claude", message, kind="structured_output", turn=turn)

    with pytest.raises(StructuredOutputError) as info:
        caw.Agent(provider="claude", runner=run).completion("r", output=Report)
    assert json.loads(info.value.raw) == {"title": "t"} and info.value.attempts == 1


def test_parsed_round_trips_through_the_saved_trajectory(tmp_path: Path) -> None:
    runner = ScriptedRunner({"claude": [json.dumps(REPORT)]})
    traj = caw.Agent(provider="claude", runner=runner, data_dir=tmp_path).completion("r", output=Report)
    saved = SessionStore(tmp_path).load(traj.session_id)
    assert saved.turns[0].parsed == Report.model_validate(REPORT).model_dump(mode="json")
    again = caw.Trajectory.from_dict(json.loads(json.dumps(traj.to_dict())))
    assert Report.model_validate(again.turns[0].parsed) == traj.turns[0].parsed


def test_stream_send_async_and_astream_take_output_too() -> None:
    runner = ScriptedRunner({"claude": ['{"x": 1, "y": 1}']})
    session = caw.Agent(provider="claude", runner=runner).start_session()
    stream = session.stream("a", output=Point)
    list(stream)
    assert stream.turn.parsed == Point(1, 1)

    async def both() -> tuple[Turn, Turn]:
        sent = await session.send_async("b", output=Point)
        astream = session.astream("c", output=Point)
        async for _ in astream:
            pass
        return sent, astream.turn

    sent, streamed = asyncio.run(both())
    assert sent.parsed == Point(1, 1) and streamed.parsed == Point(1, 1)
    assert session.send("plain").parsed is None  # output= is per call


def test_output_must_be_a_type_or_a_schema() -> None:
    with pytest.raises(ConfigurationError):
        output_spec("a string")
    with pytest.raises(TypeError, match="max_tokenz"):
        caw.Agent(provider="claude", runner=ScriptedRunner({})).start_session().send("x", max_tokenz=5)


def test_extract_json_finds_fenced_and_embedded_values() -> None:
    assert extract_json('{"a": 1}') == {"a": 1}
    assert extract_json("text\n```\n[1, 2]\n```\n") == [1, 2]
    assert extract_json('{"a": 1}{"a": 2}') == {"a": 2}  # two answers in a row: the last one
    assert extract_json('First {"a": 1}, then corrected: {"a": 3}.') == {"a": 3}
    with pytest.raises(ValueError):
        extract_json("no json")


def test_a_dict_schema_is_checked_by_caws_validator() -> None:
    spec = output_spec(
        {
            "type": "object",
            "properties": {
                "kind": {"enum": ["a", "b"]},
                "n": {"type": "integer", "minimum": 1},
                "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "maxItems": 1},
            },
            "required": ["kind"],
            "additionalProperties": False,
            "$defs": {"Item": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}},
        }
    )
    with pytest.raises(ValueError) as info:
        spec.parse({"kind": "c", "n": 0, "items": [{"id": 1}, {}], "extra": True})
    assert info.value.args[1] == [
        "(root): 'c' is not one of ['a', 'b']".replace("(root)", "kind"),
        "n: 0 breaks minimum 1",
        "items[0].id: expected string, got integer",
        "items[1]: missing required property id",
        "items: more than 1 items",
        "(root): unexpected property extra",
    ]
