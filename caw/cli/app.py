"""The typer app: run, resume, sessions, doctor, traj show/html, view, schema, chat. Thin commands over ``runner``."""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn, Optional, get_type_hints

import typer

from caw.cli.args import PromptSource, RunArgs, default_data_dir, parse_effort, parse_tools
from caw.cli.exit_codes import ExitCode, UsageProblem, failure_for, install_hint, login_hint
from caw.cli.runner import CliContext, execute, guard
from caw.cli.sessions_io import session_app, shared_state_line, shared_state_report
from caw.models import Trajectory

if TYPE_CHECKING:
    from caw.viewer.source import Source


# ---- the typer app ------------------------------------------------------------------------------------
app = typer.Typer(
    name="caw",
    help="One dependable command over the coding-agent CLIs you already have: claude, codex, opencode.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
traj_app = typer.Typer(help="Saved trajectories.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(traj_app, name="traj")
app.add_typer(session_app, name="session")  # export / import one session as a file (issue 19)

PromptArg = Annotated[
    Optional[str],
    typer.Argument(help="The prompt; `-` reads stdin. A prompt starting with `-` goes after `--`.", show_default=False),
]
FileOpt = Annotated[Optional[Path], typer.Option("--file", "-f", help="Read the prompt from this file (`-`: stdin).")]
ProviderOpt = Annotated[
    Optional[str],
    typer.Option("--provider", "-p", help="Provider or fallback order, e.g. claude,codex,opencode [env CAW_PROVIDER]."),
]
ModelOpt = Annotated[
    Optional[str], typer.Option("--model", "-m", help="Model (for the first provider) [env CAW_MODEL].")
]
EffortOpt = Annotated[
    Optional[str],
    typer.Option("--effort", help="Reasoning effort: none, minimal, low, medium, high, xhigh, max [env CAW_EFFORT]."),
]
ToolsOpt = Annotated[
    Optional[str],
    typer.Option(
        "--tools",
        help="Tool groups, a comma list of reader, writer, exec, web, parallel, interaction, all, "
        "no_interaction, none; -name subtracts (all,-web).",
    ),
]
SystemOpt = Annotated[Optional[str], typer.Option("--system-prompt", help="System prompt for the agent.")]
CwdOpt = Annotated[Optional[Path], typer.Option("--cwd", help="Working directory of the agent (default: here).")]
DataDirOpt = Annotated[
    Optional[Path], typer.Option("--data-dir", help="Where sessions are kept [env CAW_DATA_DIR, else caw's data dir].")
]
MaxWaitOpt = Annotated[
    Optional[str],
    typer.Option("--max-wait", help="Wait up to this long for a usage limit (6h, 90m) [env CAW_MAX_WAIT]."),
]
NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="Never wait for a usage limit: exit 75 at once.")]
TimeoutOpt = Annotated[Optional[str], typer.Option("--timeout", help="Give up on a turn after this long (30s, 10m).")]
IdleOpt = Annotated[Optional[str], typer.Option("--idle-timeout", help="Give up when the CLI is silent this long.")]
FirstOutputOpt = Annotated[
    Optional[str], typer.Option("--first-output-timeout", help="Give up when the model has not answered this long.")
]
SaveOpt = Annotated[Optional[Path], typer.Option("--save", help="Also write the trajectory JSON to this file.")]
HtmlOpt = Annotated[
    Optional[Path], typer.Option("--html", help="Also write a self-contained HTML report to this file.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the final trajectory as JSON.")]
SchemaOpt = Annotated[
    Optional[Path],
    typer.Option("--schema", help="A JSON schema file the answer must match: prints the JSON (exit 5 if invalid)."),
]
MaxCostOpt = Annotated[
    Optional[str], typer.Option("--max-cost", help="Stop when the run has cost this many USD (exit 6).")
]
MaxTokensOpt = Annotated[Optional[str], typer.Option("--max-tokens", help="Stop at this many tokens (exit 6).")]
MaxDurationOpt = Annotated[
    Optional[str], typer.Option("--max-duration", help="Stop when the run has taken this long (10m; exit 6).")
]
JsonlOpt = Annotated[bool, typer.Option("--jsonl", help="Print one JSON event per line as they arrive.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the result text.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="On failure also show the traceback and the CLI's stderr.")]


def _version_callback(value: bool) -> None:
    if value:
        from caw.version import __version__

        typer.echo(f"caw {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", help="Show the version and exit.", callback=_version_callback, is_eager=True),
    ] = False,
) -> None:
    """caw: run coding agents from scripts and CI with one exit-code contract (see docs/ci.md)."""


#: the options run and resume share: (parameter, annotation name in this module, default). Declared once
#: and added to both commands' signatures, so typer shows the same options, help and defaults for both.
_RUN_OPTIONS: tuple[tuple[str, str, object], ...] = (
    ("provider", "ProviderOpt", None),
    ("model", "ModelOpt", None),
    ("effort", "EffortOpt", None),
    ("tools", "ToolsOpt", None),
    ("system_prompt", "SystemOpt", None),
    ("data_dir", "DataDirOpt", None),
    ("max_wait", "MaxWaitOpt", None),
    ("no_wait", "NoWaitOpt", False),
    ("timeout", "TimeoutOpt", None),
    ("idle_timeout", "IdleOpt", None),
    ("first_output_timeout", "FirstOutputOpt", None),
    ("save", "SaveOpt", None),
    ("html", "HtmlOpt", None),
    ("json_out", "JsonOpt", False),
    ("schema", "SchemaOpt", None),
    ("max_cost", "MaxCostOpt", None),
    ("max_tokens", "MaxTokensOpt", None),
    ("max_duration", "MaxDurationOpt", None),
    ("jsonl", "JsonlOpt", False),
    ("quiet", "QuietOpt", False),
    ("debug", "DebugOpt", False),
)


def _with_run_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` (which takes ``**options``) the shared run options, as typer reads them: its
    signature and its (string) annotations, resolved in this module."""
    signature = inspect.signature(command)
    params = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    command.__annotations__.pop("options", None)
    for name, annotation, default in _RUN_OPTIONS:
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default))
        command.__annotations__[name] = annotation
    hints = get_type_hints(command, include_extras=True)  # the string annotations, resolved here
    params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in params]
    setattr(command, "__signature__", signature.replace(parameters=params))  # noqa: B010 - typer reads it
    return command


def _run_args(cwd: Path | None, options: dict[str, Any]) -> RunArgs:
    json_out = options.pop("json_out", False)
    return RunArgs(cwd=cwd, json=json_out, **options)


@app.command()
@_with_run_options
def run(
    ctx: typer.Context,
    prompt: PromptArg = None,
    file: FileOpt = None,
    cwd: CwdOpt = None,
    resume: Annotated[Optional[str], typer.Option("--resume", help="Continue this conversation (a handle).")] = None,
    **options: Any,
) -> None:
    """Send one prompt to the first provider that can answer.

    Example: caw run --tools reader,writer,exec "Fix the failing test" (the CLIs' defaults refuse writes).
    """
    raise typer.Exit(execute(_run_args(cwd, options), PromptSource(prompt, file), resume, CliContext.of(ctx)))


@app.command("resume")
@_with_run_options
def resume_cmd(
    ctx: typer.Context,
    handle: Annotated[
        Optional[str],
        typer.Argument(help="A resume handle (or a session id from `caw sessions`); with --last, the prompt."),
    ] = None,
    prompt: PromptArg = None,
    last: Annotated[
        bool, typer.Option("--last", help="Continue the newest session run in this directory (no HANDLE).")
    ] = False,
    file: FileOpt = None,
    **options: Any,
) -> None:
    """Continue a conversation. Without a prompt, re-sends the message a usage limit left unanswered."""
    if last:
        if handle is not None and prompt is not None:
            _usage_exit(UsageProblem("--last takes no HANDLE", "pass only the prompt, or drop --last"))
        prompt, handle = handle, None  # the one positional argument is the prompt
        try:
            handle = newest_session_here(options.get("data_dir") or default_data_dir(), Path.cwd())
        except UsageProblem as exc:
            _usage_exit(exc)
    elif handle is None:
        _usage_exit(UsageProblem("no HANDLE given", "pass a resume handle or a session id, or --last"))
    args = _run_args(None, options)
    raise typer.Exit(execute(args, PromptSource(prompt, file), handle, CliContext.of(ctx)))


def newest_session_here(data_dir: Path, cwd: Path) -> str:
    """``caw resume --last``: the id of the newest session in ``data_dir`` whose agent ran in ``cwd``."""
    from caw.state.store import SessionStore, list_sessions

    here = str(cwd.resolve())
    store = SessionStore(data_dir)
    for info in list_sessions(data_dir):  # newest first
        if info.resume_handle and store.load(info.session_id).cwd == here:
            return info.session_id
    raise UsageProblem(
        f"no session in {data_dir} was run in {here}", "`caw sessions` lists them; pass a handle or a session id"
    )


def _usage_exit(problem: UsageProblem) -> NoReturn:
    sys.stderr.write(f"caw: error: {failure_for(problem).line}\n")
    raise typer.Exit(int(ExitCode.USAGE))


@app.command()
def sessions(
    data_dir: DataDirOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the sessions as a JSON list.")] = False,
    debug: DebugOpt = False,
) -> None:
    """List the sessions of a data dir, newest first (id, provider, created, first prompt, handle)."""

    def body() -> int:
        from rich.console import Console

        from caw.cli.reports import render_sessions, session_json
        from caw.state.store import list_sessions

        infos = list_sessions(data_dir or default_data_dir())
        if json_out:
            typer.echo(json.dumps([session_json(i) for i in infos], ensure_ascii=False, indent=2))
        else:
            render_sessions(Console(highlight=False, soft_wrap=True), infos)
        return 0

    raise typer.Exit(guard(debug, body))


@app.command()
def doctor(
    live: Annotated[bool, typer.Option("--live", help="Also send one minimal request per provider.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    provider: ProviderOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Which providers are installed, logged in, cooling down. Exit 0 if one in the order can answer, else 3."""

    def body() -> int:
        from caw.agent import live_probe
        from caw.cli.reports import can_answer_line, render_doctor
        from caw.providers.health import check_all, check_health
        from caw.providers.order import resolve_order

        order = resolve_order(provider)
        # the free check for everyone; --live probes the order's providers in turn and stops at the first
        # that answers (a provider that hangs costs its probe timeout once, not once per provider)
        found = check_all(order)
        if live:
            for index, health in enumerate(found):
                if health.provider in order and health.installed:
                    found[index] = check_health(health.provider, live=True, probe=live_probe)
                    if found[index].live == "answers":
                        break
        rows = [{**h.model_dump(mode="json"), "status": h.status} for h in found]
        usable_names = [str(r["provider"]) for r in rows if r.get("ok") and r.get("provider") in order]
        usable = bool(usable_names)
        shared = shared_state_report()  # CAW_STATE_URL: the fleet's ledger (issue 19)
        if json_out:
            doc = {"order": list(order), "usable": usable, "can_answer": usable_names, "providers": rows}
            if shared is not None:
                doc["shared_state"] = shared
            typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        else:
            from rich.console import Console

            render_doctor(Console(highlight=False), rows, order)
            typer.echo(can_answer_line(rows, order))
            if shared is not None:
                typer.echo(shared_state_line(shared))
        if usable:
            return 0
        installed = [h for h in found if h.provider in order and h.installed]
        if installed:
            fix = login_hint(installed[0].provider)
        else:
            from caw.providers import get_provider

            wrong = get_provider(order[0]).not_installed().reason  # a CAW_<NAME>_BIN naming no executable
            fix = f"{wrong}: fix or unset it" if wrong else install_hint(order[0])
        sys.stderr.write(f"caw: error: no provider in the order ({', '.join(order)}) can answer — {fix}\n")
        return int(ExitCode.NO_PROVIDER)

    raise typer.Exit(guard(debug, body))


@traj_app.command("show")
def traj_show(
    file: Annotated[
        Path,
        typer.Argument(help="A trajectory JSON (run --json / --save), a session dir, a session id or a handle."),
    ],
    step: Annotated[Optional[int], typer.Option("--step", "-s", help="Print step N in full (see docs/cli.md).")] = None,
    full: Annotated[bool, typer.Option("--full", help="Do not fold tool outputs and long texts.")] = False,
    data_dir: DataDirOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Show a saved trajectory: header, turns, tool calls (outputs folded), subagents. Paged on a terminal."""

    def body() -> int:
        from caw.cli.reports import render_step, steps

        loaded = load_source_arg(file, data_dir)
        traj = loaded.trajectory
        if step is None:
            _show_paged(loaded, str(file), full)
            return 0
        all_steps = steps(traj)
        if not 1 <= step <= len(all_steps):
            raise UsageProblem(
                f"--step {step}: the trajectory has {len(all_steps)} steps", f"pick a step from 1 to {len(all_steps)}"
            )
        render_step(sys.stdout, all_steps[step - 1])
        return 0

    raise typer.Exit(guard(debug, body))


def _show_paged(loaded: Source, source: str, full: bool) -> None:
    """``caw traj show`` on a terminal: through the pager ($PAGER, else less) when longer than the screen."""
    import io
    import os

    from rich.console import Console

    from caw.cli.reports import render_trajectory

    if not sys.stdout.isatty():
        console = Console(highlight=False, soft_wrap=True)
        render_trajectory(console, loaded.trajectory, source=source, full=full, loaded=loaded)
        return
    screen = Console(highlight=False)
    buffer = io.StringIO()
    colours: Literal["truecolor", "standard"] = "truecolor" if screen.color_system == "truecolor" else "standard"
    capture = Console(
        file=buffer, highlight=False, soft_wrap=True, force_terminal=True, color_system=colours, width=screen.width
    )
    render_trajectory(capture, loaded.trajectory, source=source, full=full, loaded=loaded)
    text = buffer.getvalue()
    if text.count("\n") < screen.height:
        sys.stdout.write(text)
        return
    import pydoc

    os.environ.setdefault("LESS", "-FRX")  # keep the colours; leave short output on the screen
    pydoc.pager(text)


@traj_app.command("html")
def traj_html(
    file: Annotated[Path, typer.Argument(help="A trajectory JSON, a session dir, a session id or a resume handle.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Write the HTML report to this file (`-`: stdout).")],
    data_dir: DataDirOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Write a self-contained HTML report of a trajectory (no network; opens from file:// or a CI artifact)."""

    def body() -> int:
        from caw.viewer.html import render_report, write_report

        loaded = load_source_arg(file, data_dir)
        if str(output) == "-":
            sys.stdout.write(render_report(loaded))
            return 0
        if output.is_dir():
            raise UsageProblem(f"-o {output} is a directory", "pass a file path for the report, e.g. report.html")
        size = write_report(loaded, output)
        sys.stderr.write(f"caw: wrote {output} ({size / 1024:,.0f} KiB, {len(loaded.trajectory.turns)} turn(s))\n")
        return 0

    raise typer.Exit(guard(debug, body))


@app.command()
def view(
    data_dir: Annotated[
        Optional[Path], typer.Argument(help="The data dir to serve [env CAW_DATA_DIR, else caw's data dir].")
    ] = None,
    port: Annotated[int, typer.Option("--port", help="Listen on this port of 127.0.0.1 (default: a free one).")] = 0,
    open_browser: Annotated[bool, typer.Option("--open", help="Also open the page in the browser.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Browse the sessions of a data dir in the browser (read-only, 127.0.0.1 only; Ctrl-C stops it)."""

    def body() -> int:
        from caw.viewer.server import ViewerServer

        root = data_dir or default_data_dir()
        if not root.is_dir():
            raise UsageProblem(f"{root} is not a directory", "pass a caw data dir (`caw sessions` lists its sessions)")
        if not 0 <= port <= 65535:
            raise UsageProblem(f"--port {port} is not a port", "pass 1-65535, or leave it out for a free one")
        try:
            server = ViewerServer(root, port=port)
        except OSError as exc:
            raise UsageProblem(f"cannot listen on 127.0.0.1:{port} ({exc.strerror})", "pick another --port") from None
        typer.echo(f"caw view: serving {root} at {server.url} (Ctrl-C stops)")
        sys.stdout.flush()
        if open_browser:
            import webbrowser

            webbrowser.open(server.url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        return 0

    raise typer.Exit(guard(debug, body))


def load_source_arg(path: Path, data_dir: Path | None) -> Source:
    """A trajectory from a JSON file, a session dir, or a session id / resume handle in the data dir."""
    from caw.viewer.source import SourceError, load_source

    try:
        return load_source(path, data_dir or default_data_dir())
    except SourceError as exc:
        raise UsageProblem(str(exc), exc.hint or "pass a trajectory JSON file or a session dir") from None


def load_trajectory(path: Path) -> Trajectory:
    """A trajectory from a JSON file (``--json`` output, ``--save``, ``trajectory.json``) or a session dir."""
    return load_source_arg(path, None).trajectory


@app.command()
def schema(
    events: Annotated[bool, typer.Option("--events", help="Only the schema of one streamed event.")] = False,
    trajectory: Annotated[bool, typer.Option("--trajectory", help="Only the trajectory schema.")] = False,
) -> None:
    """Print the JSON schema of events (`--jsonl` lines) and/or trajectories (`--json`)."""
    from caw.events import event_json_schema

    doc: dict[str, Any]
    if events and not trajectory:
        doc = event_json_schema()
    elif trajectory and not events:
        doc = Trajectory.model_json_schema(mode="serialization")
    else:
        doc = {"event": event_json_schema(), "trajectory": Trajectory.model_json_schema(mode="serialization")}
    typer.echo(json.dumps(doc, indent=2))


@app.command()
def chat(
    ctx: typer.Context,
    prompt: Annotated[Optional[str], typer.Argument(help="Initial prompt (after `--` if it starts with `-`).")] = None,
    provider: ProviderOpt = None,
    pick: Annotated[bool, typer.Option("--pick", help="Choose the provider from a menu first.")] = False,
    model: ModelOpt = None,
    effort: EffortOpt = None,
    tools: ToolsOpt = None,
    system_prompt: SystemOpt = None,
    cwd: CwdOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Open the provider's own interactive UI with caw's configuration. Exits with the CLI's exit code."""

    def body() -> int:
        from caw.cli import runner

        kwargs: dict[str, Any] = {"provider": provider, "model": model, "reasoning": parse_effort(effort)}
        if system_prompt is not None:
            kwargs["system_prompt"] = system_prompt
        if tools is not None:
            kwargs["tools"] = parse_tools(tools)
        if cwd is not None:
            if not cwd.is_dir():
                raise UsageProblem(f"--cwd {cwd}: no such directory", "pass an existing directory")
            kwargs["cwd"] = str(cwd.resolve())
        agent = runner.make_agent(CliContext.of(ctx), **kwargs)
        result = agent.interactive(prompt or "", select_provider=pick)
        return int(result.exit_code)

    raise typer.Exit(guard(debug, body))


# issue 20: `caw batch` lives in its own module (caw/cli/batch.py)
from caw.cli.batch import batch_command  # noqa: E402

app.command("batch")(batch_command)
