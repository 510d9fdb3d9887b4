#!/usr/bin/env python3
"""caw's performance targets, measured (never asserted in timed tests).

Prints:
1. for each provider: wall time of a one-turn run through caw's Python API ÷ the raw CLI running the same
   command (caw's argv, prompt on stdin, stdout to a pipe), both against the loopback fake model server
   (median of the per-pair ratios of N alternating pairs; target ≤ 1.05),
   and the same for the `caw run` command (includes Python's start-up, reported for information);
2. for each provider: `caw run --provider P --quiet PROMPT` ÷ the raw CLI one-shot as a user types it
   (`claude -p PROMPT --output-format stream-json --verbose`, `codex exec --json PROMPT`, `opencode run
   --format json PROMPT`), whole processes, both against the loopback fake (median of the per-pair ratios
   of N alternating pairs; target ≤ 1.15 on claude and codex);
3. the import time of caw, caw.cli and caw.errors (`python -X importtime`, bytecode cached, the median of
   7 fresh interpreters; target for caw ≤ 60 ms);
4. parse throughput: events/s through a real pty from a fake CLI streaming 100,000 events (≥ 50,000);
5. peak RSS of a turn with 50 MB of tool output, as a multiple of the output kept (≤ 3×);
6. for each provider with a warm mode (issue 14): a 5-turn warm session ÷ a 5-turn cold session (median of
   the per-pair ratios of N alternating pairs; goal ≤ 0.35), the median latency of turns 2-5 warm against a
   cold turn, and a one-turn warm session ÷ a one-turn cold one (what decides ``completion()``);
7. batch throughput (issue 20): a 24-task ``caw.batch`` against the fake at concurrency 1, 2 and 4, as tasks
   per minute and as a ratio to concurrency 1 (``--batch-provider``, default codex; ``--batch-tasks``).

    .venv/bin/python scripts/bench.py                 # everything
    .venv/bin/python scripts/bench.py --pairs 7 --providers claude,codex
    .venv/bin/python scripts/bench.py --pairs 9 --providers claude,codex --skip ratio,throughput,rss  # start-up
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.env import CODEX_OFFLINE_ARGS, claude_env, codex_env, full_env, opencode_env  # noqa: E402
from tests.fakes.replies import Text  # noqa: E402

PROMPT = "Say hello in five words."


def _provider_setup(name: str, url: str, root: Path) -> tuple[dict[str, str], dict[str, object]]:
    """(env, Agent kwargs) for one provider on its fake."""
    if name == "claude":
        return full_env(claude_env(url, root)), {}
    if name == "codex":
        return full_env(codex_env(url, root)), {}
    return full_env(opencode_env(url, root)), {"model": "fake/text"}


def _fake_for(name: str):  # type: ignore[no-untyped-def]
    if name == "claude":
        from tests.fakes.anthropic import AnthropicFake

        return AnthropicFake()
    if name == "codex":
        from tests.fakes.openai_responses import ResponsesFake

        return ResponsesFake()
    from tests.fakes.openai_chat import ChatFake

    return ChatFake()


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_ratio(name: str, pairs: int) -> None:
    import caw
    from caw.providers import get_provider

    try:
        provider = get_provider(name)
    except caw.UnknownProviderError:
        print(f"{name:9} not available in this build")
        return
    with tempfile.TemporaryDirectory(prefix=f"caw-bench-{name}-") as tmp, _fake_for(name) as server:
        root = Path(tmp)
        work = root / "work"
        work.mkdir()
        env, agent_kw = _provider_setup(name, server.url, root)
        old_env = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        os.environ["CAW_DATA_DIR"] = str(root / "caw-data")
        try:
            binary = provider.locate(env)
            if binary is None:
                print(f"{name:9} not installed")
                return
            # the raw CLI runs the very command caw builds (same flags, prompt on stdin), so the ratio is
            # caw's own cost: the pty, parsing, events, the process-tree sweep
            from caw.providers.base import RunConfig, TurnRequest

            config = RunConfig(model=agent_kw.get("model"), cwd=str(work))  # type: ignore[arg-type]
            agent = caw.Agent(provider=name, cwd=str(work), auto_wait=False, **agent_kw)  # type: ignore[arg-type]

            def run_raw() -> None:
                server.enqueue(Text("hello there from the fake"))
                inv = provider.build(binary, config, TurnRequest(prompt=PROMPT, new_key=str(uuid.uuid4())))
                out = subprocess.run(inv.argv, input=inv.stdin, capture_output=True, cwd=work, env={**env, **inv.env})
                inv.cleanup()
                if out.returncode != 0:
                    raise RuntimeError(f"raw {name} failed: {out.stderr[-300:]!r}")

            def run_caw() -> None:
                server.enqueue(Text("hello there from the fake"))
                agent.completion(PROMPT)

            def run_cli() -> None:
                server.enqueue(Text("hello there from the fake"))
                out = subprocess.run(
                    [sys.executable, "-m", "caw", "run", "--provider", name, "--quiet", "-"],
                    input=PROMPT.encode(),
                    capture_output=True,
                    cwd=work,
                    env={**env, "CAW_DATA_DIR": str(root / "d")},
                )
                if out.returncode != 0:
                    raise RuntimeError(f"caw run failed: {out.stderr[-300:]!r}")

            run_raw()  # warm the CLI's caches and the page cache
            run_caw()
            raws: list[float] = []
            caws: list[float] = []
            clis: list[float] = []
            for i in range(pairs):
                order = [(raws, run_raw), (caws, run_caw)] if i % 2 == 0 else [(caws, run_caw), (raws, run_raw)]
                for bucket, fn in order:
                    bucket.append(_timed(fn))
            cli_ok = True
            for _ in range(max(3, pairs // 2)):
                try:
                    clis.append(_timed(run_cli))
                except RuntimeError as exc:
                    cli_ok = False
                    print(f"  (caw run not measured: {exc})")
                    break
            r, c = statistics.median(raws), statistics.median(caws)
            # the median of per-pair ratios: each pair ran back to back, so slow drifts of the machine cancel
            ratio = statistics.median([cw / rw for cw, rw in zip(caws, raws, strict=True)])
            verdict = "ok" if ratio <= 1.05 else "OVER TARGET"
            print(f"{name:9} raw {r:6.3f}s  caw API {c:6.3f}s  ratio {ratio:5.3f}  (target <= 1.05: {verdict})")
            if cli_ok and clis:
                cm = statistics.median(clis)
                print(f"{'':9} `caw run` {cm:6.3f}s  ratio {cm / r:5.3f}  (includes Python start-up and imports)")
        finally:
            os.environ.clear()
            os.environ.update(old_env)


def _raw_as_typed(name: str, binary: str) -> list[str]:
    """The one-shot a user types for ``name`` (the issue's baseline), with the prompt as an argument."""
    if name == "claude":
        return [binary, "-p", PROMPT, "--output-format", "stream-json", "--verbose"]
    if name == "codex":
        return [binary, "exec", "--json", *CODEX_OFFLINE_ARGS, PROMPT]
    return [binary, "run", "--format", "json", "--model", "fake/text", PROMPT]


def bench_startup(name: str, pairs: int) -> None:
    """``caw run --quiet PROMPT`` ÷ the raw CLI as a user types it, whole processes, alternating pairs."""
    caw_bin = Path(sys.executable).with_name("caw")
    with tempfile.TemporaryDirectory(prefix=f"caw-bench-run-{name}-") as tmp, _fake_for(name) as server:
        root = Path(tmp)
        work = root / "work"
        work.mkdir()
        env, agent_kw = _provider_setup(name, server.url, root)
        env = {**env, "CAW_DATA_DIR": str(root / "caw-data")}
        binary = shutil.which(name, path=env.get("PATH"))
        if binary is None:
            print(f"{name:9} not installed")
            return
        model = ["--model", str(agent_kw["model"])] if "model" in agent_kw else []
        cli = [str(caw_bin), "run", "--provider", name, *model, "--quiet", PROMPT]
        raw = _raw_as_typed(name, binary)

        def run(argv: list[str]) -> Callable[[], None]:
            def go() -> None:
                server.enqueue(Text("hello there from the fake"))
                out = subprocess.run(argv, capture_output=True, cwd=work, env=env, stdin=subprocess.DEVNULL)
                if out.returncode != 0:
                    raise RuntimeError(f"{argv[0]} failed ({out.returncode}): {out.stderr[-300:]!r}")

            return go

        run_raw, run_cli = run(raw), run(cli)
        run_raw()  # warm the CLI's caches, the page cache and caw's bytecode
        run_cli()
        raws: list[float] = []
        clis: list[float] = []
        for i in range(pairs):
            order = [(raws, run_raw), (clis, run_cli)] if i % 2 == 0 else [(clis, run_cli), (raws, run_raw)]
            for bucket, fn in order:
                bucket.append(_timed(fn))
        r, c = statistics.median(raws), statistics.median(clis)
        ratio = statistics.median([cw / rw for cw, rw in zip(clis, raws, strict=True)])
        verdict = "ok" if ratio <= 1.15 else "OVER TARGET"
        print(
            f"{name:9} raw as typed {r:6.3f}s  `caw run --quiet` {c:6.3f}s  ratio {ratio:5.3f}  "
            f"(+{(c - r) * 1000:4.0f} ms; target <= 1.15: {verdict})"
        )


def bench_imports(repeats: int) -> None:
    """The import time of caw, caw.cli and caw.errors: the median of ``repeats`` fresh interpreters."""
    for module in ("caw", "caw.cli", "caw.errors"):
        _whole_import_ms(module)  # bytecode written, page cache warm
        total = statistics.median(_whole_import_ms(module) for _ in range(repeats))
        verdict = "" if module != "caw" else f"  (target <= 60 ms: {'ok' if total <= 60 else 'OVER TARGET'})"
        print(f"import    {module:11} {total:6.1f} ms{verdict}")


def _whole_import_ms(module: str) -> float:
    """The import of ``module`` with its packages: the sum of the top-level entries -X importtime prints."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True, check=True
    )
    total = 0
    seen_site = False
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _self, cumulative, name = line.removeprefix("import time:").split("|")
        if name.startswith(" ") and not name.startswith("  "):  # a top-level entry
            if name.strip() == "site":
                seen_site = True
                continue
            if seen_site:
                total += int(cumulative)
    return total / 1000


_STREAMER = textwrap.dedent(
    """
    import json, sys
    sys.stdin.buffer.read()
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 100000
    out = sys.stdout.buffer
    out.write((json.dumps({"type": "system", "subtype": "init", "session_id": "s"}) + "\\n").encode())
    line = '{"type":"assistant","message":{"id":"m%d","content":[{"type":"text","text":"event %d"}]}}\\n'
    chunk = []
    for i in range(n):
        chunk.append(line % (i, i))
        if len(chunk) == 2000:
            out.write("".join(chunk).encode()); chunk = []
    out.write("".join(chunk).encode())
    out.write(b'{"type":"result","subtype":"success","is_error":false,"result":"done","usage":{}}\\n')
    out.flush()
    """
)


def bench_throughput(n: int) -> None:
    import caw

    with tempfile.TemporaryDirectory(prefix="caw-bench-tp-") as tmp:
        script = Path(tmp) / "streamer.py"
        script.write_text(_STREAMER)
        exe = Path(tmp) / "claude"
        exe.write_text(
            f"#!{sys.executable}\nimport runpy, sys\nsys.argv[1:] = ['{n}']\n"
            f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
        )
        exe.chmod(0o755)
        old = os.environ.get("CAW_CLAUDE_BIN")
        os.environ["CAW_CLAUDE_BIN"] = str(exe)
        try:
            session = caw.Agent(provider="claude", auto_wait=False, cwd=tmp).start_session()
            t0 = time.perf_counter()
            count = sum(1 for _ in session.stream("go"))
            elapsed = time.perf_counter() - t0
            session.end()
        finally:
            if old is None:
                os.environ.pop("CAW_CLAUDE_BIN", None)
            else:
                os.environ["CAW_CLAUDE_BIN"] = old
    rate = count / elapsed
    verdict = "ok" if rate >= 50_000 else "UNDER TARGET"
    print(
        f"throughput {count} events in {elapsed:.2f}s through a real pty: {rate:,.0f} events/s "
        f"(target >= 50,000: {verdict})"
    )


_RSS_DRIVER = textwrap.dedent(
    """
    import json, os, resource, sys
    import caw
    size = int(sys.argv[1])

    def rss_kib():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    base = rss_kib()
    traj = caw.Agent(provider="claude", auto_wait=False).completion("go")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    kept = sum(len(b.output or "") for t in traj.turns for b in t.output if getattr(b, "output", None))
    print(json.dumps({"base_kib": base, "peak_kib": peak, "kept_bytes": kept}))
    """
)

_BIG_TOOL = textwrap.dedent(
    """
    import json, sys
    sys.stdin.buffer.read()
    size = int(sys.argv[1])
    w = sys.stdout.buffer.write
    w(b'{"type":"system","subtype":"init","session_id":"s"}\\n')
    w(b'{"type":"assistant","message":{"id":"m1","content":[{"type":"tool_use","id":"t1","name":"Bash",'
      b'"input":{"command":"cat big"}}]}}\\n')
    head = b'{"type":"user","message":{"role":"user","content":[{"tool_use_id":"t1","type":"tool_result","content":"'
    w(head)
    block = b"0123456789abcdef" * 4096
    left = size
    while left > 0:
        part = block[: min(len(block), left)]
        w(part)
        left -= len(part)
    w(b'","is_error":false}]}}\\n')
    w(b'{"type":"result","subtype":"success","is_error":false,"result":"done","usage":{}}\\n')
    sys.stdout.flush()
    """
)


def bench_rss(size: int) -> None:
    with tempfile.TemporaryDirectory(prefix="caw-bench-rss-") as tmp:
        big = Path(tmp) / "big.py"
        big.write_text(_BIG_TOOL)
        exe = Path(tmp) / "claude"
        exe.write_text(
            f"#!{sys.executable}\nimport runpy, sys\nsys.argv[1:] = ['{size}']\n"
            f"runpy.run_path({str(big)!r}, run_name='__main__')\n"
        )
        exe.chmod(0o755)
        driver = Path(tmp) / "driver.py"
        driver.write_text(_RSS_DRIVER)
        env = {**os.environ, "CAW_CLAUDE_BIN": str(exe), "CAW_DATA_DIR": str(Path(tmp) / "d"), "PYTHONPATH": str(ROOT)}
        out = subprocess.run(
            [sys.executable, str(driver), str(size)], capture_output=True, env=env, cwd=tmp, timeout=300
        )
        if out.returncode != 0:
            print(f"rss       failed: {out.stderr.decode()[-500:]}")
            return
        data = json.loads(out.stdout.decode().strip().splitlines()[-1])
    kept = data["kept_bytes"]
    grew = (data["peak_kib"] - data["base_kib"]) * 1024
    ratio = grew / kept if kept else float("inf")
    verdict = "ok" if ratio <= 3 else "OVER TARGET"
    print(
        f"rss       {kept / 1e6:.0f} MB of tool output kept; peak RSS grew {grew / 1e6:.0f} MB over the "
        f"pre-turn baseline = {ratio:.2f}x the output (target <= 3x: {verdict})"
    )


def _session_turns(agent: object, server: object, turns: int) -> tuple[float, list[float]]:
    """Wall time of a whole ``turns``-turn session (start to end) and each send's latency."""
    t0 = time.perf_counter()
    session = agent.start_session()  # type: ignore[attr-defined]
    lat: list[float] = []
    try:
        for i in range(turns):
            server.enqueue(Text(f"reply {i} from the fake"))  # type: ignore[attr-defined]
            t1 = time.perf_counter()
            session.send(f"{PROMPT} ({i})")
            lat.append(time.perf_counter() - t1)
    finally:
        session.end()
    return time.perf_counter() - t0, lat


def bench_warm(name: str, pairs: int, turns: int = 5) -> None:
    """Section 6: warm sessions against cold ones, on the same fake, alternating."""
    import caw
    from caw.providers import get_provider
    from caw.providers.base import RunConfig

    try:
        provider = get_provider(name)
    except caw.UnknownProviderError:
        print(f"warm      {name:9} not available in this build")
        return
    with tempfile.TemporaryDirectory(prefix=f"caw-bench-warm-{name}-") as tmp, _fake_for(name) as server:
        root = Path(tmp)
        work = root / "work"
        work.mkdir()
        env, agent_kw = _provider_setup(name, server.url, root)
        old_env = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        os.environ["CAW_DATA_DIR"] = str(root / "caw-data")
        try:
            binary = provider.locate(env)
            if binary is None:
                print(f"warm      {name:9} not installed")
                return
            probe = provider.warm_client(binary, RunConfig(cwd=str(work)), env)
            if probe is None:
                print(f"warm      {name:9} skipped: {name} has no warm client (its turns run cold)")
                return
            probe.close(0.0)
            kw = {"cwd": str(work), "auto_wait": False, **agent_kw}
            warm = caw.Agent(provider=name, warm=True, **kw)  # type: ignore[arg-type]
            cold = caw.Agent(provider=name, warm=False, **kw)  # type: ignore[arg-type]
            _session_turns(warm, server, 2)  # first starts (caches, opencode's migration) out of the figures
            _session_turns(cold, server, 1)
            ratios: list[float] = []
            warm_later: list[float] = []
            cold_turns: list[float] = []
            one: list[float] = []
            for i in range(pairs):
                order = [(warm, True), (cold, False)] if i % 2 == 0 else [(cold, False), (warm, True)]
                result: dict[bool, float] = {}
                for agent, is_warm in order:
                    total, lat = _session_turns(agent, server, turns)
                    result[is_warm] = total
                    (warm_later.extend(lat[1:]) if is_warm else cold_turns.extend(lat))
                ratios.append(result[True] / result[False])
                w1, _ = _session_turns(warm, server, 1)
                c1, _ = _session_turns(cold, server, 1)
                one.append(w1 / c1)
            ratio = statistics.median(ratios)
            verdict = "ok" if ratio <= 0.35 else "OVER GOAL"
            later, coldm = statistics.median(warm_later), statistics.median(cold_turns)
            print(
                f"warm      {name:9} {turns}-turn warm session / {turns} cold turns {ratio:5.3f} (goal <= 0.35: "
                f"{verdict}); turns 2-{turns} warm {later * 1000:6.0f} ms vs a cold turn {coldm * 1000:6.0f} ms; "
                f"one turn warm / cold {statistics.median(one):5.2f}"
            )
        finally:
            os.environ.clear()
            os.environ.update(old_env)


def bench_batch(name: str, tasks: int, levels: tuple[int, ...] = (1, 2, 4)) -> None:
    """Section 7: tasks per minute of one ``caw.batch`` of ``tasks`` one-turn tasks at each concurrency."""
    import caw

    with tempfile.TemporaryDirectory(prefix=f"caw-bench-batch-{name}-") as tmp, _fake_for(name) as server:
        root = Path(tmp)
        work = root / "work"
        work.mkdir()
        env, agent_kw = _provider_setup(name, server.url, root)
        old_env = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        os.environ["CAW_DATA_DIR"] = str(root / "caw-data")
        try:
            agent = caw.Agent(provider=name, cwd=str(work), auto_wait=False, **agent_kw)  # type: ignore[arg-type]
            agent.completion(PROMPT)  # first start (caches) out of the figures
            rates: dict[int, float] = {}
            for level in levels:
                prompts = [f"{PROMPT} (task {n}, concurrency {level})" for n in range(tasks)]
                t0 = time.perf_counter()
                results = list(caw.batch(prompts, agent=agent, concurrency=level))
                elapsed = time.perf_counter() - t0
                failed = sum(not r.ok for r in results)
                rates[level] = len(results) / elapsed * 60
                note = f", {failed} failed" if failed else ""
                print(
                    f"batch     {name:9} {tasks} tasks at concurrency {level}: {elapsed:6.1f} s, "
                    f"{rates[level]:6.1f} tasks/min, {rates[level] / rates[levels[0]]:4.2f}x sequential{note}"
                )
        finally:
            os.environ.clear()
            os.environ.update(old_env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=7, help="alternating caw/raw pairs per provider (>= 7)")
    ap.add_argument("--providers", default="claude,codex,opencode")
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--rss-mb", type=int, default=50)
    ap.add_argument("--skip", default="", help="comma list of: ratio,run,imports,throughput,rss,warm,batch")
    ap.add_argument("--batch-provider", default="codex", help="the provider of the batch throughput section")
    ap.add_argument("--batch-tasks", type=int, default=24)
    ap.add_argument("--warm-pairs", type=int, default=5, help="alternating warm/cold session pairs per provider")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if "ratio" not in skip:
        for name in args.providers.split(","):
            bench_ratio(name.strip(), max(7, args.pairs))
    if "run" not in skip:
        for name in args.providers.split(","):
            bench_startup(name.strip(), max(7, args.pairs))
    if "imports" not in skip:
        bench_imports(7)
    if "throughput" not in skip:
        bench_throughput(args.events)
    if "rss" not in skip:
        bench_rss(args.rss_mb * 1_000_000)
    if "warm" not in skip:
        for name in args.providers.split(","):
            bench_warm(name.strip(), max(1, args.warm_pairs))
    if "batch" not in skip:
        bench_batch(args.batch_provider, args.batch_tasks)


if __name__ == "__main__":
    main()
