"""``caw run`` parsed without typer, when the command line is plain enough to be sure (issue 18).

In CI ``caw run`` starts once per step, and typer (with its vendored click) costs about 40 ms to import and
to build the command, a share of every step's bill. ``parse_run`` reads the common shapes, which are
``run``, the run options in their long or short spelling (``--opt value``, ``--opt=value``, ``-p value``),
at most one prompt, and ``--``. It answers None for anything else: ``--help``, an unknown or clustered
option, a missing value, a value that starts with ``-``, two prompts. The typer app then parses the line
as before, so help, errors and their exit codes stay typer's. ``tests/unit/test_cli_fastpath.py`` checks
that both parsers give ``execute`` the same arguments, and that the option table matches the typer
command's.

May import: ``caw.cli.args`` (the parsed types), the standard library. Never typer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from caw.cli.args import PromptSource, RunArgs

#: every option of ``caw run``: spelling -> (keyword, kind); kind is "flag", "str" or "path"
RUN_OPTIONS: dict[str, tuple[str, str]] = {
    "--file": ("file", "path"),
    "-f": ("file", "path"),
    "--provider": ("provider", "str"),
    "-p": ("provider", "str"),
    "--model": ("model", "str"),
    "-m": ("model", "str"),
    "--effort": ("effort", "str"),
    "--tools": ("tools", "str"),
    "--system-prompt": ("system_prompt", "str"),
    "--cwd": ("cwd", "path"),
    "--data-dir": ("data_dir", "path"),
    "--resume": ("resume", "str"),
    "--max-wait": ("max_wait", "str"),
    "--no-wait": ("no_wait", "flag"),
    "--timeout": ("timeout", "str"),
    "--idle-timeout": ("idle_timeout", "str"),
    "--first-output-timeout": ("first_output_timeout", "str"),
    "--save": ("save", "path"),
    "--html": ("html", "path"),
    "--schema": ("schema", "path"),
    "--max-cost": ("max_cost", "str"),
    "--max-tokens": ("max_tokens", "str"),
    "--max-duration": ("max_duration", "str"),
    "--json": ("json", "flag"),
    "--jsonl": ("jsonl", "flag"),
    "--quiet": ("quiet", "flag"),
    "-q": ("quiet", "flag"),
    "--debug": ("debug", "flag"),
}


def parse_run(argv: Sequence[str]) -> tuple[RunArgs, PromptSource, str | None] | None:
    """``caw run``'s arguments from ``argv`` (without the program name), or None to let typer parse.

    >>> args, prompt, resume = parse_run(["run", "--provider", "codex", "-q", "Say hi"])
    >>> args.provider, args.quiet, prompt.text, resume
    ('codex', True, 'Say hi', None)
    >>> parse_run(["run", "--help"]) is None
    True
    """
    if not argv or argv[0] != "run":
        return None
    values: dict[str, object] = {}
    prompts: list[str] = []
    rest = list(argv[1:])
    i = 0
    while i < len(rest):
        token = rest[i]
        i += 1
        if token == "--":
            prompts.extend(rest[i:])
            break
        if not token.startswith("-") or token == "-":
            prompts.append(token)
            continue
        name, eq, inline = token.partition("=")
        spec = RUN_OPTIONS.get(name)
        if spec is None or (eq and not name.startswith("--")):
            return None  # --help, an unknown option, -pclaude, -p=claude: typer's parser and messages
        key, kind = spec
        if kind == "flag":
            if eq:
                return None
            values[key] = True
            continue
        if eq:
            value = inline
        elif i < len(rest):
            value = rest[i]
            i += 1
        else:
            return None  # a missing value: typer says so
        if not value or (value.startswith("-") and value != "-"):
            return None
        values[key] = Path(value) if kind == "path" else value
    if len(prompts) > 1:
        return None
    file = values.pop("file", None)
    resume = values.pop("resume", None)
    args = RunArgs(**values)  # type: ignore[arg-type]
    prompt = PromptSource(prompts[0] if prompts else None, file)  # type: ignore[arg-type]
    return args, prompt, resume  # type: ignore[return-value]
