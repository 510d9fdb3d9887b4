"""``can_use_tool`` is not built yet (docs/dev/permissions.md): the option is refused, never silently ignored."""

from __future__ import annotations

import pytest

import caw
from caw.errors import ConfigurationError


def test_can_use_tool_is_refused_until_it_is_built() -> None:
    with pytest.raises(ConfigurationError, match="can_use_tool"):
        caw.Agent(provider="claude", can_use_tool=lambda name, arguments: True)
