"""Adding a provider is one class plus one registration line (docs/dev/adding-a-provider.md).

This file is the proof. ``ParrotProvider`` below is the whole of caw's knowledge of ``parrot``, a scripted
fake CLI written to ``tmp_path`` with a JSON protocol of its own; nothing else in caw or its tests names
it. Registered with ``caw.providers.register(ParrotProvider())``, it answers a completion, catches a
fallback from a missing claude, resumes from a handle it minted (config home included), shows up in
``caw doctor`` (live probe too), gives its own install and login hints, and ``caw chat`` starts its
interactive UI on a real terminal.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pexpect
import pytest
from typer.testing import CliRunner

import caw
import caw.providers
from caw.cli import app
from caw.events import ErrorEvent, Event, RawEvent, ResultEvent, SessionStarted, TextEvent
from caw.providers.base import (
    InteractiveCommand,
    Invocation,
    Provider,
    RunConfig,
    TurnParser,
    TurnRequest,
    env_signal,
    file_signal,
    fits_argv,
    user_home,
)

REPO = Path(__file__).resolve().parents[2]


# ---- the provider: everything caw knows about parrot -----------------------------------------------------
class ParrotParser(TurnParser):
    provider = "parrot"

    def on_json(self, obj: dict[str, Any]) -> list[Event]:
        event = obj.get("event")
        if event == "start":
            return [SessionStarted(provider=self.provider, session_id=str(obj["conversation"]), model=obj.get("model"))]
        if event == "say":
            return [TextEvent(provider=self.provider, text=str(obj["text"]))]
        if event == "end":
            return [ResultEvent(provider=self.provider)]
        if event == "error":
            return [ErrorEvent(provider=self.provider, kind=obj.get("kind", "unknown"), message=str(obj["message"]))]
        return [RawEvent(provider=self.provider, data=obj)]


class ParrotProvider(Provider):
    name = "parrot"
    binary_name = "parrot"
    config_home_var = "PARROT_HOME"
    install_command = "pip install parrot-cli"
    login_command = "run `parrot login`"

    def build(self, binary: str, config: RunConfig, request: TurnRequest) -> Invocation:
        inv = Invocation(argv=[binary, "run"], stdin=request.prompt.encode(), cwd=config.cwd)
        if request.resume_key:
            inv.argv += ["--resume", request.resume_key]
        if config.model:
            inv.argv += ["--model", config.model]
        inv.argv += list(config.extra_args)
        return inv

    def parser(self, config: RunConfig | None = None, request: TurnRequest | None = None) -> ParrotParser:
        return ParrotParser()

    def continuation_prompt(self, original: str) -> str:
        return original  # parrot forgets a turn that failed: send the message again

    def interactive_command(self, binary: str, config: RunConfig, prompt: str) -> InteractiveCommand:
        cmd = InteractiveCommand(argv=[binary])
        if prompt:
            if fits_argv(prompt):
                cmd.argv.append(f"--prompt={prompt}")
            else:
                cmd.paste = prompt
        return cmd

    def credential_signal(self, env: Mapping[str, str]) -> str | None:
        home = Path(env.get("PARROT_HOME") or user_home(env) / ".parrot")
        return env_signal(env, ("PARROT_TOKEN",)) or file_signal(env, home / "token")


# ---- the fake CLI --------------------------------------------------------------------------------------
PARROT = """
import json, os, sys, uuid

home = os.environ.get("PARROT_HOME") or os.path.expanduser("~/.parrot")
args = sys.argv[1:]
if args == ["--version"]:
    print("parrot 1.2.3")
    sys.exit(0)

def out(**event):
    print(json.dumps(event), flush=True)

if not args or args[0] != "run":  # the interactive UI: say what it got, then quit
    with open(os.path.join(home, "ui.json"), "w") as f:
        json.dump({"argv": sys.argv, "cwd": os.getcwd(), "pwd": os.environ.get("PWD")}, f)
    print("PARROT UI " + " ".join(args), flush=True)
    sys.exit(int(os.environ.get("PARROT_UI_EXIT", "0")))

prompt = sys.stdin.read()
if os.environ.get("PARROT_FAIL") == "auth":
    out(event="error", kind="auth", message="the token was refused")
    sys.exit(1)
conversation = args[args.index("--resume") + 1] if "--resume" in args else uuid.uuid4().hex
path = os.path.join(home, conversation + ".json")
earlier = json.load(open(path)) if os.path.exists(path) else []
model = args[args.index("--model") + 1] if "--model" in args else "parrot-small"
out(event="start", conversation=conversation, model=model)
out(event="say", text="heard: " + prompt + (" (earlier: " + " | ".join(earlier) + ")" if earlier else ""))
out(event="end")
json.dump(earlier + [prompt], open(path, "w"))
"""


@pytest.fixture
def parrot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Register parrot for one test (the registry is restored afterwards); returns its config home."""
    caw.providers.available_names()  # the built-ins load on first use: into the real registry, not the copy
    monkeypatch.setattr(caw.providers.registry, "_REGISTRY", dict(caw.providers.registry._REGISTRY))
    caw.providers.register(ParrotProvider())  # the one registration line
    exe = tmp_path / "bin" / "parrot"
    exe.parent.mkdir()
    exe.write_text(f"#!{sys.executable}\n{PARROT}")
    exe.chmod(0o755)
    home = tmp_path / "parrot-home"
    home.mkdir()
    monkeypatch.setenv("CAW_PARROT_BIN", str(exe))
    monkeypatch.setenv("PARROT_HOME", str(home))
    monkeypatch.setenv("CAW_DATA_DIR", str(tmp_path / "caw-data"))
    monkeypatch.setenv("CAW_CLAUDE_BIN", str(tmp_path / "no-such-claude"))  # claude is "not installed"
    yield home


def test_completion_answers(parrot: Path) -> None:
    traj = caw.Agent(provider="parrot", model="parrot-large").completion("hello")
    assert traj.result == "heard: hello"
    [turn] = traj.turns
    assert turn.provider == "parrot" and turn.status == "completed" and turn.model == "parrot-large"


def test_a_missing_claude_falls_back_to_parrot(parrot: Path) -> None:
    traj = caw.Agent(provider=["claude", "parrot"], auto_wait=False).completion("hello")
    assert traj.result == "heard: hello" and traj.turns[-1].provider == "parrot"
    assert [(a.provider, a.reason) for a in traj.attempts] == [("claude", "not_installed"), ("parrot", "answered")]


def test_a_handle_minted_by_parrot_resumes_with_its_config_home(
    parrot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_home = tmp_path / "other-home"
    other_home.mkdir()
    first = caw.Agent(provider="parrot", env={"PARROT_HOME": str(other_home)}).completion("remember PELICAN")
    assert first.resume_handle is not None
    monkeypatch.delenv("PARROT_HOME")  # the handle alone must bring parrot back to its conversation
    session = caw.Agent().resume_session(first.resume_handle)
    turn = session.send("which word?")
    assert session.provider == "parrot"
    assert turn.result == "heard: which word? (earlier: remember PELICAN)"


def test_doctor_lists_parrot_as_usable_and_its_live_probe_answers(
    parrot: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARROT_TOKEN", "secret")
    result = CliRunner().invoke(app, ["doctor", "--provider", "parrot", "--live", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["order"] == ["parrot"] and doc["usable"] is True
    row = next(r for r in doc["providers"] if r["provider"] == "parrot")
    assert row["installed"] and row["version"] == "parrot 1.2.3" and row["credential"] == "env PARROT_TOKEN"
    assert row["live"] == "answers", row["live_detail"]


def test_parrots_own_install_and_login_hints(parrot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARROT_FAIL", "auth")
    result = CliRunner().invoke(app, ["run", "--provider", "parrot", "hello"])
    assert result.exit_code == 4
    assert "parrot could not authenticate: the token was refused — log in: run `parrot login`" in result.stderr
    monkeypatch.delenv("CAW_PARROT_BIN")  # and no parrot on PATH: not installed
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = CliRunner().invoke(app, ["doctor", "--provider", "parrot"])
    assert result.exit_code == 3
    assert "install it with `pip install parrot-cli`, or set CAW_PARROT_BIN to its path" in result.stderr
    monkeypatch.setenv("CAW_PARROT_BIN", str(tmp_path / "no-such-parrot"))  # a wrong path is named as such
    result = CliRunner().invoke(app, ["doctor", "--provider", "parrot"])
    assert f"CAW_PARROT_BIN={tmp_path / 'no-such-parrot'} is not an executable file" in result.stderr


DRIVER = """
import sys
sys.path.insert(0, {repo!r})
import caw.providers
from tests.integration.test_fourth_provider import ParrotProvider
caw.providers.register(ParrotProvider())
from caw.cli import main
sys.argv = ["caw", "chat", "--provider", "parrot", "--cwd", {cwd!r}, "--", "-hello parrot"]
main()
"""


def test_caw_chat_starts_parrots_interactive_ui(parrot: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(DRIVER.format(repo=str(REPO), cwd=str(project))))
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TERM": "xterm-256color",
        "PWD": "/",  # caw's own directory is elsewhere: parrot must still see the project as its PWD
        "CAW_PARROT_BIN": str(parrot.parent / "bin" / "parrot"),
        "PARROT_HOME": str(parrot),
        "PARROT_UI_EXIT": "7",
        "CAW_DATA_DIR": str(tmp_path / "caw-data"),
    }
    child = pexpect.spawn(sys.executable, [str(driver)], env=env, cwd="/", dimensions=(24, 80), timeout=20)
    try:
        child.expect(pexpect.EOF)
    finally:
        child.close()
    output = (child.before or b"").decode("utf-8", "replace")
    assert "PARROT UI --prompt=-hello parrot" in output, output
    assert child.exitstatus == 7  # caw chat exits with the UI's exit code
    ui = json.loads((parrot / "ui.json").read_text())
    assert ui["argv"][1:] == ["--prompt=-hello parrot"]
    assert ui["cwd"] == ui["pwd"] == str(project.resolve())
