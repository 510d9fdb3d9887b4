"""Issue 17.4 on the real codex: a provider key printed by a tool is absent from every file and stream caw writes.

codex runs on the loopback Responses fake; its key variable (the fake provider's ``env_key``, named to caw with
``CAW_SECRETS``) and ``OPENAI_API_KEY`` both hold a canary. The fake makes codex's shell tool print the canary,
and ``caw run --jsonl --save`` runs as a subprocess with a GitHub step summary: the canary must be in none of
trajectory.json, turns.jsonl, the --save file, stdout, stderr and the summary. It also checks that codex no
longer hands ``OPENAI_API_KEY`` to the command (``shell_environment_policy.exclude``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.e2e.harness_codex import codex_harness_env
from tests.fakes.env import CODEX_KEY_VAR, CODEX_MODEL, full_env
from tests.fakes.openai_responses import ResponsesFake
from tests.fakes.replies import Text, ToolCall

CANARY = "canary-9d41e7b2c3a85f60"


def test_a_key_printed_by_a_tool_is_absent_from_everything_caw_writes(tmp_path: Path) -> None:
    with ResponsesFake() as server:
        root = tmp_path / "job"
        work = root / "work"
        work.mkdir(parents=True)
        env = full_env(codex_harness_env(server.url, root))
        env.update(
            {
                CODEX_KEY_VAR: CANARY,
                "OPENAI_API_KEY": CANARY,
                "CAW_SECRETS": CODEX_KEY_VAR,
                "CAW_DATA_DIR": str(root / "data"),
                "GITHUB_STEP_SUMMARY": str(root / "summary.md"),
            }
        )
        server.enqueue(ToolCall(f"printf 'openai=[%s]\\n' \"$OPENAI_API_KEY\"; echo key={CANARY}"), Text("done"))
        save = root / "saved.json"
        argv = [sys.executable, "-m", "caw", "run", "--provider", "codex", "--model", CODEX_MODEL, "--jsonl"]
        out = subprocess.run(
            [*argv, "--save", str(save), "run the command"],
            env=env,
            cwd=work,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        # the tool really printed the canary (the model got it back), and codex kept OPENAI_API_KEY from it
        bodies = [json.dumps(r.body) for r in server.model_requests if r.body is not None]
        assert any(f"key={CANARY}" in b for b in bodies)
        assert any("openai=[]" in b for b in bodies) and not any(f"openai=[{CANARY}]" in b for b in bodies)
    [session_dir] = (root / "data" / "sessions").iterdir()
    files = [session_dir / "trajectory.json", session_dir / "turns.jsonl", save, root / "summary.md"]
    for name, text in [("stdout", out.stdout), ("stderr", out.stderr), *((p.name, p.read_text()) for p in files)]:
        assert CANARY not in text, name
    assert "key=[REDACTED]" in out.stdout and "key=[REDACTED]" in save.read_text()
