#!/usr/bin/env python3
"""Re-record tests/fixtures/<provider>/<scenario>.jsonl from the real CLIs against the fakes.

Each `.jsonl` is the CLI's raw stdout, byte for byte (session ids, timestamps, ports and paths
included: it is real output). The companion `.meta.json` holds the exit code, stderr, argv, what
the fake was told to answer and what it received, so parser tests can check e.g. that `resetsAt`
equals the epoch the fake sent.

    .venv/bin/python scripts/record_fixtures.py                 # everything (~2-3 min)
    .venv/bin/python scripts/record_fixtures.py claude codex/tool opencode/text

Retries are set to 0 (claude, codex) or cut to milliseconds with `retry-after-ms` (opencode, which
has no retry knob), so error scenarios finish in seconds. Working dirs live under
`--workdir` (default /var/tmp/caw-fixtures, re-created per run) so recorded paths stay stable.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.fakes.clis import SPECS, CliRun, run_cli  # noqa: E402
from tests.fakes.env import CLI_BIN  # noqa: E402
from tests.fakes.replies import (  # noqa: E402
    Drop,
    Reply,
    Text,
    Thinking,
    ToolCall,
    anthropic_rate_limited,
    auth_error,
    codex_usage_limit,
    openai_rate_limited,
    reply_to_dict,
    server_error,
)

FIXTURES = REPO_ROOT / "tests" / "fixtures"
_PACKAGES = {"claude": "@anthropic-ai/claude-code", "codex": "@openai/codex", "opencode": "opencode-ai"}
# the messages the real APIs send (claude's text depends on it: "invalid x-api-key" becomes
# "Invalid API key · Fix external API key", anything else "Failed to authenticate. API Error: 401 ...")
ANTHROPIC_BAD_KEY = "invalid x-api-key"
OPENAI_BAD_KEY = "Incorrect API key provided: sk-***. You can find your API key at https://example.invalid."
UNKNOWN_SESSION = {
    "claude": "00000000-0000-4000-8000-000000000000",
    "codex": "00000000-0000-7000-8000-000000000000",
    "opencode": "ses_unknown",
}


def _reset_epoch() -> int:
    """A reset time 2-3 h ahead on a whole hour, so the rendered clock time is easy to read."""
    return (int(time.time()) // 3600 + 3) * 3600


@dataclass
class Scenario:
    name: str
    replies: Sequence[Reply] = ()
    default: Reply | None = None  # answer for every request once `replies` are used up
    prompt: str = "Say hello."
    args: Sequence[str] = ()
    env_kw: dict[str, Any] = field(default_factory=dict)
    expect_rc: int = 0
    resume_of: str | None = None  # resume the session printed by this earlier scenario (same root)
    resume_id: str | None = None  # resume this (unknown) id
    root_name: str | None = None  # share a working root with another scenario
    params: dict[str, Any] = field(default_factory=dict)


def _common(provider: str) -> list[Scenario]:
    return [
        Scenario("text", [Text("Hello from the fake model.")]),
        Scenario("tool", [ToolCall("echo hi", description="Print hi")], prompt="Run echo hi."),
        Scenario("multiturn_1", [], prompt="First message: remember ALPHA.", root_name="multiturn"),
        Scenario(
            "multiturn_2",
            [],
            prompt="Second message: what did I say?",
            resume_of="multiturn_1",
            root_name="multiturn",
        ),
        Scenario("resume_unknown", [], expect_rc=1, resume_id=UNKNOWN_SESSION[provider]),
    ]


def _claude() -> list[Scenario]:
    reset = _reset_epoch()
    return [
        *_common("claude"),
        Scenario("thinking", [Thinking("The user wants a greeting. Keep it short.", "Hello after thinking.")]),
        Scenario(
            "rate_limited",
            [anthropic_rate_limited(reset, claim="five_hour")],
            env_kw={"oauth": True},
            expect_rc=1,
            params={"reset_epoch": reset, "claim": "five_hour", "auth": "oauth"},
        ),
        Scenario(
            "rate_limited_api_key",
            [anthropic_rate_limited(reset, claim="five_hour")],
            expect_rc=1,
            params={"reset_epoch": reset, "auth": "api_key"},
        ),
        Scenario("auth_error", [auth_error(ANTHROPIC_BAD_KEY)], expect_rc=1),
        Scenario("server_error", [server_error()], expect_rc=1),
        # claude falls back to a non-streaming request after a broken stream and succeeds
        Scenario("midstream_drop", [Drop("partial answer"), Text("Recovered after the drop.")]),
        # ...and when the fallback request breaks too, the turn fails (ECONNRESET, status null)
        Scenario("midstream_drop_fatal", [Drop("partial answer"), Drop("partial again")], expect_rc=1),
    ]


def _codex() -> list[Scenario]:
    reset = _reset_epoch()
    return [
        *_common("codex"),
        Scenario("thinking", [Thinking("**Planning**\n\nThe user wants a greeting.", "Hello after reasoning.")]),
        Scenario(
            "rate_limited",
            [codex_usage_limit(reset, plan_type="plus")],
            expect_rc=1,
            params={"resets_at": reset, "plan_type": "plus"},
        ),
        Scenario("rate_limited_429", [openai_rate_limited(1)], expect_rc=1),
        Scenario("auth_error", [auth_error(OPENAI_BAD_KEY)], expect_rc=1),
        Scenario("server_error", [server_error()], expect_rc=1),
        Scenario("tool_failed", [ToolCall("echo oops >&2; exit 3", description="Fail")], prompt="Run it."),
        # an unknown model slug adds a non-fatal warning item of type "error"
        Scenario("warning", [Text("Hello despite the warning.")], args=["-m", "fake-model"]),
        Scenario("midstream_drop", [Drop("partial answer")], expect_rc=1),
    ]


def _opencode() -> list[Scenario]:
    return [
        *_common("opencode"),
        Scenario(
            "thinking",
            [Thinking("The user wants a greeting. Keep it short.", "Hello after thinking.")],
            args=["-m", "fake/reasoning", "--thinking"],
        ),
        # opencode retries 5 times and honours retry-after-ms: 6 requests in well under a second
        Scenario("rate_limited", default=openai_rate_limited(0.01), expect_rc=1),
        Scenario("auth_error", [auth_error(OPENAI_BAD_KEY)], expect_rc=1),
        Scenario("server_error", default=server_error(retry_after_ms=10), expect_rc=1),
        Scenario(
            "permission_rejected",
            [ToolCall("cat /etc/hostname", description="Read hostname")],
            prompt="Show /etc/hostname.",
        ),
        # one silent retry (~2 s backoff), then success; the partial text never shows up
        Scenario("midstream_drop", [Drop("partial answer"), Text("Recovered after the drop.")]),
    ]


SCENARIOS: dict[str, Callable[[], list[Scenario]]] = {"claude": _claude, "codex": _codex, "opencode": _opencode}


def cli_version(provider: str) -> str:
    package = CLI_BIN.parent / _PACKAGES[provider] / "package.json"
    return str(json.loads(package.read_text())["version"])


def _request_summary(fake: Any) -> list[dict[str, Any]]:
    out = []
    for r in fake.requests:
        entry: dict[str, Any] = {"method": r.method, "path": r.path, "kind": r.kind, "reply": r.reply}
        if r.body is not None and r.kind == "model":
            entry["messages"] = fake.message_count(r.body)
            entry["last_user_text"] = fake.last_user_text(r.body)[:200]
        out.append(entry)
    return out


def record(provider: str, scenario: Scenario, workdir: Path, sessions: dict[str, str], out_dir: Path) -> str:
    spec = SPECS[provider]
    root = workdir / provider / (scenario.root_name or scenario.name)
    if scenario.resume_of is None and root.exists():
        shutil.rmtree(root)
    args = list(scenario.args)
    if scenario.resume_of is not None:
        args += spec.resume_args(sessions[scenario.resume_of])
    if scenario.resume_id is not None:
        args += spec.resume_args(scenario.resume_id)
    with spec.fake_cls() as fake:
        fake.enqueue(*scenario.replies)
        fake.default = scenario.default
        run: CliRun = run_cli(provider, fake, root, scenario.prompt, args, **scenario.env_kw)
        time.sleep(0.3)  # let late background requests (telemetry, CONNECTs) reach the log
        requests = _request_summary(fake)
        leaks = [f"{r.method} {r.path}" for r in fake.non_loopback_attempts()]
    session = spec.session_id(run.stdout)
    if session:
        sessions[scenario.name] = session
    meta = {
        "provider": provider,
        "scenario": scenario.name,
        "cli_version": cli_version(provider),
        "argv": [provider, *run.argv[1:]],
        "cwd": str(root / "work"),
        "prompt": scenario.prompt,
        "exit_code": run.returncode,
        "stderr": run.stderr.decode("utf-8", "replace"),
        "duration_s": round(run.duration_s, 2),
        "session_id": session,
        "replies": [reply_to_dict(r) for r in scenario.replies],
        "default_reply": reply_to_dict(scenario.default) if scenario.default else None,
        "params": scenario.params,
        "requests": requests,
        "non_loopback_attempts": leaks,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{scenario.name}.jsonl").write_bytes(run.stdout)
    (out_dir / f"{scenario.name}.meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    problems = []
    if run.returncode != scenario.expect_rc:
        problems.append(f"exit {run.returncode}, expected {scenario.expect_rc}")
    if leaks:
        problems.append(f"non-loopback attempts {leaks}")
    status = "ok" if not problems else "PROBLEM: " + "; ".join(problems)
    return f"{provider}/{scenario.name}: rc={run.returncode} {run.duration_s:.1f}s {status}"


def record_provider(provider: str, only: set[str] | None, workdir: Path, fixtures: Path) -> list[str]:
    sessions: dict[str, str] = {}
    lines = []
    scenarios = SCENARIOS[provider]()
    wanted = {s.name for s in scenarios if only is None or s.name in only}
    # a resumed scenario needs the one it resumes
    wanted |= {s.resume_of for s in scenarios if s.name in wanted and s.resume_of is not None}
    for scenario in scenarios:
        if scenario.name in wanted:
            line = record(provider, scenario, workdir, sessions, fixtures / provider)
            print(line, flush=True)
            lines.append(line)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("select", nargs="*", help="provider or provider/scenario (default: all)")
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/caw-fixtures"))
    parser.add_argument("--out", type=Path, default=FIXTURES)
    parser.add_argument("--serial", action="store_true", help="one provider at a time")
    args = parser.parse_args(argv)
    selection: dict[str, set[str] | None] = {}
    for item in args.select or list(SCENARIOS):
        provider, _, name = item.partition("/")
        if provider not in SCENARIOS:
            parser.error(f"unknown provider {provider!r}")
        if not name:
            selection[provider] = None
        elif selection.get(provider, set()) is not None:
            selection.setdefault(provider, set()).add(name)  # type: ignore[union-attr]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1 if args.serial else len(selection)) as pool:
        futures = [pool.submit(record_provider, p, only, args.workdir, args.out) for p, only in selection.items()]
        lines = [line for f in futures for line in f.result()]
    failed = [line for line in lines if "PROBLEM" in line]
    print(f"{len(lines)} fixtures in {time.monotonic() - started:.0f}s; {len(failed)} problem(s)")
    for line in failed:
        print("  " + line)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
