"""The auto-wait policy: wait out a usage limit, then let the session continue the same conversation.

``LimitWaitPolicy.wait`` is called by the session with the ``UsageLimitError`` a turn ended with. It

* raises that limit again (with the resume handle and a message saying when it resets) when it must not
  wait: a money problem (``waitable`` False), a reset further away than ``max_wait``, ``max_wait=0``, or
  an unknown-reset episode that used up its schedule;
* otherwise sleeps until ``resets_at + buffer`` (never earlier: server clocks differ), in slices of at
  most a second so that ``cancel`` stops it at once and the countdown keeps moving, and returns;
* yields ``LimitWaitEvent``s (one at the start, then one every five minutes) so the session's logger
  and ``stream()`` users see every step.

A limit without a reset time is retried on a bounded, escalating schedule (1, 2, 5, 10, 20, 30, 60 min,
at most ``max_tries`` tries and ``max_wait`` in total). Each try is the resumed turn itself: caw never
spends a separate paid request to find out whether the limit has lifted. The policy keeps that state
across the calls the session makes after each failed retry (one *episode*); a limit that arrives long
after the last wake-up starts a new episode.

Clock and sleep are injected (``clock``: aware UTC now; ``sleeper(seconds, event) -> cancelled``) so
tests never really sleep. What the user sees: a countdown when stderr is a terminal (``TtyCountdown``, or
the display the caller hands in: the ``caw`` command's rich ``caw.cli.countdown.Countdown``), else one
line at the start and one every few minutes (for CI logs).

``wait_and_retry`` is the loop around it: wait, retry the turn, wait again while the retry is limited and
the waiter allows. It runs over callables (the session's retry), so it is tested without a process.
"""

from __future__ import annotations

import math
import os
import re
import sys
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Literal, Protocol

from caw.errors import ConfigurationError, TurnCancelled, UsageLimitError
from caw.events import Event, LimitWaitEvent
from caw.models import Turn

Clock = Callable[[], datetime]
#: sleep up to ``seconds`` or until ``event`` is set; True when it was cancelled
Sleeper = Callable[[float, threading.Event], bool]
Writer = Callable[[str], None]

DEFAULT_MAX_WAIT = 6 * 3600.0
DEFAULT_BUFFER = 120.0
DEFAULT_PROGRESS_INTERVAL = 300.0
#: a reset this many seconds in the past when caw first hears of it passed while the CLI was busy retrying
_RECENTLY_PASSED = 300.0

#: waits for a limit whose reset time is unknown, in seconds; the last one repeats
UNKNOWN_RESET_SCHEDULE: tuple[float, ...] = (60, 120, 300, 600, 1200, 1800, 3600)
DEFAULT_MAX_TRIES = 10
#: a new limit this long after the last wake-up belongs to a new episode (the retry made progress)
EPISODE_GAP = 15 * 60.0
#: the longest single sleep: the countdown ticks and the wall clock is re-read this often
SLICE = 1.0
#: the shortest one: a sleeper that keeps returning early must not turn the tail into a busy loop
MIN_SLICE = 0.05


# ---- durations ---------------------------------------------------------------------------------------
_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])")


def parse_duration(text: str | float) -> float:
    """Seconds in a duration like ``6h``, ``90m``, ``45s``, ``1h30m``, ``2d`` or plain seconds (``3600``).

    >>> parse_duration("1h30m"), parse_duration("90"), parse_duration("2.5m")
    (5400.0, 90.0, 150.0)

    Raises ValueError for anything else (negative numbers, unknown units, empty text).
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        raw = str(text).strip().lower()
        if not raw:
            raise ValueError("empty duration")
        try:
            value = float(raw)
        except ValueError:
            compact = raw.replace(" ", "")
            parts = _DURATION_PART.findall(compact)
            if not parts or "".join(n + u for n, u in parts) != compact:
                raise ValueError(f"not a duration: {text!r} (use e.g. 6h, 90m, 45s, 1h30m or seconds)") from None
            units = [u for _, u in parts]
            if len(set(units)) != len(units):
                raise ValueError(f"not a duration: {text!r} (a unit appears twice)") from None
            value = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"not a duration: {text!r} (must be a non-negative number of seconds)")
    return value


def format_duration(seconds: float) -> str:
    """Short human form: ``2h 03m``, ``4m 05s``, ``45s``, ``5d 22h`` (rounded up to the shown unit)."""
    s = max(0, math.ceil(seconds))
    if s >= 86400:
        hours = math.ceil(s / 3600)
        return f"{hours // 24}d {hours % 24:02d}h"
    if s >= 3600:
        minutes = math.ceil(s / 60)
        return f"{minutes // 60}h {minutes % 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


def format_time(when: datetime, tz: tzinfo | None = None) -> str:
    """``2026-11-22 14:05 UTC`` in ``tz`` (None: the local zone)."""
    local = when.astimezone(tz) if tz is not None else when.astimezone()
    zone = local.tzname() or ""
    return f"{local:%Y-%m-%d %H:%M} {zone}".rstrip()


# ---- what one wait is about --------------------------------------------------------------------------
@dataclass(frozen=True)
class WaitPlan:
    """One wait, as shown to the user: whose limit, until when, and (unknown reset) which try."""

    provider: str
    kind: str
    resets_at: datetime | None
    wake_at: datetime
    started_at: datetime
    handle: str | None
    #: 1-based try number when the reset time is unknown, else None
    try_number: int | None = None
    max_tries: int | None = None

    @property
    def total_seconds(self) -> float:
        return max(0.0, (self.wake_at - self.started_at).total_seconds())


class WaitDisplay(Protocol):
    """How a wait is shown. ``tick`` is called about once a second; ``stop`` always runs."""

    def start(self, plan: WaitPlan) -> None: ...
    def tick(self, now: datetime) -> None: ...
    def stop(self, outcome: Literal["done", "cancelled", "interrupted"]) -> None: ...


class CountdownFactory(Protocol):
    """Makes the display used on a terminal (e.g. ``caw.cli.countdown.Countdown``)."""

    def __call__(self, *, clock: Clock, tz: tzinfo | None = None) -> WaitDisplay: ...


def _stderr_writer(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed stderr must not break the wait
        pass


def _stderr_raw(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _real_sleeper(seconds: float, event: threading.Event) -> bool:
    return event.wait(seconds)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def _limit_name(plan_or_provider: str, kind: str) -> str:
    return f"{plan_or_provider} usage limit ({kind or 'rate'})"


def start_line(plan: WaitPlan, now: datetime, tz: tzinfo | None = None) -> str:
    """The line that announces a wait (also the message of the first ``LimitWaitEvent``)."""
    left = format_duration((plan.wake_at - now).total_seconds())
    head = f"caw: {_limit_name(plan.provider, plan.kind)}"
    if plan.resets_at is None:
        return (
            f"{head}, reset time unknown — retrying at {format_time(plan.wake_at, tz)} (in {left}; "
            f"try {plan.try_number} of {plan.max_tries}); Ctrl-C to stop"
        )
    return f"{head} — waiting until {format_time(plan.wake_at, tz)} (in {left}); Ctrl-C to stop"


def progress_line(plan: WaitPlan, now: datetime) -> str:
    return f"caw: still waiting for {plan.provider} ({format_duration((plan.wake_at - now).total_seconds())} left)"


def stop_line(plan: WaitPlan, outcome: Literal["done", "cancelled", "interrupted"]) -> str | None:
    """The line that closes a wait. None on cancel: the ``TurnCancelled`` message already says it all."""
    if outcome == "done":
        return f"caw: done waiting for {plan.provider}; continuing the conversation"
    if outcome == "interrupted":
        return f"caw: stopped waiting for {plan.provider}; {_resume_hint(plan.handle, later=True)}"
    return None


class LineDisplay:
    """For logs (no terminal): a line at the start, one every five minutes, one at the end."""

    def __init__(self, out: Writer, *, clock: Clock, tz: tzinfo | None = None) -> None:
        self._out = out
        self._clock = clock
        self._tz = tz
        self._plan: WaitPlan | None = None
        self._next: datetime | None = None

    def start(self, plan: WaitPlan) -> None:
        now = self._clock()
        self._plan = plan
        self._next = now + timedelta(seconds=DEFAULT_PROGRESS_INTERVAL)
        self._out(start_line(plan, now, self._tz))

    def tick(self, now: datetime) -> None:
        if self._plan is None or self._next is None or now < self._next or now >= self._plan.wake_at:
            return
        self._next = now + timedelta(seconds=DEFAULT_PROGRESS_INTERVAL)
        self._out(progress_line(self._plan, now))

    def stop(self, outcome: Literal["done", "cancelled", "interrupted"]) -> None:
        if self._plan is not None:
            line = stop_line(self._plan, outcome)
            if line:
                self._out(line)
        self._plan = None


def describe(plan: WaitPlan, now: datetime, tz: tzinfo | None = None) -> str:
    """The countdown's text, most important first (a narrow terminal cuts the end):
    ``2h 03m left · claude session limit · resets 14:03 CET · Ctrl-C to stop``."""
    left = format_duration((plan.wake_at - now).total_seconds())
    if plan.resets_at is not None:
        when = f"resets {short_time(plan.resets_at, now, tz)}"
    else:
        when = f"reset time unknown, try {plan.try_number} of {plan.max_tries}"
    return f"{left} left · {plan.provider} {plan.kind or 'rate'} limit · {when} · Ctrl-C to stop"


def short_time(when: datetime, now: datetime, tz: tzinfo | None = None) -> str:
    """``14:03 CET`` today, ``Nov 24 19:52 CET`` on another day (local time unless ``tz`` is given)."""
    local = when.astimezone(tz) if tz is not None else when.astimezone()
    today = now.astimezone(tz) if tz is not None else now.astimezone()
    shown = f"{local:%H:%M}" if local.date() == today.date() else f"{local:%b} {local.day} {local:%H:%M}"
    return f"{shown} {local.tzname() or ''}".rstrip()


class TtyCountdown:
    """A one-line countdown redrawn in place on a terminal (standard library only; the ``caw`` command uses
    a rich one, ``caw.cli.countdown.Countdown``)."""

    def __init__(self, *, clock: Clock, tz: tzinfo | None = None, out: Writer | None = None) -> None:
        self._clock = clock
        self._tz = tz
        self._raw = out or _stderr_raw
        self._plan: WaitPlan | None = None

    def start(self, plan: WaitPlan) -> None:
        self._plan = plan
        self.tick(self._clock())

    def tick(self, now: datetime) -> None:
        if self._plan is not None:
            self._raw("\r\x1b[2Kcaw " + describe(self._plan, now, self._tz))

    def stop(self, outcome: Literal["done", "cancelled", "interrupted"]) -> None:
        if self._plan is None:
            return
        line = stop_line(self._plan, outcome)
        self._raw("\r\x1b[2K" + (line + "\n" if line else ""))
        self._plan = None


# ---- the loop around a wait --------------------------------------------------------------------------
class LimitWaiter(Protocol):
    """Waits out a usage limit (``LimitWaitPolicy``); raises when it must not or cannot wait."""

    def wait(self, error: UsageLimitError, *, cancel: threading.Event, handle: str | None) -> Iterator[Event]: ...

    def reset(self) -> None:
        """The limit is over (a retry got through): the next limit starts a fresh schedule."""


def _ignore(_: object) -> None:
    return None


def wait_and_retry(
    error: UsageLimitError,
    retry: Callable[[], Generator[Event, None, Turn]],
    waiter: LimitWaiter,
    *,
    cancel: threading.Event,
    handle: Callable[[], str | None] = lambda: None,
    before_wait: Callable[[], None] = lambda: None,
    on_limit: Callable[[UsageLimitError], None] = _ignore,
    on_wait_event: Callable[[Event], None] = _ignore,
) -> Generator[Event, None, Turn]:
    """Wait out ``error``, then ``retry()`` the turn; repeat while the retry is limited and ``waiter`` allows.

    Yields the waiter's events (each also given to ``on_wait_event``) and the retry's; returns the retry's
    turn. ``before_wait`` runs before every wait (the session marks the message pending there), ``handle()``
    is the resume handle a give-up error carries, ``on_limit`` hears of each limit a retry hits. Raises the
    waiter's ``UsageLimitError`` when it gives up, ``TurnCancelled`` when ``cancel`` is set, and any other
    error of a retry as it is.

    >>> t = [datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)]
    >>> def sleeper(seconds, cancel): t[0] += timedelta(seconds=seconds); return False
    >>> policy = LimitWaitPolicy(clock=lambda: t[0], sleeper=sleeper, out=lambda line: None)
    >>> def retry():
    ...     yield from ()
    ...     return Turn(input="hi", provider="claude")
    >>> limit = UsageLimitError("claude", "limit", resets_at=None)
    >>> gen = wait_and_retry(limit, retry, policy, cancel=threading.Event())
    >>> [type(ev).__name__ for ev in gen]
    ['LimitWaitEvent']
    """
    while True:
        before_wait()
        current = handle()
        try:
            for ev in waiter.wait(error, cancel=cancel, handle=current):
                on_wait_event(ev)
                yield ev
        except UsageLimitError as final:
            final.resume_handle = final.resume_handle or current
            raise
        try:
            turn = yield from retry()
        except UsageLimitError as again:
            on_limit(again)
            error = again
            continue
        waiter.reset()
        return turn


# ---- the policy --------------------------------------------------------------------------------------
class LimitWaitPolicy:
    """Waits out usage limits for one session (see the module docstring for the rules).

    >>> import threading
    >>> from datetime import datetime, timedelta, timezone
    >>> from caw.errors import UsageLimitError
    >>> now = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
    >>> t = [now]
    >>> def clock(): return t[0]
    >>> def sleeper(s, ev): t[0] += timedelta(seconds=s); return False
    >>> policy = LimitWaitPolicy(clock=clock, sleeper=sleeper, out=lambda line: None)
    >>> err = UsageLimitError("claude", "limit", resets_at=now + timedelta(hours=2), kind="session")
    >>> events = list(policy.wait(err, cancel=threading.Event(), handle=None))
    >>> t[0] - now == timedelta(hours=2, seconds=120)
    True
    """

    def __init__(
        self,
        *,
        max_wait: float = DEFAULT_MAX_WAIT,
        buffer: float = DEFAULT_BUFFER,
        clock: Clock | None = None,
        sleeper: Sleeper | None = None,
        out: Writer | None = None,
        tz: tzinfo | None = None,
        countdown: CountdownFactory | None = None,
        max_tries: int = DEFAULT_MAX_TRIES,
    ) -> None:
        """``out``: write progress lines there (never a countdown); ``tz``: the zone times are shown in
        (None: local); ``countdown``: the display on a terminal; ``max_tries``: waits per episode (tests)."""
        if max_wait < 0 or buffer < 0 or max_tries < 1:
            raise ConfigurationError("max_wait and buffer must be >= 0, max_tries >= 1")
        self.max_wait = float(max_wait)
        self.buffer = float(buffer)
        self.clock: Clock = clock or _utcnow
        self.sleeper: Sleeper = sleeper or _real_sleeper
        self.out = out
        self.max_tries = max_tries
        self.tz = tz
        self.countdown = countdown
        # episode state (kept across the session's calls after each failed retry)
        self._tries = 0
        self._unknown_tries = 0
        self._unknown_waited = 0.0
        self._last_wake: datetime | None = None

    @classmethod
    def from_options(
        cls,
        *,
        max_wait: float | None = None,
        buffer: float | None = None,
        clock: Clock | None = None,
        sleeper: Sleeper | None = None,
        out: Writer | None = None,
        countdown: CountdownFactory | None = None,
    ) -> LimitWaitPolicy:
        """The policy for Agent options: a kwarg wins, else ``CAW_MAX_WAIT`` / ``CAW_WAIT_BUFFER``, else defaults.

        Environment values take seconds or ``6h`` / ``90m`` / ``1h30m`` forms; a malformed one raises
        ``ConfigurationError`` (better at session start than hours into a CI job).
        """
        return cls(
            max_wait=_option(max_wait, os.environ, "CAW_MAX_WAIT", DEFAULT_MAX_WAIT),
            buffer=_option(buffer, os.environ, "CAW_WAIT_BUFFER", DEFAULT_BUFFER),
            clock=clock,
            sleeper=sleeper,
            out=out,
            countdown=countdown,
        )

    def reset(self) -> None:
        """Forget the unknown-reset episode (a retry got through)."""
        self._tries = 0
        self._unknown_tries = 0
        self._unknown_waited = 0.0
        self._last_wake = None

    # ---- the wait ----------------------------------------------------------------------------------
    def wait(self, error: UsageLimitError, *, cancel: threading.Event, handle: str | None) -> Iterator[LimitWaitEvent]:
        """Sleep until it is time to retry the turn; raise ``UsageLimitError`` when not waiting, or
        ``TurnCancelled`` when ``cancel`` is set."""
        if cancel.is_set():
            raise self._cancelled(error, handle)
        now = _aware(self.clock())
        if self._last_wake is not None and (now - self._last_wake).total_seconds() > EPISODE_GAP:
            self.reset()
        plan = self._plan(error, now, handle)
        yield LimitWaitEvent(
            provider=error.provider,
            resets_at=plan.resets_at,
            wake_at=plan.wake_at,
            started_at=plan.started_at,
            kind=plan.kind,
            message=start_line(plan, now, self.tz).removeprefix("caw: "),
        )
        yield from self._sleep_until(plan, error, cancel)
        self._last_wake = _aware(self.clock())

    def _plan(self, error: UsageLimitError, now: datetime, handle: str | None) -> WaitPlan:
        """When to wake, or raise the limit when waiting is not allowed."""
        kind = error.kind or "rate"
        if not error.waitable:
            raise self._give_up(error, handle, "this limit does not reset with time (credits or a spend cap)")
        if self.max_wait <= 0:
            raise self._give_up(error, handle, "auto-wait is off (max_wait is 0)")
        if self._tries >= self.max_tries:
            raise self._give_up(error, handle, f"still limited after {self._tries} waits")
        resets_at = _aware(error.resets_at) if error.resets_at is not None else None
        wake = resets_at + timedelta(seconds=self.buffer) if resets_at is not None else None
        if wake is not None and wake > now:
            needed = (wake - now).total_seconds()
            if needed > self.max_wait:
                raise self._give_up(
                    error,
                    handle,
                    f"that is {format_duration(needed)} away, longer than the {format_duration(self.max_wait)} "
                    "max wait (max_wait / CAW_MAX_WAIT)",
                )
            self._tries += 1
            return WaitPlan(error.provider, kind, resets_at, wake, now, handle)
        if resets_at is not None and self._last_wake is None and (now - resets_at).total_seconds() <= _RECENTLY_PASSED:
            # the announced reset passed before caw heard of it (a CLI that retried on its own, a slow start):
            # it has not been tried since, so one buffer is enough; escalating is for a reset that did not hold
            self._tries += 1
            return WaitPlan(error.provider, kind, resets_at, now + timedelta(seconds=self.buffer), now, handle)
        # no reset time, or one that already passed and still does not hold: escalate, bounded
        step = UNKNOWN_RESET_SCHEDULE[min(self._unknown_tries, len(UNKNOWN_RESET_SCHEDULE) - 1)]
        step = min(step, self.max_wait - self._unknown_waited)
        if step <= 0:
            raise self._give_up(
                error, handle, f"still limited after waiting {format_duration(self._unknown_waited)} in total"
            )
        self._tries += 1
        self._unknown_tries += 1
        self._unknown_waited += step
        return WaitPlan(
            error.provider,
            kind,
            None,
            now + timedelta(seconds=step),
            now,
            handle,
            try_number=self._unknown_tries,
            max_tries=self.max_tries,
        )

    def _sleep_until(self, plan: WaitPlan, error: UsageLimitError, cancel: threading.Event) -> Iterator[LimitWaitEvent]:
        display = self._display()
        display.start(plan)
        next_event = plan.started_at + timedelta(seconds=DEFAULT_PROGRESS_INTERVAL)
        cancelled = cancel.is_set()
        try:
            while not cancelled:
                now = _aware(self.clock())
                left = (plan.wake_at - now).total_seconds()
                if left <= 0:
                    break
                display.tick(now)
                if now >= next_event:
                    next_event = now + timedelta(seconds=DEFAULT_PROGRESS_INTERVAL)
                    yield LimitWaitEvent(
                        provider=plan.provider,
                        resets_at=plan.resets_at,
                        wake_at=plan.wake_at,
                        started_at=plan.started_at,
                        kind=plan.kind,
                        message=progress_line(plan, now).removeprefix("caw: "),
                    )
                cancelled = self.sleeper(max(MIN_SLICE, min(SLICE, left)), cancel) or cancel.is_set()
        except BaseException:  # Ctrl-C (KeyboardInterrupt) or the consumer closed the stream (GeneratorExit)
            display.stop("interrupted")
            raise
        if cancelled:
            display.stop("cancelled")
            self.reset()  # the user ended this episode; a later limit starts afresh
            raise self._cancelled(error, plan.handle)
        display.stop("done")

    def _display(self) -> WaitDisplay:
        """A countdown on a terminal; else (or with an explicit ``out``) lines, for logs."""
        if self.out is None and _stderr_is_tty():
            factory = self.countdown or TtyCountdown
            return factory(clock=self.clock, tz=self.tz)
        return LineDisplay(self.out or _stderr_writer, clock=self.clock, tz=self.tz)

    # ---- errors ------------------------------------------------------------------------------------
    def _give_up(self, error: UsageLimitError, handle: str | None, why: str) -> UsageLimitError:
        when = ""
        if error.resets_at is not None:
            when = f"; it resets at {format_time(_aware(error.resets_at), self.tz)}"
        message = f"{error.detail}{when}; not waiting: {why}; {_resume_hint(handle, later=True)}"
        raised = UsageLimitError(
            error.provider,
            message,
            resets_at=error.resets_at,
            kind=error.kind,
            waitable=error.waitable,
            resume_handle=handle or error.resume_handle,
            exit_code=error.exit_code,
            stderr_tail=error.stderr_tail,
            status=error.status,
            turn=error.turn,
        )
        raised.__cause__ = error
        return raised

    @staticmethod
    def _cancelled(error: UsageLimitError, handle: str | None) -> TurnCancelled:
        return TurnCancelled(
            f"cancelled while waiting for the usage limit to reset; {_resume_hint(handle, later=False)}",
            turn=error.turn,
        )


def _resume_hint(handle: str | None, *, later: bool) -> str:
    if handle:
        return f"resume {'after the reset ' if later else ''}with: caw resume {handle}"
    return "send the message again after the reset"


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _option(value: float | None, env: Mapping[str, str], var: str, default: float) -> float:
    if value is not None:
        return float(value)
    raw = env.get(var, "").strip()
    if not raw:
        return default
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{var}={raw!r}: {exc}") from None


# ---- cooldown memory, for the doctor -----------------------------------------------------------------
def known_limits() -> dict[str, datetime]:
    """Providers with a usage limit caw remembers (from any caw process), and when each resets.

    Read from the cooldown file in caw's data directory; no request is sent. Expired entries are left out.

    >>> known_limits()                                  # doctest: +SKIP
    {'claude': datetime.datetime(2026, 11, 22, 14, 3, tzinfo=datetime.timezone.utc)}
    """
    from caw.state.shared import default_ledger  # with CAW_STATE_URL: the fleet's shared ledger too (issue 19)

    return {name: c.until for name, c in default_ledger().active().items()}


__all__ = [
    "DEFAULT_BUFFER",
    "DEFAULT_MAX_WAIT",
    "UNKNOWN_RESET_SCHEDULE",
    "CountdownFactory",
    "LimitWaitPolicy",
    "LimitWaiter",
    "LineDisplay",
    "TtyCountdown",
    "WaitDisplay",
    "WaitPlan",
    "describe",
    "format_duration",
    "format_time",
    "known_limits",
    "parse_duration",
    "short_time",
    "wait_and_retry",
]
