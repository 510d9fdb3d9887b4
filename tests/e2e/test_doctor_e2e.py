"""``caw doctor`` on the real codex, whose key comes from its config.toml's ``env_key`` (issue 12.13)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.fakes.env import CODEX_KEY_VAR, codex_env, full_env
from tests.fakes.openai_responses import ResponsesFake
from tests.fakes.replies import Text


def test_doctor_sees_a_codex_key_named_by_the_configs_env_key_and_the_live_probe_answers(tmp_path: Path) -> None:
    with ResponsesFake() as server:
        env = full_env(codex_env(server.url, tmp_path))
        for var in ("OPENAI_API_KEY", "CODEX_API_KEY"):
            env.pop(var, None)  # the only key is the one config.toml names: model_providers.fake.env_key
        env["CAW_DATA_DIR"] = str(tmp_path / "caw-data")
        server.enqueue(Text("ok"))
        r = subprocess.run(
            [sys.executable, "-m", "caw", "doctor", "--json", "--live", "--provider", "codex"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert r.returncode == 0, r.stderr
    codex = next(p for p in json.loads(r.stdout)["providers"] if p["provider"] == "codex")
    assert codex["credential"] == f"env {CODEX_KEY_VAR}"
    assert codex["status"] == "ok" and codex["live"] == "answers", codex
