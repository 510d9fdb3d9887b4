"""The provider guess of ``detect_limit`` comes from markers the providers register, not from a list in caw.limits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import ClassVar

import pytest

import caw.providers
from caw.limits import detect_limit
from caw.limits.markers import guess_provider, register_markers, registered_markers, unregister_markers
from caw.providers import Invocation, Provider, RunConfig, TurnParser, TurnRequest

TEXT = "Acme CLI: you've hit your usage limit (acme-quota). Try again in 2h."


class AcmeProvider(Provider):
    name = "acme"
    binary_name = "acme"
    limit_markers: ClassVar[tuple[str, ...]] = (r"\bacme-quota\b", r"\bacme\s+cli\b")

    def build(self, binary: str, config: RunConfig, request: TurnRequest) -> Invocation:
        raise NotImplementedError

    def parser(self, config: RunConfig | None = None, request: TurnRequest | None = None) -> TurnParser:
        raise NotImplementedError

    def continuation_prompt(self, original: str) -> str:
        raise NotImplementedError


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch) -> Iterator[AcmeProvider]:
    monkeypatch.setattr(caw.providers.registry, "_REGISTRY", dict(caw.providers.registry._REGISTRY))
    provider = AcmeProvider()
    try:
        yield provider
    finally:
        unregister_markers(provider.name)


def test_the_builtins_register_their_markers_newest_first() -> None:
    assert list(registered_markers())[:3] == ["claude", "codex", "opencode"]
    # opencode wraps Anthropic's messages, so its markers, registered last, are checked first
    assert guess_provider("opencode APIError: anthropic rate_limit_error (429)") == "opencode"


def test_a_newly_registered_providers_marker_is_recognised(acme: AcmeProvider) -> None:
    before = detect_limit(TEXT)
    assert before is not None and before.provider is None
    caw.providers.register(acme)
    assert registered_markers()["acme"] == AcmeProvider.limit_markers
    found = detect_limit(TEXT)
    assert found is not None and found.provider == "acme" and found.kind == "usage"
    unregister_markers("acme")
    assert "acme" not in registered_markers()
    found = detect_limit(TEXT)
    assert found is not None and found.provider is None


def test_registering_no_markers_removes_them() -> None:
    try:
        register_markers("acme", ("acme",))
        assert guess_provider("ACME said no") == "acme"
        register_markers("acme", ())
        assert guess_provider("ACME said no") is None and "acme" not in registered_markers()
    finally:
        unregister_markers("acme")


def test_a_pattern_that_does_not_compile_is_refused_at_registration() -> None:
    with pytest.raises(re.error):
        register_markers("acme", ("(unclosed",))
    assert "acme" not in registered_markers()
