"""Feed recorded CLI output through a provider's parser and turn assembler, with no process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from caw.events import Event
from caw.models import Turn
from caw.providers.base import TurnParser
from caw.session.turn import TurnAssembler, parse_line

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def fixture_lines(provider: str, scenario: str) -> list[str]:
    return (FIXTURES / provider / f"{scenario}.jsonl").read_text(encoding="utf-8").splitlines()


def fixture_meta(provider: str, scenario: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / provider / f"{scenario}.meta.json").read_text())
    return data


def replay(
    parser: TurnParser, lines: list[str], exit_code: int | None = 0, stderr: str = ""
) -> tuple[list[Event], Turn]:
    """Parse lines as the session would (``TurnAssembler.feed``); return every event and the assembled turn."""
    turn = Turn(input="(fixture)")
    asm = TurnAssembler(turn)
    events: list[Event] = []
    for raw in lines:
        for ev in parse_line(parser, asm, raw):
            events.extend(asm.feed(ev))
    for ev in parser.finish(exit_code, stderr):
        events.extend(asm.feed(ev))
    asm.flush()
    return events, turn


def replay_fixture(parser: TurnParser, provider: str, scenario: str) -> tuple[list[Event], Turn]:
    meta = fixture_meta(provider, scenario)
    return replay(parser, fixture_lines(provider, scenario), meta.get("exit_code"), meta.get("stderr") or "")
