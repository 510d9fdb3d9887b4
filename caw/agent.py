"""``Agent``: the user-facing configuration object, and the only place that composes the layers below.

An Agent holds configuration (providers in order, model, reasoning effort, system prompt, tools, MCP
servers, where to keep sessions) and makes sessions. It never runs a process itself.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from caw.errors import (
    AuthenticationError,
    CawError,
    ConfigurationError,
    InvalidResumeHandle,
    ProviderNotInstalled,
    SessionNotFound,
    UnknownProviderError,
    UsageLimitError,
)
from caw.models import REASONING_EFFORTS, MCPServer, ModelTier, ToolGroup, Trajectory
from caw.policy.autowait import LimitWaitPolicy, parse_duration
from caw.providers import canonical_name, get_provider
from caw.providers.base import RunConfig
from caw.providers.health import PROBE_PROMPT, PROBE_TIMEOUT, LiveStatus, ProviderHealth, check_health
from caw.providers.order import global_models, resolve_order
from caw.providers.records import account_scope, prepare_resume
from caw.providers.records import capture as capture_record
from caw.redact import Redactor
from caw.session import Logger, Session, SessionSetup
from caw.session.budget import Budget
from caw.session.candidate import Candidate
from caw.session.turn import (
    DEFAULT_FIRST_OUTPUT_TIMEOUT,
    DEFAULT_TIMEOUT,
    DEFAULT_TRANSIENT_TIMEOUT,
    TurnOptions,
    run_turn,
)
from caw.session.warm import DEFAULT_WARM_IDLE_TIMEOUT
from caw.state.handle import ResumeHandle, decode, looks_like_handle
from caw.state.record import RecordFile
from caw.state.shared import FileSessionStore, gate_runner, open_ledger, open_store, state_url, wake_jitter
from caw.state.store import check_writable
from caw.text import clip

if TYPE_CHECKING:
    # imported where used: `caw run` does not need the terminal bridge (issue 18)
    from caw.interactive import InteractiveResult
    from caw.tools.functions import FunctionTool
    from caw.tools.permissions import PermissionCallback
    from caw.tools.subagents import SubagentLog
    from caw.tools.toolkit import ToolKit, ToolServer

_OFF = ("0", "false", "no", "off")


@dataclass
class AgentSpec:
    """A serialisable description of an agent (``Agent.get_spec()``; also used for sub-agents)."""

    name: str = ""
    description: str = ""
    provider: list[str] = field(default_factory=list)
    model: str | None = None
    reasoning: str | None = None
    system_prompt: str | None = None
    tools: ToolGroup | None = None
    mcp_servers: list[MCPServer] = field(default_factory=list)
    subagents: list[AgentSpec] = field(default_factory=list)


class Agent:
    """A configured coding agent over one provider or an ordered fallback list.

    >>> agent = Agent(provider="claude", model="sonnet")          # doctest: +SKIP
    >>> agent.completion("Say hi").result                         # doctest: +SKIP
    'Hi!'

    Keyword options besides the documented parameters: ``cwd``, ``env`` (extra environment for the CLI),
    ``models`` (a model per provider), ``auto_wait``, ``max_wait`` and ``wait_buffer`` (seconds),
    ``timeout``, ``idle_timeout``, ``first_output_timeout``, ``transient_timeout``, ``stop_grace`` (seconds;
    a deadline left out has its default, None disables it: docs/python-api.md "Deadlines"), ``extra_args``
    (extra CLI flags for the first provider), ``on_missing`` ("raise" or "fresh", for resumes),
    ``wait_output`` (a ``str -> None`` writer for limit-wait progress lines instead of stderr),
    ``wait_display`` (makes the countdown shown on a terminal; see ``caw.policy.autowait.CountdownFactory``),
    ``runner`` (runs each turn instead of ``caw.session.turn.run_turn``: a ``caw.session.runner.TurnRunner``,
    e.g. a scripted one that drives sessions, fallback and the CLI in tests with no process),
    ``clock`` and ``sleeper`` (the wait policy's aware-UTC ``now()`` and ``sleep(seconds, cancel)``, for tests),
    ``can_use_tool`` (``fn(tool_name, arguments) -> True | False | "why not"``: asked before each tool use the
    CLI's own rules would prompt for; claude only, see docs/python-api.md "Permissions"),
    ``redact`` (default True, ``CAW_REDACT=0`` turns it off: mask the providers' credential values and known
    key patterns in everything caw writes or prints; docs/reliability.md), ``secrets`` (more to mask:
    environment variable names, whose values are masked, or the secret values themselves), ``warm`` (True:
    a session keeps one long-lived CLI process per provider and sends every turn to it; default
    ``$CAW_WARM``, else warm; ``False`` runs every turn as its own CLI process), ``one_turn`` (a session you
    expect to send one message: it goes warm only where one warm turn measured faster than a cold one, which is
    nowhere today; ``completion()``, ``caw run``, ``caw resume``, batch tasks and subagents say so; an explicit
    ``warm=True`` wins; docs/warm-sessions.md), ``warm_idle_timeout`` (seconds a warm CLI may sit unused before it is
    stopped, 600 by default; the next send starts it again), ``state_url`` (a shared state for fleets,
    ``redis://host:port/db``, default ``$CAW_STATE_URL``: the limit ledger and the sessions on Redis, resumable
    on any machine; docs/fleets.md) and ``wake_jitter`` (seconds over which workers waiting for one shared reset
    spread their wake-up, default ``$CAW_WAKE_JITTER`` or 30).
    """

    def __init__(
        self,
        provider: str | Iterable[str] | None = None,
        data_dir: str | Path | None = None,
        system_prompt: str | None = None,
        model: str | ModelTier | None = None,
        reasoning: str | None = None,
        tools: ToolGroup | str | None = None,
        tool_servers: Iterable[MCPServer | str] | None = None,
        stateless_tools: Iterable[Any] | None = None,
        name: str = "",
        description: str = "",
        logger: Logger | None = None,
        **kwargs: Any,
    ) -> None:
        self._explicit_provider = provider
        self._order = resolve_order(provider)
        self.data_dir = Path(data_dir).expanduser() if data_dir is not None else None
        self.system_prompt = system_prompt
        self.model: str | ModelTier | None = model if model is not None else (os.environ.get("CAW_MODEL") or None)
        if reasoning is not None:
            self.reasoning = check_reasoning(reasoning)
        else:
            self.reasoning = check_reasoning(os.environ.get("CAW_EFFORT") or None, source="CAW_EFFORT")
        self.tools = check_tools(tools)
        self._mcp: list[MCPServer] = []
        self._tool_servers: list[ToolServer] = []
        for server in tool_servers or ():
            self.add_tool_server(server)
        #: plain functions (``@caw.tool`` or not) served as tools of the ``caw`` server (docs/tools.md)
        self.stateless_tools: list[FunctionTool] = [_as_function_tool(f) for f in stateless_tools or ()]
        self.name = name
        self.description = description
        self.logger = logger
        self.metadata: dict[str, Any] = {}
        self._subagents: list[AgentSpec] = []
        self._options = self._check_options(kwargs)

    # ---- configuration ---------------------------------------------------------------------------
    _KNOWN_OPTIONS = frozenset(
        {
            "cwd", "env", "models", "auto_wait", "max_wait", "wait_buffer", "timeout", "idle_timeout",
            "first_output_timeout", "transient_timeout", "stop_grace", "extra_args", "on_missing", "clock", "sleeper",
            "model_for_all",
            "wait_output", "wait_display", "runner", "can_use_tool", "redact", "secrets", "warm", "warm_idle_timeout",
            "one_turn",
            "tool_timeout", "tool_workers", "max_subagent_depth", "subagent_depth",
            "state_url", "wake_jitter",
            "max_cost_usd", "max_tokens", "max_turns", "max_duration", "usd_per_mtok",
        }
    )  # fmt: skip

    def _check_options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        unknown = set(kwargs) - self._KNOWN_OPTIONS
        if unknown:
            raise ConfigurationError(f"unknown Agent option(s): {', '.join(sorted(unknown))}")
        on_missing = kwargs.get("on_missing", "raise")
        if on_missing not in ("raise", "fresh"):
            raise ConfigurationError(f"on_missing must be 'raise' or 'fresh', not {on_missing!r}")
        runner = kwargs.get("runner")
        if runner is not None and not callable(runner):
            raise ConfigurationError(f"runner must be a TurnRunner (a callable), not {runner!r}")
        guard = kwargs.get("can_use_tool")
        if guard is not None and not callable(guard):
            raise ConfigurationError(
                f"can_use_tool must be a callable (tool name, arguments) -> bool | str, not {guard!r}"
            )
        for key in (
            "timeout", "idle_timeout", "first_output_timeout", "transient_timeout", "max_wait", "wait_buffer",
            "stop_grace", "warm_idle_timeout",
        ):  # fmt: skip
            value = kwargs.get(key)
            if value is not None and (not isinstance(value, (int, float)) or value < 0):
                raise ConfigurationError(f"{key} must be a non-negative number of seconds, not {value!r}")
        return dict(kwargs)

    def set_provider(self, provider: str | Iterable[str] | None) -> None:
        """A name, an ordered fallback list, or None / ``"auto"`` for the global order (as ``Agent(provider=)``)."""
        self._explicit_provider = provider
        self._order = resolve_order(provider)

    def set_model(self, model: str | ModelTier | None) -> None:
        """A model name, or a ``ModelTier`` each provider maps to its own model; None: the CLI's default."""
        self.model = model

    def set_reasoning(self, reasoning: str | None) -> None:
        """A reasoning-effort level (``"low"``, ``"medium"``, ``"high"``, ...); None: the CLI's default."""
        self.reasoning = check_reasoning(reasoning)

    def set_system_prompt(self, system_prompt: str | None) -> None:
        """The system prompt for later sessions; None: the CLI's own."""
        self.system_prompt = system_prompt

    def set_tools(self, tools: ToolGroup | str | None) -> None:
        """A ``ToolGroup``, or the ``--tools`` spelling (``"reader,exec"``, ``"all,-web"``)."""
        self.tools = check_tools(tools)

    def add_mcp_server(self, server: MCPServer) -> None:
        """Offer an MCP server to every provider; names must be unique (``ConfigurationError``)."""
        if any(s.name == server.name for s in self._mcp):
            raise ConfigurationError(f"an MCP server named {server.name!r} is already configured")
        self._mcp.append(server)

    def add_tool_server(self, handle: MCPServer | str | ToolKit | ToolServer) -> None:
        """Add a tool server: a ``caw.ToolKit`` (or its ``as_server()``), an ``MCPServer`` or an HTTP MCP URL."""
        from caw.tools.toolkit import DEFAULT_SERVER, as_tool_server  # `caw run` never loads the tools layer

        served = as_tool_server(handle)
        if served is not None:
            taken = {s.name for s in self._mcp} | {s.name for s in self._tool_servers} | {DEFAULT_SERVER}
            if served.name in taken:
                raise ConfigurationError(f"a tool server named {served.name!r} is already configured")
            self._tool_servers.append(served)
        elif isinstance(handle, MCPServer):
            self.add_mcp_server(handle)
        elif isinstance(handle, str) and handle.startswith(("http://", "https://")):
            self.add_mcp_server(MCPServer(name=f"tools{len(self._mcp) + 1}", url=handle))
        else:
            raise ConfigurationError(f"a tool server is an MCPServer or an http(s) URL, not {handle!r}")

    def add_subagent(self, spec: AgentSpec) -> None:
        """Offer ``spec`` as a tool named ``spec.name``: a call runs ``Agent.from_spec(spec)`` on the task text.

        The subagent's trajectory is saved under the calling session's directory and linked from its
        ``ToolUse`` (``subagent``, ``subagent_usage``); ``max_subagent_depth`` (default 2) bounds nesting.
        """
        from caw.tools.functions import check_name

        if not isinstance(spec, AgentSpec):
            raise ConfigurationError(f"add_subagent takes an AgentSpec, not {spec!r}")
        check_name(spec.name)
        if any(s.name == spec.name for s in self._subagents) or any(t.name == spec.name for t in self.stateless_tools):
            raise ConfigurationError(f"a tool named {spec.name!r} is already configured")
        self._subagents.append(spec)

    @classmethod
    def from_spec(cls, spec: AgentSpec, **kwargs: Any) -> Agent:
        """An Agent built from a spec (``get_spec()``'s inverse); ``kwargs`` are more ``Agent`` options."""
        agent = cls(
            provider=list(spec.provider) or None,
            system_prompt=spec.system_prompt,
            model=spec.model,
            reasoning=spec.reasoning,
            tools=spec.tools,
            name=spec.name,
            description=spec.description,
            **kwargs,
        )
        for server in spec.mcp_servers:
            agent.add_mcp_server(server)
        for sub in spec.subagents:
            agent.add_subagent(sub)
        return agent

    def get_spec(self) -> AgentSpec:
        """This agent's configuration as a serialisable ``AgentSpec``."""
        return AgentSpec(
            name=self.name,
            description=self.description,
            provider=list(self._order),
            model=self.model.value if isinstance(self.model, ModelTier) else self.model,
            reasoning=self.reasoning,
            system_prompt=self.system_prompt,
            tools=self.tools,
            mcp_servers=list(self._mcp),
            subagents=list(self._subagents),
        )

    @property
    def mcp_servers(self) -> list[MCPServer]:
        """The MCP servers added so far (a copy)."""
        return list(self._mcp)

    @property
    def order(self) -> tuple[str, ...]:
        """The provider names in fallback order."""
        return self._order

    @property
    def provider(self) -> str:
        """The resolved provider: the first installed one in the order (no network, no tokens)."""
        for cand in self._candidates():
            if cand.installed():
                return cand.provider.name
        return self._order[0]

    # ---- sessions --------------------------------------------------------------------------------
    def completion(self, message: str, output: Any = None, **kw: Any) -> Trajectory:
        """One turn in a fresh session, ended afterwards. Errors carry ``.trajectory``.

        ``output=``: a pydantic model class, a dataclass, a TypedDict or a JSON schema dict; the turn's ``parsed``
        is the validated answer (docs/structured-output.md). Budgets (``max_cost_usd``, ``max_tokens``,
        ``max_turns``, ``max_duration``) go in ``kw`` like any other option.
        """
        session = self._new_session(None, kw, single_turn=True)
        try:
            session.send(message, output=output)
        except Exception as exc:
            exc.trajectory = session.end()  # type: ignore[attr-defined]
            raise
        return session.end()

    def start_session(self, traj_path: str | Path | None = None, **kw: Any) -> Session:
        """A new conversation. ``traj_path``: also write the trajectory there after every turn."""
        return self._new_session(traj_path, kw, single_turn=False)

    def _new_session(self, traj_path: str | Path | None, kw: dict[str, Any], *, single_turn: bool) -> Session:
        agent = self._with(kw)
        traj = Trajectory(session_id=uuid.uuid4().hex[:16], metadata=dict(agent.metadata))
        traj.system_prompt = agent.system_prompt
        traj.reasoning = agent.reasoning
        setup = agent._setup(traj_path)
        # one turn goes warm only where that measured faster (Provider.warm_single_turn), unless warm=True says so
        setup.warm_one_turn = (single_turn or bool(agent._options.get("one_turn"))) and "warm" not in agent._options
        return Session(agent._candidates(), setup, traj)

    def resume_session(self, resume_handle: str, **kw: Any) -> Session:
        """Continue a conversation from ``Session.resume_handle`` (or a bare caw session id with ``data_dir``)."""
        agent = self._with(kw)
        store = agent._store()
        text = resume_handle.strip() if isinstance(resume_handle, str) else resume_handle
        if isinstance(text, str) and store is not None and not looks_like_handle(text) and store.exists(text):
            saved = store.load(text)
            if not saved.resume_handle:
                raise InvalidResumeHandle(f"session {text!r} has no resume handle yet", why="malformed")
            text = saved.resume_handle
        elif isinstance(text, str) and not looks_like_handle(text) and store is None and text:
            raise InvalidResumeHandle(
                "that is not a resume handle; a bare session id is accepted only when data_dir is set",
                why="not_a_handle",
            )
        elif isinstance(text, str) and not looks_like_handle(text) and store is not None and text:
            # not shaped like a handle, so it was meant as a session id: say that it is not there
            raise SessionNotFound(text, store.root)
        handle = decode(text, resolve=canonical_name)
        pinned = agent._explicit_provider
        pinned_one = pinned is not None and not (isinstance(pinned, str) and pinned.lower() == "auto")
        if pinned_one and len(agent._order) == 1 and agent._order[0] != handle.provider:
            raise ConfigurationError(
                f"this Agent is pinned to {agent._order[0]!r} but the handle belongs to {handle.provider!r}; "
                f"use Agent(provider={handle.provider!r}) or Agent() to follow the handle"
            )
        provider = get_provider(handle.provider)
        env = dict(agent._options.get("env") or {})
        if handle.config_home and provider.config_home_var and provider.config_home_var not in env:
            env[provider.config_home_var] = handle.config_home
        # another machine: remap a cwd/config home it lacks, restore the CLI's record from the store (issue 19)
        here = str(Path(agent._options.get("cwd") or os.getcwd()).resolve())
        resume_cwd = prepare_resume(handle, provider, env, here, store)
        explicit_model = kw.get("model")
        explicit_effort = agent.reasoning if kw.get("reasoning") else None
        config = RunConfig(
            model=provider.resolve_model(explicit_model) if explicit_model else handle.model,
            reasoning=explicit_effort or handle.reasoning,
            system_prompt=agent.system_prompt,
            tools=agent.tools,
            mcp_servers=tuple(agent._mcp),
            cwd=resume_cwd,
            env=env,
            extra_args=tuple(agent._options.get("extra_args") or ()),
        )
        traj: Trajectory | None = None
        if store is not None and store.exists(handle.session_id):
            traj = store.load(handle.session_id)
        if traj is None:
            traj = Trajectory(session_id=handle.session_id, metadata=dict(agent.metadata))
        traj.provider_session_id = handle.resume_key
        setup = agent._setup(kw.get("traj_path"))
        setup.warm_one_turn = bool(agent._options.get("one_turn")) and "warm" not in agent._options
        return Session([Candidate(provider, config)], setup, traj, resume_key=handle.resume_key)

    def check_limit(self, probe: bool = True) -> int | None:
        """Minutes until the resolved provider's usage limit resets, or None when it is not limited.

        caw's cooldown memory answers first (free: a limit any caw process on this machine saw). With nothing
        remembered, ``probe=True`` (the default) asks the provider itself with one minimal turn ("Reply with
        the single word: ok", no tools: a few hundred input tokens on the provider's bill) and reports what
        it says; a limit found that way is remembered for every caw process. ``probe=False`` keeps the answer
        local and free. A limit whose reset time the provider does not say counts as one minute (the first
        step of caw's own retry schedule). A probe that fails for another reason (logged out, not installed,
        crashed) raises that error: None means the provider really answered.

        >>> caw.Agent(provider="codex").check_limit(probe=False)       # doctest: +SKIP
        None
        """
        remembered = _minutes_until(open_ledger(state_url(self._options.get("state_url"))).until(self.provider))
        if remembered is not None or not probe:
            return remembered
        name = self.provider
        cand = next(c for c in self._candidates() if c.provider.name == name)
        try:
            _probe_turn(name, cand.config, None)
        except UsageLimitError as exc:
            return _minutes_until(exc.resets_at) or 1
        return None

    def check_health(self, live: bool = False) -> ProviderHealth:
        """Health of the resolved provider (``live=True`` also sends one minimal request).

        See ``caw.providers.health``.
        """
        name = self.provider
        cand = next(c for c in self._candidates() if c.provider.name == name)
        return check_health(name, live=live, config=cand.config, probe=live_probe)

    def interactive(
        self, initial_prompt: str = "", capture_bytes: int = 0, *, select_provider: bool = False, **kw: Any
    ) -> InteractiveResult:
        """Hand the terminal to the CLI's own interactive UI (see ``caw.interactive``).

        Returns ``InteractiveResult(exit_code, output)``; ``select_provider=True`` first shows a menu of the
        installed providers (cancel: exit code 130, nothing launched).
        """
        agent = self._with(kw)
        from caw.interactive import launch

        return launch(agent._candidates(), initial_prompt, capture_bytes=capture_bytes, select_provider=select_provider)

    # ---- composition -----------------------------------------------------------------------------
    def _with(self, kw: dict[str, Any]) -> Agent:
        """A copy with per-call overrides (model, reasoning, tools, system_prompt, provider, options)."""
        if not kw:
            return self
        clone = Agent.__new__(Agent)
        clone.__dict__.update(self.__dict__)
        clone._options = dict(self._options)
        clone.metadata = dict(self.metadata)
        for key, value in kw.items():
            if key == "traj_path":
                continue
            if key == "provider":
                clone.set_provider(value)
            elif key == "reasoning":
                clone.reasoning = check_reasoning(value)
            elif key == "tools":
                clone.tools = check_tools(value)
            elif key in ("model", "system_prompt", "logger"):
                setattr(clone, key, value)
            elif key == "metadata":
                clone.metadata.update(value)
            elif key in self._KNOWN_OPTIONS:
                clone._options[key] = value
            else:
                raise ConfigurationError(f"unknown option {key!r}")
        clone._check_options(clone._options)
        return clone

    def _permission_callback(self) -> PermissionCallback | None:
        """``can_use_tool``, refused for an order with a provider that cannot ask (rather than ignored)."""
        guard: PermissionCallback | None = self._options.get("can_use_tool")
        if guard is not None and _unsupported(self._order):
            raise ConfigurationError(
                f"can_use_tool needs a CLI that asks before a tool use; {', '.join(_unsupported(self._order))} "
                "cannot (claude can): use tools= (ToolGroup) for those, or an order of claude only"
            )
        return guard

    def redactor(self) -> Redactor:
        """What masks secrets in this Agent's files and output: the credential variables of its providers
        (``Provider.secret_env_vars``), ``secrets=`` and ``$CAW_SECRETS`` (comma-separated names), read from
        ``env=`` over ``os.environ``; key patterns too. Disabled by ``redact=False`` or ``CAW_REDACT=0``.

        >>> Agent(provider="claude", secrets=["my-long-secret"]).redactor()("it is my-long-secret")  # doctest: +SKIP
        'it is [REDACTED]'
        """
        o = self._options
        enabled = bool(o["redact"]) if "redact" in o else os.environ.get("CAW_REDACT", "1").strip() not in ("0", "off")
        env = {**os.environ, **dict(o.get("env") or {})}
        names: list[str] = []
        for name in self._order:
            try:
                names += get_provider(name).secret_env_vars
            except UnknownProviderError:  # a name in the order that is not registered fails later, as itself
                continue
        names += [n.strip() for n in os.environ.get("CAW_SECRETS", "").split(",") if n.strip()]
        values: list[str] = []
        for item in o.get("secrets") or ():
            (names if item in env else values).append(item)
        return Redactor.from_env(names, env, values=values, enabled=enabled)

    def _store(self) -> FileSessionStore | None:
        # data_dir's files; with a shared state URL, Redis on top (docs/fleets.md)
        env = {**os.environ, **dict(self._options.get("env") or {})}

        def native(handle: ResumeHandle) -> list[RecordFile]:
            return capture_record(handle, env, get_provider(handle.provider))

        url = state_url(self._options.get("state_url"))
        return open_store(self.data_dir, url, capture=native, warn=self.logger.warn if self.logger else None)

    def _candidates(self) -> list[Candidate]:
        per_provider = {**global_models(), **dict(self._options.get("models") or {})}
        cwd = str(Path(self._options.get("cwd") or os.getcwd()).resolve())
        env = dict(self._options.get("env") or {})
        out: list[Candidate] = []
        for index, name in enumerate(self._order):
            provider = get_provider(name)
            model: str | None
            if name in per_provider:
                model = per_provider[name]
            elif isinstance(self.model, ModelTier):
                model = provider.resolve_model(self.model)
            elif index == 0 or self._options.get("model_for_all"):
                # a model name belongs to one provider's catalogue: never pass claude's name to codex
                model = self.model
            else:
                model = None
            config = RunConfig(
                model=model,
                reasoning=self.reasoning,
                system_prompt=self.system_prompt,
                tools=self.tools,
                mcp_servers=tuple(self._mcp),
                cwd=cwd,
                env=env,
                extra_args=tuple(self._options.get("extra_args") or ()) if index == 0 else (),
            )
            out.append(Candidate(provider, config))
        return out

    def _warm(self) -> bool:
        """``Agent(warm=)``, else ``$CAW_WARM`` (0/1), else ``WARM_DEFAULT``."""
        if self._options.get("warm") is not None:
            return bool(self._options["warm"])
        text = os.environ.get("CAW_WARM", "").strip().lower()
        return WARM_DEFAULT if not text else text not in _OFF

    def _setup(self, traj_path: str | Path | None) -> SessionSetup:
        o = self._options
        options = TurnOptions(
            first_output_timeout=_deadline(o, "first_output_timeout", DEFAULT_FIRST_OUTPUT_TIMEOUT),
            idle_timeout=o.get("idle_timeout"),
            timeout=_deadline(o, "timeout", DEFAULT_TIMEOUT),
            transient_timeout=_deadline(o, "transient_timeout", DEFAULT_TRANSIENT_TIMEOUT),
            stop_grace_s=float(o.get("stop_grace", 2.0)),
        )
        setup = SessionSetup(
            base_env=dict(os.environ),
            options=options,
            store=self._store(),
            logger=self.logger,
            traj_path=Path(traj_path) if traj_path is not None else None,
            on_missing=o.get("on_missing", "raise"),
            runner=o.get("runner") or run_turn,
            permission_callback=self._permission_callback(),
            redact=self.redactor(),
            budget=Budget.from_options(o),  # issue 16: max_cost_usd, max_tokens, max_turns, max_duration
            warm=self._warm(),
            warm_idle_timeout=_deadline(o, "warm_idle_timeout", DEFAULT_WARM_IDLE_TIMEOUT),
        )
        # a bad data_dir or traj_path fails here, as a StorageError, not after a paid turn (issue 12)
        if setup.store is not None:
            setup.store.check_writable()
        if setup.traj_path is not None:
            check_writable(setup.traj_path.parent)
        _attach_limits(setup, self, o)
        _attach_tools(setup, self, o)
        return setup


#: whether sessions keep their CLI warm when neither ``Agent(warm=)`` nor ``$CAW_WARM`` says (issue 14): yes,
#: since the parity suite passes warm on all three CLIs. One-turn callers (``completion()``, ``caw run``,
#: ``caw resume``, batch tasks, subagents) pass ``one_turn=True`` and run cold where a warm start does not pay.
WARM_DEFAULT = True


def _as_function_tool(fn: Any) -> FunctionTool:
    from caw.tools.functions import FunctionTool, function_tool

    if isinstance(fn, FunctionTool):
        return fn
    if not callable(fn):
        raise ConfigurationError(f"stateless_tools takes functions, not {fn!r}")
    return function_tool(fn)


def _attach_tools(setup: SessionSetup, agent: Agent, o: dict[str, Any]) -> None:
    """The session's Python tools: ``stateless_tools`` and subagents (server ``caw``), then each ToolKit."""
    from caw.tools.subagents import SubagentLog
    from caw.tools.toolkit import DEFAULT_SERVER, ToolServer

    depth, max_depth = int(o.get("subagent_depth") or 0), int(o.get("max_subagent_depth", 2))
    subagents = agent._subagents if depth < max_depth else []
    if subagents or agent.stateless_tools or agent._tool_servers:
        log = SubagentLog()
        own = [*agent.stateless_tools, *(_subagent_tool(spec, agent, log, depth + 1) for spec in subagents)]
        setup.tool_servers = ([ToolServer(DEFAULT_SERVER, own)] if own else []) + list(agent._tool_servers)
        setup.subagent_log = log if subagents else None
    if "tool_timeout" in o:
        setup.tool_timeout = o["tool_timeout"]
    if o.get("tool_workers"):
        setup.tool_workers = int(o["tool_workers"])


#: the options a subagent takes from the agent that calls it (where it runs, how it is run and masked)
_INHERITED = ("cwd", "env", "runner", "timeout", "auto_wait", "redact", "secrets", "clock", "sleeper", "tool_timeout")


def _subagent_tool(spec: AgentSpec, parent: Agent, log: SubagentLog, depth: int) -> FunctionTool:
    """The tool that runs ``spec`` on a task (rank 8 builds it; the tools layer only calls it)."""
    from caw.tools.functions import function_tool
    from caw.tools.subagents import SubagentRun
    from caw.tools.toolkit import DEFAULT_SERVER

    inherited = {k: parent._options[k] for k in _INHERITED if k in parent._options}
    inherited["max_subagent_depth"] = parent._options.get("max_subagent_depth", 2)

    def delegate(task: Annotated[str, "the whole task: the subagent sees nothing else of this conversation"]) -> str:
        data_dir = log.parent_dir / "subagents" if log.parent_dir is not None else None
        child = Agent.from_spec(spec, data_dir=data_dir, subagent_depth=depth, logger=parent.logger, **inherited)
        session = child.start_session(one_turn=True)
        try:
            session.send(task)
        finally:
            traj = session.end()
            where = session.session_dir
            link = str(where / "trajectory.json") if where is not None else traj.session_id
            usage = traj.usage + traj.subagent_usage
            log.add(SubagentRun(DEFAULT_SERVER, spec.name, {"task": task}, link, traj.agent, usage))
        return traj.result

    description = spec.description or f"Hand a task to the {spec.name} agent; it answers with its result."
    return function_tool(delegate, name=spec.name, description=description)


def _deadline(o: dict[str, Any], key: str, default: float) -> float | None:
    """An Agent option (None disables it), else ``$CAW_<KEY>`` (a duration; "off" disables it), else the default.

    Every turn ends some day (issue 12): a whole-turn deadline, a deadline for the first answer, and one for a
    CLI that only retries (docs/python-api.md, "Deadlines").
    """
    if key in o:
        value: float | None = o[key]
        return value
    text = os.environ.get(f"CAW_{key.upper()}", "").strip()
    if not text:
        return default
    if text.lower() in ("off", "none"):
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigurationError(f"CAW_{key.upper()}={text!r}: {exc}") from None


def check_tools(tools: object) -> ToolGroup | None:
    """``tools`` as the Agent keeps it: a ``ToolGroup``, the CLI's spelling parsed, else ConfigurationError.

    >>> check_tools("reader,exec") == ToolGroup.READER | ToolGroup.EXEC
    True
    """
    if tools is None or isinstance(tools, ToolGroup):
        return tools
    if isinstance(tools, str):
        try:
            return ToolGroup.parse(tools)
        except ValueError as exc:
            raise ConfigurationError(f"tools={tools!r}: {exc}") from None
    raise ConfigurationError(
        f"tools must be a ToolGroup or a comma list of its names (e.g. 'reader,exec'), not {tools!r}"
    )


def check_reasoning(reasoning: object, *, source: str = "reasoning") -> str | None:
    """A reasoning effort the CLIs take (``REASONING_EFFORTS``, any case), else ConfigurationError.

    >>> check_reasoning("High")
    'high'
    """
    if reasoning is None:
        return None
    value = reasoning.strip().lower() if isinstance(reasoning, str) else reasoning
    if value not in REASONING_EFFORTS:
        raise ConfigurationError(
            f"{source}={reasoning!r} is not a reasoning effort; use one of: {', '.join(REASONING_EFFORTS)}"
        )
    return str(value)


def _attach_limits(setup: SessionSetup, agent: Agent, o: dict[str, Any]) -> None:
    """Cooldown memory and the auto-wait policy (both optional layers)."""
    url = state_url(o.get("state_url"))
    env = {**os.environ, **dict(o.get("env") or {})}
    cooldown = open_ledger(
        url,
        scope=lambda name: account_scope(get_provider(name), env),
        warn=agent.logger.warn if agent.logger is not None else None,
    )
    setup.skip = cooldown.skip_reason
    setup.cooldown_until = cooldown.until
    setup.on_limit = cooldown.recorder(warn=agent.logger.warn if agent.logger is not None else None)
    if url is not None:  # a fleet skips a shared limit without a request, warm or cold
        setup.gate = lambda runner: gate_runner(runner, cooldown)
    auto_wait = o.get("auto_wait")
    if auto_wait is None:
        auto_wait = os.environ.get("CAW_AUTOWAIT", "1").strip().lower() not in _OFF
    if not auto_wait:
        return
    policy = LimitWaitPolicy.from_options(
        max_wait=o.get("max_wait"),
        buffer=o.get("wait_buffer"),
        clock=o.get("clock"),
        sleeper=o.get("sleeper"),
        out=o.get("wait_output"),
        countdown=o.get("wait_display"),
    )
    if url is not None:  # many workers wait for one shared reset: spread their wake-ups (issue 19)
        policy.buffer += wake_jitter(o.get("wake_jitter"))
    # max_wait=0 (or CAW_MAX_WAIT=0) means exactly what auto_wait=False means: never wait, fail over as usual
    setup.limit_waiter = policy if policy.max_wait > 0 else None


def _unsupported(names: Iterable[str]) -> list[str]:
    return [n for n in names if not get_provider(n).supports_permission_callback]


def _minutes_until(when: datetime | None) -> int | None:
    if when is None:
        return None
    seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return max(1, math.ceil(seconds / 60)) if seconds > 0 else None


def _probe_turn(name: str, config: RunConfig | None, env: Mapping[str, str] | None) -> Trajectory:
    """The minimal turn the live checks spend: one word back, no tools, no waiting (raises what it hits)."""
    extra_env = {**(env or {}), **(config.env if config is not None else {})}
    agent = Agent(
        provider=name,
        model=config.model if config is not None else None,
        reasoning=config.reasoning if config is not None else None,
        tools=ToolGroup.NONE,
        auto_wait=False,
        timeout=PROBE_TIMEOUT,
        cwd=config.cwd if config is not None else None,
        env=extra_env,
    )
    return agent.completion(PROBE_PROMPT)


def live_probe(name: str, config: RunConfig | None, env: Mapping[str, str] | None) -> tuple[LiveStatus, str]:
    """One minimal turn through ``Agent.completion``; the error class says what is wrong."""
    try:
        traj = _probe_turn(name, config, env)
    except UsageLimitError as exc:
        when = f"resets at {exc.resets_at.isoformat(timespec='minutes')}" if exc.resets_at else "reset time unknown"
        return "rate_limited", clip(f"{when}: {exc.detail}", 200)
    except AuthenticationError as exc:
        return "auth_error", clip(exc.detail, 200)
    except ProviderNotInstalled as exc:
        return "not_installed", clip(str(exc), 200)
    except CawError as exc:
        return "error", clip(f"{type(exc).__name__}: {exc}", 200)
    return "answers", clip(f"replied {traj.result.strip()!r}", 200)
