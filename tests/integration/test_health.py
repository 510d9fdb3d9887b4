"""Provider health (caw.providers.health): fake CLI scripts on a PATH the test controls, credentials in a temp HOME."""

from __future__ import annotations

import builtins
import json
import pathlib
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import pytest

import caw.agent
import caw.providers
from caw.agent import Agent, live_probe
from caw.errors import AuthenticationError, ProviderCrashed, UsageLimitError
from caw.providers.base import Invocation, Provider, RunConfig, TurnParser, TurnRequest
from caw.providers.health import PROBE_PROMPT, ProviderHealth, check_all, check_health, credential_signal
from caw.state.ledger import CooldownStore

SECRET = "sk-ant-test-SECRET-VALUE-never-printed"


def _line(obj: dict[str, Any]) -> str:
    return "echo '" + json.dumps(obj) + "'"


_INIT = {"type": "system", "subtype": "init", "session_id": "s-1", "model": "fake", "claude_code_version": "2.1.197"}
_AUTH_FAILED: list[dict[str, Any]] = [
    {
        "type": "assistant",
        "error": "authentication_failed",
        "message": {"id": "m0", "content": [{"type": "text", "text": "Invalid API key"}]},
    },
    {"type": "result", "subtype": "success", "is_error": True, "api_error_status": 401, "result": "Invalid API key"},
]
_ANSWER: list[dict[str, Any]] = [
    {"type": "assistant", "message": {"id": "m1", "content": [{"type": "text", "text": "ok"}]}},
    {"type": "result", "subtype": "success", "is_error": False, "result": "ok", "session_id": "s-1"},
]

# a `claude` that prints a version, records how it was called, and answers one turn in stream-json
FAKE_CLAUDE = "\n".join(
    [
        "#!/bin/sh",
        'if [ "$1" = "--version" ]; then echo "2.1.197 (Claude Code)"; exit 0; fi',
        'printf \'%s\\n\' "$@" > "$FAKE_ARGV"',
        'cat > "$FAKE_STDIN"',
        _line(_INIT),
        'if [ "$FAKE_MODE" = "auth" ]; then',
        *(_line(obj) for obj in _AUTH_FAILED),
        "  exit 1",
        "fi",
        *(_line(obj) for obj in _ANSWER),
        "",
    ]
)


def write_exe(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture(autouse=True)
def _private_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "caw-data"))
    for var in ("CAW_PROVIDER", "CAW_CLAUDE_BIN", "CAW_CODEX_BIN", "CAW_OPENCODE_BIN"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    write_exe(bin_dir, "claude", FAKE_CLAUDE)
    return bin_dir


def env_for(home: Path, bin_dir: Path | None, **extra: str) -> dict[str, str]:
    path = f"{bin_dir}:/usr/bin:/bin" if bin_dir is not None else "/usr/bin:/bin"
    return {"PATH": path, "HOME": str(home), **extra}


# ---- installed, binary, version ----------------------------------------------------------------------
def test_installed_binary_and_version_from_the_path(home: Path, fake_bin: Path) -> None:
    health = check_health("claude", env=env_for(home, fake_bin))
    assert health.installed is True
    assert health.binary == str(fake_bin / "claude")
    assert health.version == "2.1.197 (Claude Code)"
    assert health.ok is True
    assert health.live is None


def test_not_installed_when_nothing_is_on_the_path(home: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    health = check_health("claude", env={"PATH": str(empty), "HOME": str(home)})
    assert (health.installed, health.binary, health.version, health.ok) == (False, None, None, False)
    assert health.summary() == "claude: not installed"


def test_bin_override_is_honoured(home: Path, tmp_path: Path) -> None:
    custom = write_exe(tmp_path / "elsewhere", "my-claude", FAKE_CLAUDE)
    health = check_health("claude", env=env_for(home, None, CAW_CLAUDE_BIN=str(custom)))
    assert health.binary == str(custom)
    assert health.version == "2.1.197 (Claude Code)"


def test_aliases_report_the_canonical_name(home: Path, fake_bin: Path) -> None:
    assert check_health("claude_code", env=env_for(home, fake_bin)).provider == "claude"


# ---- credential signals ------------------------------------------------------------------------------
def touch(path: Path, content: str = SECRET) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


@pytest.mark.parametrize(
    ("provider", "env", "expected"),
    [
        ("claude", {"ANTHROPIC_API_KEY": SECRET}, "env ANTHROPIC_API_KEY"),
        ("claude", {"CLAUDE_CODE_OAUTH_TOKEN": SECRET}, "env CLAUDE_CODE_OAUTH_TOKEN"),
        ("claude", {"ANTHROPIC_API_KEY": "  "}, None),  # an empty value is no login
        ("codex", {"OPENAI_API_KEY": SECRET}, "env OPENAI_API_KEY"),
        ("codex", {"CODEX_API_KEY": SECRET}, "env CODEX_API_KEY"),
        (
            "opencode",
            {"OPENCODE_CONFIG_CONTENT": '{"provider": {"fake": {}}}'},
            "config provider in OPENCODE_CONFIG_CONTENT",
        ),
        ("opencode", {"OPENCODE_CONFIG_CONTENT": '{"model": "x"}'}, None),
        ("opencode", {"OPENCODE_CONFIG_CONTENT": "{not json"}, None),
        ("opencode", {"OPENROUTER_API_KEY": SECRET}, "env OPENROUTER_API_KEY"),
        ("claude", {}, None),
        ("codex", {}, None),
        ("opencode", {}, None),
    ],
)
def test_env_signals(home: Path, provider: str, env: dict[str, str], expected: str | None) -> None:
    assert credential_signal(provider, {"HOME": str(home), **env}) == expected


def test_claude_credentials_file_in_the_default_home(home: Path) -> None:
    touch(home / ".claude" / ".credentials.json")
    assert credential_signal("claude", {"HOME": str(home)}) == "file ~/.claude/.credentials.json"


def test_claude_config_dir_moves_the_file(home: Path, tmp_path: Path) -> None:
    touch(home / ".claude" / ".credentials.json")
    config_dir = tmp_path / "claude-profile"
    config_dir.mkdir()
    env = {"HOME": str(home), "CLAUDE_CONFIG_DIR": str(config_dir)}
    assert credential_signal("claude", env) is None  # the default home is not where claude looks now
    touch(config_dir / ".credentials.json")
    assert credential_signal("claude", env) == f"file {config_dir}/.credentials.json"


def test_codex_auth_file_and_codex_home(home: Path, tmp_path: Path) -> None:
    touch(home / ".codex" / "auth.json")
    assert credential_signal("codex", {"HOME": str(home)}) == "file ~/.codex/auth.json"
    other = tmp_path / "codex-home"
    touch(other / "auth.json")
    assert credential_signal("codex", {"HOME": str(home), "CODEX_HOME": str(other)}) == f"file {other}/auth.json"


def test_opencode_auth_file_under_xdg_data_home(home: Path) -> None:
    touch(home / ".local" / "share" / "opencode" / "auth.json")
    assert credential_signal("opencode", {"HOME": str(home)}) == "file ~/.local/share/opencode/auth.json"
    xdg = home / "xdg-data"
    assert credential_signal("opencode", {"HOME": str(home), "XDG_DATA_HOME": str(xdg)}) is None
    touch(xdg / "opencode" / "auth.json")
    assert credential_signal("opencode", {"HOME": str(home), "XDG_DATA_HOME": str(xdg)}) == (
        "file ~/xdg-data/opencode/auth.json"
    )


def test_env_wins_over_a_file(home: Path) -> None:
    touch(home / ".claude" / ".credentials.json")
    assert credential_signal("claude", {"HOME": str(home), "ANTHROPIC_API_KEY": SECRET}) == "env ANTHROPIC_API_KEY"


def test_credential_files_are_never_opened_and_secrets_never_shown(
    home: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cred = touch(home / ".claude" / ".credentials.json")
    real_open = builtins.open

    def guarded_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        assert Path(str(file)).resolve() != cred.resolve(), "health opened a credential file"
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(pathlib.Path, "read_text", lambda *a, **k: pytest.fail("read_text called"))
    monkeypatch.setattr(pathlib.Path, "read_bytes", lambda *a, **k: pytest.fail("read_bytes called"))
    health = check_health("claude", env=env_for(home, fake_bin, CLAUDE_CODE_OAUTH_TOKEN=SECRET))
    assert health.credential == "env CLAUDE_CODE_OAUTH_TOKEN"
    dumped = health.model_dump_json() + health.summary() + repr(health)
    assert SECRET not in dumped


def test_config_env_adds_to_the_lookup_env(home: Path, fake_bin: Path) -> None:
    config = RunConfig(env={"ANTHROPIC_API_KEY": SECRET})
    assert check_health("claude", env=env_for(home, fake_bin), config=config).credential == "env ANTHROPIC_API_KEY"


# ---- cooldown ----------------------------------------------------------------------------------------
def test_a_remembered_usage_limit_is_visible(home: Path, fake_bin: Path, tmp_path: Path) -> None:
    until = (datetime.now(timezone.utc) + timedelta(hours=2)).replace(microsecond=0)
    CooldownStore.default().set("claude", until, kind="session")
    health = check_health("claude", env=env_for(home, fake_bin))
    assert health.cooldown_until == until
    assert "usage limit until" in health.summary()
    other = tmp_path / "other-data"
    assert check_health("claude", env=env_for(home, fake_bin, CAW_DATA_DIR=str(other))).cooldown_until is None


def test_agent_check_health_uses_the_agent_config(home: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{fake_bin}:/usr/bin:/bin")
    health = Agent(provider="claude", env={"HOME": str(home), "CLAUDE_CODE_OAUTH_TOKEN": SECRET}).check_health()
    assert isinstance(health, ProviderHealth)
    assert health.installed and health.credential == "env CLAUDE_CODE_OAUTH_TOKEN"


# ---- ok and serialisation ----------------------------------------------------------------------------
def test_ok_is_installed_and_answering() -> None:
    base: dict[str, Any] = {"provider": "claude", "installed": True, "binary": "/x/claude"}
    assert ProviderHealth(**base).ok is True
    assert ProviderHealth(**base, live="answers").ok is True
    assert ProviderHealth(**base, live="rate_limited").ok is False
    assert ProviderHealth(**{**base, "installed": False}).ok is False
    dumped = ProviderHealth(**base, live="auth_error").model_dump()
    assert dumped["ok"] is False and dumped["live"] == "auth_error"


# ---- check_all ---------------------------------------------------------------------------------------
class StubProvider(Provider):
    name: ClassVar[str] = "stub"
    binary_name: ClassVar[str] = "stub"

    def build(self, binary: str, config: RunConfig, request: TurnRequest) -> Invocation:
        raise NotImplementedError

    def parser(self) -> TurnParser:
        raise NotImplementedError

    def continuation_prompt(self, original: str) -> str:
        raise NotImplementedError


def stub(name: str) -> Provider:
    cls = type(f"{name.title()}Stub", (StubProvider,), {"name": name, "binary_name": name})
    instance: Provider = cls()
    return instance


def test_check_all_lists_the_configured_order_first(
    home: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(caw.providers.registry._REGISTRY, "codex", stub("codex"))
    monkeypatch.setitem(caw.providers.registry._REGISTRY, "opencode", stub("opencode"))
    write_exe(fake_bin, "opencode", "#!/bin/sh\necho 1.18.33\n")
    env = env_for(home, fake_bin)
    names = [h.provider for h in check_all(["opencode", "claude"], env=env)]
    assert names == ["opencode", "claude", "codex"]
    by_name = {h.provider: h for h in check_all(env={**env, "CAW_PROVIDER": "codex"})}
    assert list(by_name) == ["codex", "claude", "opencode"]
    assert by_name["opencode"].version == "1.18.33"
    assert by_name["codex"].installed is False
    assert check_all(env=env)[0].provider == "claude"


# ---- live probe --------------------------------------------------------------------------------------
def probe_env(home: Path, fake_bin: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    return env_for(
        home,
        fake_bin,
        FAKE_ARGV=str(tmp_path / "argv.txt"),
        FAKE_STDIN=str(tmp_path / "stdin.txt"),
        ANTHROPIC_API_KEY="sk-ant-test",
        **extra,
    )


def test_live_probe_runs_one_minimal_turn(home: Path, fake_bin: Path, tmp_path: Path) -> None:
    health = check_health("claude", live=True, env=probe_env(home, fake_bin, tmp_path), probe=live_probe)
    assert health.live == "answers", health.live_detail
    assert health.live_detail == "replied 'ok'"
    assert health.ok is True
    assert (tmp_path / "stdin.txt").read_text() == PROBE_PROMPT
    argv = (tmp_path / "argv.txt").read_text().splitlines()
    assert argv[argv.index("--tools") + 1] == ""  # no tools: the cheapest turn there is


def test_live_probe_reports_a_rejected_login(home: Path, fake_bin: Path, tmp_path: Path) -> None:
    health = check_health(
        "claude", live=True, env=probe_env(home, fake_bin, tmp_path, FAKE_MODE="auth"), probe=live_probe
    )
    assert health.live == "auth_error"
    assert health.live_detail is not None and "Invalid API key" in health.live_detail
    assert health.ok is False


def test_live_probe_on_a_missing_cli_sends_nothing(home: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    health = check_health("claude", live=True, env={"PATH": str(empty), "HOME": str(home)})
    assert health.live == "not_installed"
    assert health.ok is False


class _RaisingAgent:
    error: ClassVar[Exception] = Exception("set by the test")
    seen: ClassVar[dict[str, Any]] = {}

    def __init__(self, **kwargs: Any) -> None:
        _RaisingAgent.seen = kwargs

    def completion(self, message: str) -> Any:
        raise self.error


@pytest.mark.parametrize(
    ("error", "live", "detail"),
    [
        (
            UsageLimitError(
                "claude", "You've hit your session limit", resets_at=datetime(2026, 11, 22, 14, 3, tzinfo=timezone.utc)
            ),
            "rate_limited",
            "resets at 2026-11-22T14:03+00:00: You've hit your session limit",
        ),
        (
            UsageLimitError("claude", "429 Too Many Requests"),
            "rate_limited",
            "reset time unknown: 429 Too Many Requests",
        ),
        (AuthenticationError("claude", "OAuth token has expired"), "auth_error", "OAuth token has expired"),
        (
            ProviderCrashed("claude", "exited with code 3\nand more"),
            "error",
            "ProviderCrashed: claude: exited with code 3 and more",
        ),
    ],
)
def test_live_probe_maps_errors(
    home: Path, fake_bin: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, live: str, detail: str
) -> None:
    monkeypatch.setattr(_RaisingAgent, "error", error)
    monkeypatch.setattr(caw.agent, "Agent", _RaisingAgent)
    health = check_health("claude", live=True, env=env_for(home, fake_bin), probe=live_probe)
    assert (health.live, health.live_detail) == (live, detail)
    assert _RaisingAgent.seen["auto_wait"] is False  # a probe must never sit out a usage limit
    assert _RaisingAgent.seen["provider"] == "claude"


def test_summary_is_one_line(home: Path, fake_bin: Path) -> None:
    health = check_health("claude", env=env_for(home, fake_bin, ANTHROPIC_API_KEY=SECRET))
    assert health.summary() == (
        f"claude: ok — 2.1.197 (Claude Code) at {fake_bin}/claude; credential: env ANTHROPIC_API_KEY"
    )
    assert json.loads(health.model_dump_json())["ok"] is True
