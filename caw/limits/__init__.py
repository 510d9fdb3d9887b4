"""Limits: text -> ``UsageLimit``. Reads the usage-limit and rate-limit messages of the agent CLIs.

One module per concern: ``normalise`` (escapes, apostrophes, spaces), ``shape`` (where a CLI's message may
open; the tells of prose that only talks about limits), ``classify`` (the opening phrasings; session,
weekly, usage, rate, credits; money rules; noise), ``markers`` (the provider-marker registry the providers fill),
``zones`` (zone names, abbreviations, offsets, the local zone), ``durations`` ("try again in 1h30m",
``retry-after``), ``clock`` (dates and clock times after a reset word, ISO stamps, epochs), and
``detect`` (``UsageLimit``, ``detect_limit``: the pipeline).

Importing the package costs nothing: the names below load their modules on first use (PEP 562).

May import: ``caw.errors``, ``caw.models``, ``caw.events``, ``caw.text``, the standard library, and pydantic
(``detect`` only, for ``UsageLimit``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from caw.lazy import lazy_exports

if TYPE_CHECKING:
    from caw.limits.clock import reset_from_epoch
    from caw.limits.detect import UsageLimit, detect_limit

__all__ = ["UsageLimit", "detect_limit", "reset_from_epoch"]

_HOMES = {
    "UsageLimit": "caw.limits.detect",
    "detect_limit": "caw.limits.detect",
    "reset_from_epoch": "caw.limits.clock",
}


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, __all__)
