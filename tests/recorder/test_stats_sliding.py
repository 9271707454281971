"""``rec.stats()`` goes through the Aggregator's sliding windows (SPEC 5.1)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from flightdeck import Recorder

T0 = 1_764_216_000.0  # a minute boundary


def test_stats_slide_with_the_clock(tmp_path: Path) -> None:
    now = [T0 + 10.0]
    rec = Recorder(tmp_path / "run.jsonl", run="r-1", clock=lambda: now[0])
    try:
        with rec.call(provider="openai", model="gpt-4o") as call:
            call.set_usage({"prompt_tokens": 10, "completion_tokens": 2})
            call.set_cost("0.25")
        now[0] = T0 + 65.0  # 55 s later, in the next calendar minute: still in the last 60 s
        s = rec.stats(60)
        assert s.calls == 1 and s.spend_usd == Decimal("0.250000")
        now[0] = T0 + 71.0  # 61 s later: out
        assert rec.stats(60).calls == 0
        assert rec.stats(300).calls == 1
    finally:
        rec.close()
