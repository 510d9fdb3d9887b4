"""One description per provider of how to run its real CLI offline, so the parity suite is provider-neutral.

A harness knows the provider's fake server, its offline environment, the Agent options it needs, and the
fake replies that trigger a usage limit or an auth failure in that CLI. Harnesses register themselves in
``HARNESSES`` (one module per provider: ``harness_claude``, ``harness_codex``, ``harness_opencode``).
"""

from __future__ import annotations

import importlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import caw
from tests.fakes.base import FakeModelServer
from tests.fakes.env import full_env
from tests.fakes.replies import Reply


@dataclass
class Harness:
    name: str
    fake: Callable[[], FakeModelServer]
    #: env(url, root, **flags) -> the CLI's offline environment (flags: oauth=True for claude's limit path)
    env: Callable[..., dict[str, str]]
    #: extra Agent kwargs (model, extra_args, ...)
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    #: reply that makes the CLI report a usage limit resetting at the given epoch
    rate_limited: Callable[[int], Reply] | None = None
    #: env flags needed for the rate-limit path (e.g. claude's subscription auth)
    rate_limit_env: dict[str, Any] = field(default_factory=dict)
    #: whether the CLI reports the reset time for ``rate_limited`` (structured or in text)
    reports_reset: bool = True
    #: replies for "limited once, then fine" (default: one ``rate_limited`` reply); CLIs that retry
    #: limits themselves (opencode) need one per retry so that the limit reaches caw
    limit_replies: Callable[[int], list[Reply]] | None = None
    auth_error: Callable[[], Reply] | None = None
    #: the fake model id a reasoning scenario needs, if any (opencode picks reasoning per model)
    reasoning_kwargs: dict[str, Any] = field(default_factory=dict)


HARNESSES: dict[str, Harness] = {}


def register(h: Harness) -> Harness:
    HARNESSES[h.name] = h
    return h


@dataclass
class Live:
    """A running fake + the CLI's environment installed in os.environ for the test."""

    harness: Harness
    server: FakeModelServer
    root: Path
    work: Path
    env: dict[str, str]
    #: run the agents' sessions (and completions) warm: one long-lived CLI per session (issue 14)
    warm: bool = False

    def agent(self, **kw: Any) -> caw.Agent:
        opts: dict[str, Any] = {"cwd": str(self.work), "timeout": 120, **self.harness.agent_kwargs, **kw}
        # explicit either way: the default is warm (issue 14), and the cold rows must stay cold
        opts.setdefault("warm", self.warm)
        return caw.Agent(provider=self.harness.name, **opts)


@dataclass
class LiveFactory:
    harness: Harness
    root: Path
    monkeypatch: pytest.MonkeyPatch
    servers: list[FakeModelServer] = field(default_factory=list)
    warm: bool = False

    def __call__(self, **env_flags: Any) -> Live:
        server = self.harness.fake()
        server.start()
        self.servers.append(server)
        root = self.root / f"run{len(self.servers)}"
        work = root / "work"
        work.mkdir(parents=True)
        env = full_env(self.harness.env(server.url, root, **env_flags))
        install_env(self.monkeypatch, env, data_dir=root / "caw-data")
        return Live(self.harness, server, root, work, env, warm=self.warm)

    def close(self) -> None:
        for s in self.servers:
            s.stop()


def install_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *, data_dir: Path) -> None:
    """Make ``env`` the whole process environment for this test (no real keys or proxies leak in)."""
    for key in list(os.environ):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CAW_DATA_DIR", str(data_dir))


def live_factory(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveFactory]:
    factory = LiveFactory(HARNESSES[name], tmp_path, monkeypatch)
    try:
        yield factory
    finally:
        factory.close()


def cli_pid(session: caw.Session) -> int | None:
    """The pid of the CLI running the session's turn: the warm process, else the current cold turn's."""
    warm = session._warm
    if warm is not None and warm._slots:
        [slot] = warm._slots.values()
        return slot.client.pid
    control = session._control
    process = control._process if control is not None else None
    return process.pid if process is not None else None


def processes_matching(needle: str) -> list[int]:
    """Live (non-zombie) pids whose command line contains ``needle``."""
    out = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmd and state != b"Z":
            out.append(int(entry))
    return out


def wait_until(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``pred`` (an observation of real processes, no clock to inject) until truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def kill_quietly(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def load_harnesses() -> dict[str, Harness]:
    """Import every provider's harness module that exists (each registers itself)."""
    for mod in ("harness_claude", "harness_codex", "harness_opencode"):
        try:
            importlib.import_module(f"tests.e2e.{mod}")
        except ModuleNotFoundError as exc:  # a provider whose harness is not written yet
            if exc.name != f"tests.e2e.{mod}":
                raise
    return HARNESSES


@dataclass
class Multi:
    """Several providers' fakes at once, with one merged environment (for fallback scenarios)."""

    servers: dict[str, FakeModelServer]
    work: Path
    env: dict[str, str]


def start_multi(
    names: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: dict[str, dict[str, Any]] | None = None
) -> Multi:
    load_harnesses()
    servers: dict[str, FakeModelServer] = {}
    env: dict[str, str] = {}
    for name in names:
        h = HARNESSES[name]
        server = h.fake()
        server.start()
        servers[name] = server
        env.update(h.env(server.url, tmp_path / name, **(flags or {}).get(name, {})))
    work = tmp_path / "work"
    work.mkdir()
    full = full_env(env)
    install_env(monkeypatch, full, data_dir=tmp_path / "caw-data")
    return Multi(servers, work, full)
