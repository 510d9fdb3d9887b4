"""Offline environments for the real CLIs: every model call goes to a loopback fake, nothing leaves.

Each builder creates its throwaway home/config under `root` and returns the env vars to put on top
of `minimal_base_env()` (PATH with the pinned CLIs first, HOME, TZ, ...). Use `full_env(extra)` for
a ready-to-spawn environment that inherits nothing else from the test process (no real API keys,
no real proxies).

    with AnthropicFake() as srv:
        env = full_env(claude_env(srv.url, tmp_path))
        subprocess.run([str(cli_path("claude")), "-p", "--output-format", "stream-json", "--verbose"],
                       input=b"hi", env=env, cwd=work, capture_output=True)

All three builders also point HTTP(S)_PROXY at the fake itself (with NO_PROXY for loopback): any
connection that still tries to reach the internet shows up in the fake's log as a refused
CONNECT (`srv.non_loopback_attempts()`), instead of silently failing DNS.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
#: where the CLIs under test are installed: the pinned ones (tests/clis), or the newest published ones
#: for the drift check (`scripts/test --clis latest` sets CAW_TEST_CLIS_DIR=tests/clis-latest)
CLIS_DIR = Path(os.environ.get("CAW_TEST_CLIS_DIR") or REPO_ROOT / "tests" / "clis").resolve()
CLI_BIN = CLIS_DIR / "node_modules" / ".bin"
_CODEX_VENDOR = CLIS_DIR / "node_modules" / "@openai" / "codex-linux-x64" / "vendor"

FAKE_ANTHROPIC_KEY = "sk-ant-test"
FAKE_OAUTH_TOKEN = "sk-ant-oat01-fake-oauth-token-for-tests-only"
FAKE_OPENAI_KEY = "sk-test"
CODEX_KEY_VAR = "CAW_FAKE_OPENAI_KEY"
CODEX_MODEL = "gpt-5.5"
OPENCODE_VERSION = "1.18.33"

# Extra flags `codex exec` needs in tests: only `--skip-git-repo-check` (test working dirs are not
# git repos; without it codex exits 1 before any request). The switches that stop codex's own
# outbound lookups are written into config.toml by `codex_env` instead of passed as flags:
# `[analytics] enabled = false` (same as `-c analytics.enabled=false`: no chatgpt.com /
# ab.chatgpt.com) and `[features] plugins = false` (same as `--disable plugins`: no github.com /
# api.github.com). Checked with the proxy sink: without them a run CONNECTs to those 4 hosts,
# with the config.toml alone it makes none.
CODEX_OFFLINE_ARGS: tuple[str, ...] = ("--skip-git-repo-check",)

# opencode models in the fake provider. The fake picks behaviour from its queue, not from the id;
# the ids only have to exist. `reasoning` is flagged so opencode keeps reasoning parts.
OPENCODE_MODELS = ("text", "reasoning", "tool", "title")
_OPENCODE_COST = {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}


def cli_path(name: str) -> Path:
    """The `claude` / `codex` / `opencode` launcher under test (pinned: tests/clis/node_modules/.bin)."""
    path = CLI_BIN / name
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: install the CLIs with scripts/install-clis")
    return path


def codex_native_path() -> Path:
    """The native codex binary (skips the node shim: ~0.1 s faster, same behaviour)."""
    matches = sorted(_CODEX_VENDOR.glob("*/bin/codex"))
    if not matches:
        raise FileNotFoundError(f"no native codex binary under {_CODEX_VENDOR}")
    return matches[0]


def minimal_base_env() -> dict[str, str]:
    """The few variables every CLI needs that do not depend on a test: locale, TZ, TERM."""
    return {
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        # reset times in limit messages are rendered in the process TZ; UTC keeps fixtures stable
        "TZ": "UTC",
        "TERM": "dumb",
        "NO_COLOR": "1",
    }


def full_env(extra: dict[str, str]) -> dict[str, str]:
    """`minimal_base_env()` plus a builder's variables: a complete env for `subprocess`."""
    return {**minimal_base_env(), **extra}


def _path_var() -> str:
    dirs = [str(CLI_BIN)]
    node = shutil.which("node")  # the codex launcher is a node script
    if node:
        dirs.append(str(Path(node).parent))
    dirs += ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    return ":".join(dict.fromkeys(dirs))


def _home(root: Path) -> Path:
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    return home


def _proxy_sink(url: str) -> dict[str, str]:
    """Send anything non-loopback to the fake (logged CONNECT, answered 403)."""
    no_proxy = "127.0.0.1,localhost"
    return {
        "HTTPS_PROXY": url,
        "HTTP_PROXY": url,
        "https_proxy": url,
        "http_proxy": url,
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
    }


def _common(url: str, root: Path) -> dict[str, str]:
    return {"PATH": _path_var(), "HOME": str(_home(root)), **_proxy_sink(url)}


def claude_env(url: str, root: Path, *, oauth: bool = False, max_retries: int = 0) -> dict[str, str]:
    """claude on the fake Anthropic API at `url`; state under `root/home/.claude`.

    `oauth=True` authenticates with a fake subscription token instead of an API key: only then does
    claude honour the `anthropic-ratelimit-unified-*` headers (rate_limit_event with resetsAt) and
    skip retrying 429s. `max_retries` is CLAUDE_CODE_MAX_RETRIES (default 10 upstream; 0 = fail fast).
    """
    env = _common(url, root)
    env.update(
        {
            "ANTHROPIC_BASE_URL": url,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
            "CLAUDE_CODE_MAX_RETRIES": str(max_retries),
        }
    )
    if oauth:
        env["CLAUDE_CODE_OAUTH_TOKEN"] = FAKE_OAUTH_TOKEN
    else:
        env["ANTHROPIC_API_KEY"] = FAKE_ANTHROPIC_KEY
    return env


def codex_config_toml(
    url: str, *, stream_max_retries: int = 0, request_max_retries: int = 0, stream_idle_timeout_ms: int = 30000
) -> str:
    """config.toml for a custom Responses-API provider `fake` at `url + "/v1"`."""
    return f"""\
model = "{CODEX_MODEL}"
model_provider = "fake"
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
plugins = false

[model_providers.fake]
name = "Fake OpenAI"
base_url = "{url}/v1"
env_key = "{CODEX_KEY_VAR}"
wire_api = "responses"
request_max_retries = {request_max_retries}
stream_max_retries = {stream_max_retries}
stream_idle_timeout_ms = {stream_idle_timeout_ms}
"""


def codex_env(
    url: str,
    root: Path,
    *,
    stream_max_retries: int = 0,
    request_max_retries: int = 0,
    stream_idle_timeout_ms: int = 30000,
) -> dict[str, str]:
    """codex on the fake Responses API at `url`; CODEX_HOME = `root/codex_home` with a config.toml.

    Pass `CODEX_OFFLINE_ARGS` to `codex exec` as well. TMPDIR is set to `root/tmp`: codex refuses to
    create its helper aliases under the temp dir and says so on stderr (`WARNING: proceeding, even
    though we could not create PATH aliases`) whenever CODEX_HOME is below it, e.g. in pytest's
    tmp_path; a private TMPDIR keeps stderr empty.
    """
    env = _common(url, root)
    codex_home = root / "codex_home"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(
        codex_config_toml(
            url,
            stream_max_retries=stream_max_retries,
            request_max_retries=request_max_retries,
            stream_idle_timeout_ms=stream_idle_timeout_ms,
        )
    )
    tmp = root / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env.update({"CODEX_HOME": str(codex_home), CODEX_KEY_VAR: FAKE_OPENAI_KEY, "TMPDIR": str(tmp)})
    return env


def opencode_config(url: str) -> dict[str, Any]:
    """opencode config with one provider `fake` (openai-compatible, bundled in the binary)."""
    models: dict[str, Any] = {
        model_id: {
            "name": f"Fake {model_id}",
            "tool_call": True,
            "reasoning": model_id == "reasoning",
            "cost": _OPENCODE_COST,
            "limit": {"context": 128000, "output": 4096},
        }
        for model_id in OPENCODE_MODELS
    }
    return {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "fake": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Fake",
                "options": {"baseURL": f"{url}/v1", "apiKey": "sk-fake-not-a-real-key"},
                "models": models,
            }
        },
        "enabled_providers": ["fake"],
        "model": "fake/text",
        "small_model": "fake/title",
        "autoupdate": False,
        "share": "disabled",
    }


def opencode_env(url: str, root: Path) -> dict[str, str]:
    """opencode on the fake Chat Completions API at `url`; HOME and XDG dirs under `root/home`.

    Also stubs the background `npm install @opencode-ai/plugin` opencode runs in every config dir
    (skipped when node_modules/ exists and package-lock.json lists the dependency).
    """
    env = _common(url, root)
    home = Path(env["HOME"])
    xdg = {
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_DATA_HOME": home / ".local" / "share",
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_STATE_HOME": home / ".local" / "state",
    }
    for path in xdg.values():
        path.mkdir(parents=True, exist_ok=True)
    config_dir = xdg["XDG_CONFIG_HOME"] / "opencode"
    (config_dir / "node_modules").mkdir(parents=True, exist_ok=True)
    lock = {"lockfileVersion": 3, "packages": {"": {"dependencies": {"@opencode-ai/plugin": OPENCODE_VERSION}}}}
    (config_dir / "package-lock.json").write_text(json.dumps(lock))
    env.update({k: str(v) for k, v in xdg.items()})
    env.update(
        {
            "OPENCODE_CONFIG_CONTENT": json.dumps(opencode_config(url)),
            "OPENCODE_DISABLE_MODELS_FETCH": "1",
            "OPENCODE_DISABLE_AUTOUPDATE": "1",
            "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
            # port 9 (discard) on loopback: nothing listens, an npm fetch fails at once
            "NPM_CONFIG_REGISTRY": "http://127.0.0.1:9/",
        }
    )
    return env
