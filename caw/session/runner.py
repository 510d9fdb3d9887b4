"""The seam between a conversation and the processes: ``TurnRunner``, the shape of ``run_turn``.

A ``Session`` runs every turn through one ``TurnRunner``: ``caw.session.turn.run_turn`` by default, or the
one given as ``Agent(runner=...)``. A scripted runner (yield events, then return a ``Turn`` or raise a
``caw.errors`` error carrying it) drives the real Agent, Session, policies and CLI with no process at all.

>>> from caw.events import TextEvent
>>> from caw.models import TextBlock, Turn
>>> def echo(provider, binary, config, request, **_):
...     yield TextEvent(provider=provider.name, text=request.prompt)
...     return Turn(input=request.prompt, provider=provider.name, output=[TextBlock(text=request.prompt)],
...                 status="completed")
>>> Agent(provider="claude", runner=echo).completion("hi").result      # doctest: +SKIP
'hi'

A runner should honour ``control.cancelled`` (``Session.cancel``) and publish the turn it builds as
``control.turn``, so that a consumer who stops iterating early still gets the partial turn recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Protocol

from caw.events import Event
from caw.models import Turn
from caw.providers.base import Provider, RunConfig, TurnRequest
from caw.session.turn import TurnControl, TurnOptions


class TurnRunner(Protocol):
    """Runs one turn on one provider: yields events, returns the ``Turn`` or raises an error carrying it."""

    def __call__(
        self,
        provider: Provider,
        binary: str | None,
        config: RunConfig,
        request: TurnRequest,
        *,
        base_env: dict[str, str],
        options: TurnOptions = ...,
        control: TurnControl | None = ...,
        clock: Callable[[], float] = ...,
    ) -> Generator[Event, None, Turn]: ...


__all__ = ["TurnRunner"]
