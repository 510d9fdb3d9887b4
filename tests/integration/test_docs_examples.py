"""Every Python example in the user guide runs (against a fake claude on a real pty), so the docs stay true."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = [
    "quickstart.md", "python-api.md", "fallback.md", "resume.md", "rate-limits.md", "batch.md", "viewer.md", "tools.md",
]  # fmt: skip
FAKE_CLI = Path(__file__).with_name("fake_cli.py")


def examples() -> list[tuple[str, int, str]]:
    found = []
    for page in PAGES:
        text = (DOCS / page).read_text()
        for m in re.finditer(r"```python\n(.*?)```", text, re.S):
            line = text[: m.start()].count("\n") + 1
            found.append((page, line, m.group(1)))
    return found


@pytest.mark.parametrize(("page", "line", "code"), examples(), ids=[f"{p}:{n}" for p, n, _ in examples()])
def test_example_runs(page: str, line: int, code: str, tmp_path: Path) -> None:
    exe = tmp_path / "claude"
    exe.write_text(f"#!{sys.executable}\nimport runpy\nrunpy.run_path({str(FAKE_CLI)!r}, run_name='__main__')\n")
    exe.chmod(0o755)
    env = {
        "PATH": f"{tmp_path}:/usr/bin:/bin",  # only the fake claude; codex/opencode are "not installed"
        "HOME": str(tmp_path / "home"),
        "CAW_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "CAW_WARM": "0",  # the fake claude speaks the one-turn `-p` protocol only (warm: tests/e2e/test_warm_*)
    }
    script = tmp_path / "example.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, timeout=120)
    assert out.returncode == 0, f"{page}:{line} failed:\n{out.stderr.decode()[-2000:]}"
