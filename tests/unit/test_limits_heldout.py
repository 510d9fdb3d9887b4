"""A held-out check of caw.limits: a second corpus, generated apart from the golden one.

tests/fixtures/limits/heldout.jsonl is written by make_heldout.py next to it: other zones, prefixes,
tails and wordings, expectations computed from the instant each message was built from, and prose
traps assembled from parts. The bar is the issue's (issue 13 item 1): at least 98% read exactly (to the
minute, with kind, waitable and provider), no prose read as a limit, no money read as waitable.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from caw.limits import UsageLimit, detect_limit

HELDOUT = Path(__file__).resolve().parents[1] / "fixtures" / "limits" / "heldout.jsonl"


def _cases() -> list[dict[str, Any]]:
    with HELDOUT.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _reading(found: UsageLimit | None) -> dict[str, Any] | None:
    if found is None:
        return None
    resets_at = found.resets_at.replace(second=0, microsecond=0) if found.resets_at else None
    return {
        "resets_at": resets_at.isoformat().replace("+00:00", "Z") if resets_at else None,
        "waitable": found.waitable,
        "kind": found.kind,
        "provider": found.provider,
    }


def _minute(expect: dict[str, Any] | None) -> dict[str, Any] | None:
    if expect is None or expect["resets_at"] is None:
        return expect
    return {**expect, "resets_at": _instant(expect["resets_at"]).replace(second=0).isoformat().replace("+00:00", "Z")}


def test_heldout_corpus_meets_the_bar() -> None:
    cases = _cases()
    traps = [c for c in cases if c["expect"] is None]
    money = [c for c in cases if c["expect"] is not None and c["expect"]["kind"] == "credits"]
    assert len(cases) >= 200 and len(traps) >= 60 and len(money) >= 10
    wrong, prose_read_as_limit, money_waitable = [], [], []
    for case in cases:
        found = detect_limit(case["text"], now=_instant(case["now"]), tz=case["tz"])
        if _reading(found) != _minute(case["expect"]):
            wrong.append((case["id"], _reading(found), case["expect"]))
        if case["expect"] is None and found is not None:
            prose_read_as_limit.append(case["id"])
        if case in money and found is not None and found.waitable:
            money_waitable.append(case["id"])
    assert prose_read_as_limit == []
    assert money_waitable == []
    assert len(wrong) <= 0.02 * len(cases), wrong
