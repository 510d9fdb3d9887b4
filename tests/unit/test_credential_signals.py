"""Where a CLI would find its login, as the picker and ``caw doctor`` report it (names only, never secrets)."""

from __future__ import annotations

from pathlib import Path

from caw.providers import get_provider

CONFIG = """
model = "gpt-5.5"
model_provider = "corp"

[model_providers.corp]
name = "Corp gateway"
base_url = "https://llm.corp.example/v1"
env_key = "CORP_LLM_KEY"
wire_api = "responses"
"""


def _home(tmp_path: Path, config: str | None) -> dict[str, str]:
    home = tmp_path / "codex-home"
    home.mkdir()
    if config is not None:
        (home / "config.toml").write_text(config)
    return {"HOME": str(tmp_path), "CODEX_HOME": str(home)}


def test_codex_whose_key_comes_from_its_configs_env_key_has_credentials(tmp_path: Path) -> None:
    codex = get_provider("codex")
    env = _home(tmp_path, CONFIG)
    assert codex.credential_signal(env) is None  # the variable the config names is not set
    assert codex.credential_signal({**env, "CORP_LLM_KEY": "sk-corp"}) == "env CORP_LLM_KEY"
    assert codex.credential_signal({**env, "CORP_LLM_KEY": "  "}) is None
    assert codex.credential_signal({**env, "OPENAI_API_KEY": "sk"}) == "env OPENAI_API_KEY"  # still first


def test_codex_config_without_a_chosen_provider_or_unreadable_gives_no_signal(tmp_path: Path) -> None:
    codex = get_provider("codex")
    env = _home(tmp_path, CONFIG.replace('model_provider = "corp"', ""))
    assert codex.credential_signal({**env, "CORP_LLM_KEY": "sk"}) is None
    (Path(env["CODEX_HOME"]) / "config.toml").write_text("model_provider = [broken")
    assert codex.credential_signal({**env, "CORP_LLM_KEY": "sk"}) is None
    (Path(env["CODEX_HOME"]) / "auth.json").write_text("{}")
    assert codex.credential_signal(env) == "file ~/codex-home/auth.json"  # existence only
