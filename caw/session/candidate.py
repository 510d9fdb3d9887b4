"""A provider in the order with its resolved configuration (what a session may try)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from caw.providers.base import Provider, RunConfig


@dataclass
class Candidate:
    """A provider in the order with its resolved configuration. The binary is located lazily."""

    provider: Provider
    config: RunConfig
    binary_path: str | None = None
    cli_version: str | None = None
    _located: bool = field(default=False, repr=False)

    def binary(self) -> str | None:
        if not self._located:
            env = {**os.environ, **self.config.env}
            self.binary_path = self.binary_path or self.provider.locate(env)
            self._located = True
        return self.binary_path

    def installed(self) -> bool:
        return self.binary() is not None
