"""A scripted turn runner: sessions and fallback tested with no process at all."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from caw.events import Event, ResultEvent, SessionStarted, TextEvent
from caw.models import TextBlock, Turn
from caw.providers.base import Provider, RunConfig, TurnRequest
from caw.session.turn import TurnControl

Behaviour = str | BaseException | Callable[[TurnRequest], BaseException | str]


@dataclass
class ScriptedRunner:
    """``script[provider]`` is a list of behaviours consumed per call: a reply text, or an exception to raise.

    A ``caw.session.runner.TurnRunner``: pass it as ``Agent(runner=...)``.
    """

    script: dict[str, list[Behaviour]]
    calls: list[tuple[str, TurnRequest, RunConfig]] = field(default_factory=list)

    def __call__(
        self,
        provider: Provider,
        binary: str | None,
        config: RunConfig,
        request: TurnRequest,
        *,
        control: TurnControl | None = None,
        **_: Any,
    ) -> Generator[Event, None, Turn]:
        self.calls.append((provider.name, request, config))
        queue = self.script.get(provider.name) or ["ok"]
        behaviour = queue.pop(0) if len(queue) > 1 else queue[0]
        if callable(behaviour) and not isinstance(behaviour, BaseException):
            behaviour = behaviour(request)
        turn = Turn(input=request.prompt, provider=provider.name, model=config.model)
        if control is not None:
            control.turn = turn  # what the session keeps when the consumer stops iterating early
        yield SessionStarted(provider=provider.name, session_id=request.resume_key or f"{provider.name}-conv")
        if isinstance(behaviour, BaseException):
            if hasattr(behaviour, "turn") and behaviour.turn is None:  # type: ignore[union-attr]
                behaviour.turn = turn  # type: ignore[union-attr]
            raise behaviour
        turn.output.append(TextBlock(text=behaviour))
        yield TextEvent(provider=provider.name, text=behaviour)
        yield ResultEvent(provider=provider.name)
        turn.status = "completed"
        return turn

    def providers_called(self) -> list[str]:
        return [c[0] for c in self.calls]
