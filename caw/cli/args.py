"""The options ``caw run`` and ``caw resume`` share, and the prompt source, parsed into ``caw.Agent`` keywords."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from caw.cli.exit_codes import UsageProblem
from caw.cli.views import Mode
from caw.errors import StorageError
from caw.models import REASONING_EFFORTS, ToolGroup
from caw.policy.autowait import Clock, WaitDisplay

if TYPE_CHECKING:
    pass


# ---- shared options of run / resume ------------------------------------------------------------------
@dataclass(frozen=True)
class RunArgs:
    """The options ``caw run`` and ``caw resume`` share, as typed on the command line."""

    provider: str | None = None
    model: str | None = None
    effort: str | None = None
    tools: str | None = None
    system_prompt: str | None = None
    cwd: Path | None = None
    data_dir: Path | None = None
    max_wait: str | None = None
    no_wait: bool = False
    timeout: str | None = None
    idle_timeout: str | None = None
    first_output_timeout: str | None = None
    save: Path | None = None
    #: write the HTML report of the trajectory here after the run (issue 21)
    html: Path | None = None
    json: bool = False
    jsonl: bool = False
    quiet: bool = False
    debug: bool = False
    #: issue 16: a JSON schema file the answer must match, and the run's budgets
    schema: Path | None = None
    max_cost: str | None = None
    max_tokens: str | None = None
    max_duration: str | None = None

    def mode(self) -> Mode:
        if self.jsonl:
            return "jsonl"
        if self.json:
            return "json"
        if self.quiet:
            return "quiet"
        return "live" if _isatty(sys.stdout) else "plain"

    def agent_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``caw.Agent``. Raises UsageProblem for values no provider could take."""
        if sum((self.json, self.jsonl, self.quiet)) > 1:
            raise UsageProblem("--json, --jsonl and --quiet exclude each other", "pick one output mode")
        if self.no_wait and self.max_wait is not None:
            raise UsageProblem("--no-wait and --max-wait exclude each other", "pick one")
        data_dir = self.data_dir or default_data_dir()
        # issue 12: a bad data dir or --save target fails now, in one line, not after the paid turn
        check_writable_arg(self._data_dir_label(data_dir), data_dir)
        if self.save is not None:
            if self.save.is_dir():
                raise UsageProblem(f"--save {self.save} is a directory", "pass a file path for the trajectory JSON")
            check_writable_arg(f"--save {self.save}", self.save.parent, named=self.save)
        if self.html is not None:
            if self.html.is_dir():
                raise UsageProblem(f"--html {self.html} is a directory", "pass a file path for the report")
            check_writable_arg(f"--html {self.html}", self.html.parent, named=self.html)
        kw: dict[str, Any] = {
            "provider": self.provider,
            "model": self.model,
            "reasoning": parse_effort(self.effort),
            "system_prompt": self.system_prompt,
            "data_dir": data_dir,
            "wait_display": rich_countdown,
        }
        if self.tools is not None:
            kw["tools"] = parse_tools(self.tools)
        if self.cwd is not None:
            if not self.cwd.is_dir():
                raise UsageProblem(f"--cwd {self.cwd}: no such directory", "pass an existing directory")
            kw["cwd"] = str(self.cwd.resolve())
        if self.no_wait:
            kw["auto_wait"] = False
        if self.max_wait is not None:
            kw["auto_wait"] = True
            kw["max_wait"] = parse_duration_arg("--max-wait", self.max_wait)
        if self.timeout is not None:
            kw["timeout"] = parse_duration_arg("--timeout", self.timeout)
        if self.idle_timeout is not None:
            kw["idle_timeout"] = parse_duration_arg("--idle-timeout", self.idle_timeout)
        if self.first_output_timeout is not None:
            kw["first_output_timeout"] = parse_duration_arg("--first-output-timeout", self.first_output_timeout)
        if self.max_cost is not None:
            kw["max_cost_usd"] = parse_positive("--max-cost", self.max_cost.lstrip("$"), float)
        if self.max_tokens is not None:
            kw["max_tokens"] = parse_positive("--max-tokens", self.max_tokens.replace("_", ""), int)
        if self.max_duration is not None:
            kw["max_duration"] = parse_duration_arg("--max-duration", self.max_duration)
        return kw

    def output_schema(self) -> dict[str, Any] | None:
        """``--schema FILE``: the JSON schema the answer must match (a usage error if it is not one)."""
        if self.schema is None:
            return None
        import json

        try:
            data = json.loads(self.schema.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageProblem(f"cannot read --schema {self.schema}: {exc}", "pass a readable JSON file") from None
        except ValueError as exc:
            raise UsageProblem(f"--schema {self.schema} is not JSON ({exc})", "pass a JSON schema file") from None
        if not isinstance(data, dict):
            raise UsageProblem(f"--schema {self.schema} is not a JSON schema object", "pass a JSON schema file")
        return data

    def _data_dir_label(self, data_dir: Path) -> str:
        if self.data_dir is not None:
            return f"--data-dir {data_dir}"
        if os.environ.get("CAW_DATA_DIR"):
            return f"CAW_DATA_DIR={data_dir}"
        return f"the data directory {data_dir}"


def check_writable_arg(what: str, directory: Path, *, named: Path | None = None) -> None:
    """UsageProblem (exit 2) unless caw can write files in ``directory`` (created if missing).

    ``what`` names the flag and its value; ``named`` is the path in it, when that is not ``directory``.
    """
    from caw.state.store import check_writable

    try:
        check_writable(directory)
    except StorageError as exc:
        same = exc.path == (named or directory).expanduser()
        detail = exc.strerror if same else f"{exc.path}: {exc.strerror}"
        raise UsageProblem(f"{what} is not writable ({detail})", "pass a directory caw can write to") from None


def rich_countdown(*, clock: Clock, tz: tzinfo | None = None) -> WaitDisplay:
    """The rich countdown for limit waits on a terminal (rich is imported only when one is shown)."""
    from caw.cli.countdown import Countdown

    return Countdown(clock=clock, tz=tz)


def parse_tools(text: str) -> ToolGroup:
    """``--tools``: ``ToolGroup.parse``, with an unknown name as a usage error.

    >>> parse_tools("reader,exec") == ToolGroup.READER | ToolGroup.EXEC
    True
    """
    try:
        return ToolGroup.parse(text)
    except ValueError as exc:
        raise UsageProblem(f"--tools: {str(exc).split(';')[0]}", f"use a comma list of: {ToolGroup.names()}") from None


def parse_positive(flag: str, text: str, kind: type[float] | type[int]) -> float:
    """A positive number for a budget flag (``--max-cost 0.50``, ``--max-tokens 200000``); else a usage error."""
    try:
        value = kind(text)
    except ValueError:
        value = 0
    if not value > 0:
        what = "whole number" if kind is int else "number"
        example = "200000" if kind is int else "0.50"
        raise UsageProblem(f"{flag} {text!r} is not a positive {what}", f"e.g. {flag} {example}")
    return value


def parse_effort(text: str | None) -> str | None:
    """``--effort``: one of ``REASONING_EFFORTS`` (any case), else a usage error naming them."""
    if text is None:
        return None
    if text.strip().lower() not in REASONING_EFFORTS:
        raise UsageProblem(
            f"--effort {text!r} is not a reasoning effort", f"use one of: {', '.join(REASONING_EFFORTS)}"
        )
    return text.strip().lower()


def parse_duration_arg(flag: str, text: str) -> float:
    """Seconds in ``6h``, ``90m``, ``45s``, ``1h30m`` or plain seconds; a bad value is a usage error."""
    from caw.policy.autowait import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        # parse_duration's message ends in its own examples: keep only a reason, the examples go after the dash
        why = re.search(r"\(([^()]*)\)$", str(exc))
        reason = f" ({why.group(1)})" if why and not why.group(1).startswith("use e.g.") else ""
        what = f"{flag} {text!r} is not a duration{reason}"
        raise UsageProblem(what, "use e.g. 30s, 10m, 6h or 1h30m, or plain seconds") from None


def default_data_dir() -> Path:
    from caw.state.store import default_data_dir

    return default_data_dir()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@dataclass(frozen=True)
class PromptSource:
    """Where the prompt comes from: the argument (``-`` = stdin) or ``--file`` (``-`` = stdin too)."""

    text: str | None = None
    file: Path | None = None

    def read(self) -> str | None:
        if self.text is not None and self.file is not None:
            raise UsageProblem("give the prompt either as an argument or with --file, not both")
        if self.file is not None:
            if str(self.file) == "-":
                return sys.stdin.read()
            try:
                return self.file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageProblem(
                    f"cannot read --file {self.file}: {exc}", "pass a readable UTF-8 text file"
                ) from None
        if self.text == "-":
            return sys.stdin.read()
        return self.text
