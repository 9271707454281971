"""Guardrail rules: loading, each rule type, cooldown and hysteresis."""

from __future__ import annotations

from pathlib import Path

import pytest

from flightdeck.core.events import Event, Latency, Usage
from flightdeck.core.rules import Firing, RuleEngine, RuleError, RuleSet, parse_duration

REPO = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def call(ts: float, *, cost: str | None = None, total: float | None = None, prompt: int = 100,
         cache_read: int = 0, hash_: str | None = None, kind: str = "llm_call") -> Event:
    return Event(
        v=1, ts=ts, kind=kind, id=f"e{ts}", run="r", provider="openai", model="m",
        usage=Usage(input_tokens=prompt - cache_read, cache_read_tokens=cache_read, output_tokens=5),
        cost_usd=cost, latency_ms=Latency(total=total), prompt_hash=hash_,
    )


def engine(rule: dict, clock: Clock | None = None) -> tuple[RuleEngine, Clock]:
    clock = clock or Clock()
    return RuleEngine(RuleSet.from_dict({"rule": [rule]}), clock=clock), clock


def test_parse_duration() -> None:
    assert parse_duration("10m") == 600
    assert parse_duration("30s") == 30
    assert parse_duration("2h") == 7200
    assert parse_duration(45) == 45
    assert parse_duration("250ms") == 0.25
    with pytest.raises(ValueError):
        parse_duration("ten minutes")


def test_spend_window_is_exact_and_slides() -> None:
    eng, clock = engine({"name": "spend", "type": "spend", "threshold": 2.00, "window": "10m",
                         "action": "pause", "cooldown": 0})
    t = clock.t
    # 0.1 + 0.2 style sums must be exact: 20 x 0.1 = 2.0 is not above 2.00.
    fired: list[Firing] = []
    for i in range(20):
        fired += eng.observe(call(t + i, cost="0.100000"))
    assert fired == []
    out = eng.observe(call(t + 21, cost="0.000001"))
    assert len(out) == 1
    f = out[0]
    assert (f.rule, f.metric, f.action, f.threshold) == ("spend", "spend", "pause", 2.0)
    assert f.value == pytest.approx(2.000001)
    assert "2.00 USD in 10m" in f.message


def test_spend_old_costs_leave_the_window() -> None:
    eng, clock = engine({"name": "s", "type": "spend", "threshold": 1, "window": 60, "cooldown": 0})
    t = clock.t
    assert eng.observe(call(t, cost="0.9")) == []
    # 61 s later the first 0.9 has left the window: 0.5 alone does not breach.
    assert eng.observe(call(t + 61, cost="0.5")) == []
    assert eng.observe(call(t + 62, cost="0.6"))  # 1.1 within the last 60 s


def test_hysteresis_fires_once_while_hovering() -> None:
    eng, _ = engine({"name": "tok", "type": "token_spike", "threshold": 1000, "cooldown": 0,
                     "clear": 500})
    sizes = [1200, 1100, 900, 1300, 400, 1500]
    fired = [bool(eng.observe(call(1000.0 + i, prompt=n))) for i, n in enumerate(sizes)]
    # 1200 fires; 1100, 900, 1300 are not back under 500, so no flapping; 400 re-arms; 1500 fires.
    assert fired == [True, False, False, False, False, True]


def test_cooldown_holds_even_when_rearmed() -> None:
    eng, clock = engine({"name": "tok", "type": "token_spike", "threshold": 1000, "cooldown": "1m"})
    assert eng.observe(call(1.0, prompt=2000))
    assert eng.observe(call(2.0, prompt=10)) == []  # re-arms (below 900)
    clock.t += 30
    assert eng.observe(call(3.0, prompt=2000)) == []  # within cooldown
    clock.t += 31
    assert eng.observe(call(4.0, prompt=2000))  # cooldown passed, still armed


def test_latency_p90_over_last_n_calls() -> None:
    eng, _ = engine({"name": "slow", "type": "latency_p90", "threshold": 1000, "calls": 10,
                     "min_calls": 10, "action": "downgrade", "to": {"a": "b"}, "cooldown": 0})
    out: list[Firing] = []
    for i in range(9):
        out += eng.observe(call(float(i), total=100.0))
    assert out == []  # fewer than min_calls
    assert eng.observe(call(9.0, total=5000.0)) == []  # 1 slow of 10: p90 is still 100
    assert eng.observe(call(10.0, total=5000.0))[0].to == {"a": "b"}  # 2 of 10 slow: p90 = 5000
    # The window slides: after 10 fast calls p90 is back to 100 and the rule re-arms.
    for i in range(10):
        assert eng.observe(call(11.0 + i, total=100.0)) == []
    fired = []
    for i in range(2):
        fired += eng.observe(call(30.0 + i, total=4000.0))
    assert [f.value for f in fired] == [4000.0]


def test_loop_same_prompt_hash_k_times_within_window() -> None:
    eng, _ = engine({"name": "loop", "type": "loop", "threshold": 3, "window": "1m", "action": "pause",
                     "cooldown": 0})
    assert eng.observe(call(0.0, hash_="h")) == []
    assert eng.observe(call(1.0, hash_="other")) == []
    assert eng.observe(call(2.0, hash_="h")) == []
    out = eng.observe(call(3.0, hash_="h"))
    assert [(f.action, f.value) for f in out] == [("pause", 3.0)]


def test_loop_repeats_spread_beyond_window_do_not_fire() -> None:
    eng, _ = engine({"name": "loop", "type": "loop", "threshold": 3, "window": 10, "cooldown": 0})
    out = []
    for i in range(10):
        out += eng.observe(call(i * 6.0, hash_="h"))  # at most 2 within any 10 s
    assert out == []


def test_cache_hit_rate_falling() -> None:
    eng, _ = engine({"name": "cache", "type": "cache_hit_rate", "threshold": 0.5, "calls": 4,
                     "min_prompt_tokens": 100, "cooldown": 0})
    out = []
    for i in range(4):
        out += eng.observe(call(float(i), prompt=1000, cache_read=900))
    assert out == []
    # The cache busts: hit rate over the last 4 calls falls 0.9 -> 0.675 -> 0.45.
    assert eng.observe(call(4.0, prompt=1000, cache_read=0)) == []
    out = eng.observe(call(5.0, prompt=1000, cache_read=0))
    assert len(out) == 1 and out[0].value == pytest.approx(0.45)
    assert "cache hit rate 45%" in out[0].message


def test_non_call_events_are_ignored() -> None:
    eng, _ = engine({"name": "tok", "type": "token_spike", "threshold": 1})
    ack = Event(v=1, ts=1.0, kind="signal_ack", id="x", run="r")
    assert eng.observe(ack) == []


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ({"type": "spend", "threshold": 1}, "field 'name' is required"),
        ({"name": "x", "type": "bogus", "threshold": 1}, "field 'type'"),
        ({"name": "x", "type": "spend", "threshold": 1, "action": "explode"}, "field 'action'"),
        ({"name": "x", "type": "spend"}, "field 'threshold' is required"),
        ({"name": "x", "type": "spend", "threshold": "lots"}, "field 'threshold' must be a number"),
        ({"name": "x", "type": "spend", "threshold": 1, "window": "forever"}, "field 'window'"),
        ({"name": "x", "type": "spend", "threshold": 1, "colour": "red"}, "unknown field 'colour'"),
        ({"name": "x", "type": "cache_hit_rate", "threshold": 40}, "between 0 and 1"),
        ({"name": "x", "type": "loop", "threshold": 2.5}, "whole number"),
        ({"name": "x", "type": "spend", "threshold": 1, "to": {"a": "b"}}, "only for action"),
    ],
)
def test_bad_rule_names_the_field(table: dict, needle: str) -> None:
    with pytest.raises(RuleError) as info:
        RuleSet.from_dict({"rule": [table]}, source="r.toml")
    assert needle in str(info.value)
    assert str(info.value).startswith("r.toml: rule[0]")


def test_load_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text("[[rule]]\nname = 'x'\ntype = 'spend'\nthreshold = = 2\n")
    with pytest.raises(RuleError, match=r"rules\.toml: not valid TOML"):
        RuleSet.load(bad)
    with pytest.raises(RuleError, match="cannot read"):
        RuleSet.load(tmp_path / "missing.toml")
    dup = tmp_path / "dup.toml"
    dup.write_text("[[rule]]\nname='a'\ntype='spend'\nthreshold=1\n[[rule]]\nname='a'\ntype='loop'\nthreshold=3\n")
    with pytest.raises(RuleError, match=r"dup\.toml: rule\[1\].*used twice"):
        RuleSet.load(dup)


def test_demo_rules_file_loads() -> None:
    path = REPO / "demo" / "rules.toml"
    if not path.exists():
        pytest.skip("demo/rules.toml not written yet")
    rules = RuleSet.load(path)
    assert {r.type for r in rules.rules} == {"spend", "latency_p90", "token_spike", "loop", "cache_hit_rate"}


def test_cold_cache_at_start_does_not_alert() -> None:
    eng, _ = engine({"name": "cache", "type": "cache_hit_rate", "threshold": 0.3, "calls": 5,
                     "min_prompt_tokens": 100})
    out = []
    # The first calls write the cache (hit rate 0); by the time the window is full it is warm.
    for i, read in enumerate([0, 0, 900, 900, 900, 900]):
        out += eng.observe(call(float(i), prompt=1000, cache_read=read))
    assert out == []
