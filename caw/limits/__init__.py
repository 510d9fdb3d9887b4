"""Limits: text -> ``UsageLimit``. Reads the usage-limit and rate-limit messages of the agent CLIs.

Owns the detector (``detect_limit``): normalising the text, classifying it (session, weekly, usage,
rate, credits), and reading the reset time from epochs, durations and clock times in any zone.

May import: ``caw.errors``, ``caw.models``, ``caw.events``, ``caw.text`` and the standard library.
"""

from caw.limits.detect import UsageLimit, detect_limit, reset_from_epoch

__all__ = ["UsageLimit", "detect_limit", "reset_from_epoch"]
