"""Codex CLI rollouts: repeated counts, forks and sub-agents, rate-limit windows."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from flightdeck.cli import main
from flightdeck.core.events import Event, Rejected, Usage
from flightdeck.core.pricing import price
from flightdeck.ingest.formats import Codex, FileFormat
from flightdeck.ingest.scan import scan
from tests.ingest.formats.codex_logs import Session, iso, rate_limits, session_meta, token_count, turn_context

T0 = 1_795_000_000.0  # 2026-11-18


def parse_all(data: bytes) -> tuple[list[Event], list[Rejected], FileFormat]:
    f = FileFormat()
    events: list[Event] = []
    rejects: list[Rejected] = []
    for raw in data.splitlines():
        got = f.parse(raw)
        if isinstance(got, Rejected):
            rejects.append(got)
        else:
            events.extend(got)
    return events, rejects, f


def test_a_call_counts_once_and_only_when_the_total_advanced() -> None:
    s = Session("019a-sess", T0)
    s.call(12_127, 6_912, 623, 454, repeats=3)  # Codex re-writes the count on rate-limit updates
    s.call(15_000, 12_000, 80, 0)
    events, rejects, f = parse_all(s.data())
    assert f.name == "codex" and rejects == []
    assert len(events) == 2
    first = events[0]
    assert first.agent == "codex" and first.run == "019a-sess" and first.model == "gpt-5-codex"
    assert first.provider == "openai" and first.tags == {"project": "/home/u/app"}
    # input includes the cached part, output the reasoning
    assert first.usage == Usage(input_tokens=12_127 - 6_912, cache_read_tokens=6_912, output_tokens=623,
                                reasoning_tokens=454)
    expected = price("openai", "gpt-5-codex", first.usage, first.ts, route="direct")  # type: ignore[arg-type]
    assert expected.usd is not None and Decimal(first.cost_usd or "nan") == expected.usd
    assert first.ts == T0 + 7.0


def test_without_last_usage_the_difference_of_totals_counts() -> None:
    lines = [session_meta(T0, "s"), turn_context(T0),
             token_count(T0 + 5, {"input_tokens": 100, "cached_input_tokens": 0, "output_tokens": 10,
                                  "reasoning_output_tokens": 0, "total_tokens": 110}, None),
             token_count(T0 + 9, {"input_tokens": 350, "cached_input_tokens": 200, "output_tokens": 30,
                                  "reasoning_output_tokens": 5, "total_tokens": 380}, None)]
    events, _r, _f = parse_all(b"\n".join(lines))
    assert [e.usage for e in events] == [
        Usage(input_tokens=100, output_tokens=10),
        Usage(input_tokens=50, cache_read_tokens=200, output_tokens=20, reasoning_tokens=5)]


def test_a_fork_replays_its_parent_which_is_not_counted_again(tmp_path: Path) -> None:
    parent = Session("parent", T0)
    for k in range(4):
        parent.call(10_000 + k, 8_000, 300, 100)
    fork_at = T0 + 3600
    # The fork opens with its own meta, the parent's copied, then the parent's lines re-stamped to the fork instant.
    child = [session_meta(fork_at, "child", forked_from="parent"), session_meta(fork_at, "parent")]
    for i, raw in enumerate(parent.lines[1:]):
        row = json.loads(raw)
        row["timestamp"] = iso(fork_at + 0.001 * (i + 1))
        child.append(json.dumps(row).encode())
    total = dict(parent.tot)
    later = {"input_tokens": 20_000, "cached_input_tokens": 15_000, "output_tokens": 50,
             "reasoning_output_tokens": 0, "total_tokens": 20_050}
    total = {k: total[k] + later[k] for k in total}
    child.append(token_count(fork_at + 12, total, later))
    day = tmp_path / "sessions" / "2026" / "11" / "18"
    day.mkdir(parents=True)
    (day / "rollout-2026-11-18T00-00-00-parent.jsonl").write_bytes(parent.data())
    (day / "rollout-2026-11-18T01-00-00-child.jsonl").write_bytes(b"\n".join(child) + b"\n")
    snap = scan([tmp_path / "sessions"], by=("run",)).snapshot()
    assert snap.events == 5  # four parent calls, one of the fork's own
    assert snap.rejected_reasons == {"codex skipped: fork replay": 4}
    runs = {g.key: g.figures.calls for g in snap.breakdowns["run"]}
    assert runs == {"parent": 4, "child": 1}
    assert snap.total.tokens.output_tokens == 4 * 300 + 50


def test_a_subagent_rollout_is_a_fork_too() -> None:
    s = Session("sub", T0, subagent_of="parent")
    s.lines.insert(1, token_count(T0 + 0.002, {"input_tokens": 9, "cached_input_tokens": 0, "output_tokens": 1,
                                               "reasoning_output_tokens": 0, "total_tokens": 10},
                                  {"input_tokens": 9, "cached_input_tokens": 0, "output_tokens": 1,
                                   "reasoning_output_tokens": 0, "total_tokens": 10}))
    s.tot = {"input_tokens": 9, "cached_input_tokens": 0, "output_tokens": 1, "reasoning_output_tokens": 0,
             "total_tokens": 10}
    s.call(100, 0, 10, 0)
    events, rejects, _f = parse_all(s.data())
    assert [e.usage.output_tokens for e in events] == [10]  # type: ignore[union-attr]
    assert [r.reason for r in rejects] == ["codex skipped: fork replay"]


def test_rate_limits_become_plan_windows_with_a_projection() -> None:
    s = Session("s", T0)
    resets = T0 + 4 * 3600
    s.lines.append(token_count(T0, None, None, rate_limits(10.0, 3.0, resets)))  # info null: limits only
    s.call(1000, 0, 10, 0, limits=rate_limits(20.0, 4.0, resets), gap=1800)
    events, _r, f = parse_all(s.data())
    assert len(events) == 1
    windows = f.plan_windows
    primary = windows["codex:codex:primary"]
    assert primary.used_percent == 20.0 and primary.window_minutes == 300 and primary.plan_type == "plus"
    assert primary.resets_at == float(int(resets))
    # 10 points in 1800 s: 80 more points take 4 hours, past the reset: no fill before it.
    doc = primary.to_json()
    assert doc["source"] == "reported" and doc["full_at"] is None
    assert primary.full_at() == T0 + 1800 + 80 * 180
    weekly = windows["codex:codex:secondary"]
    assert weekly.full_at() == T0 + 1800 + 96 * 1800  # two days at this burn: after its reset, so not shown
    assert weekly.to_json()["used_percent"] == 4.0 and weekly.to_json()["full_at"] is None
    s.call(1000, 0, 10, 0, limits=rate_limits(60.0, 5.0, resets), gap=1800)
    _e, _r, f = parse_all(s.data())
    assert f.plan_windows["codex:codex:primary"].to_json()["full_at"] == T0 + 3600 + 40 * 3600 / 50


def test_bad_and_cut_lines_are_rejected_not_raised() -> None:
    p = Codex()
    assert isinstance(p.parse(b'{"timestamp":"2026-11-18T00:00:00.000Z","type":"event_msg","payload":{"type":"tok'),
                      Rejected)
    assert isinstance(p.parse(b'{"type":"event_msg","payload":{"type":"token_count","info":{}}}'), Rejected)
    bad = token_count(T0, {"input_tokens": -4, "total_tokens": 3}, {"input_tokens": "x"})
    assert isinstance(p.parse(bad), (list, Rejected))


def test_report_json_carries_the_reported_windows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = Session("s", T0)
    s.call(1000, 0, 10, 0, limits=rate_limits(20.0, 4.0, T0 + 4 * 3600))
    s.call(1000, 0, 10, 0, limits=rate_limits(35.0, 5.0, T0 + 4 * 3600), gap=900)
    path = tmp_path / "rollout-2026-11-18T00-00-00-s.jsonl"
    path.write_bytes(s.data())
    assert main(["report", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    windows = {w["window"]: w for w in doc["plan_windows"]}
    assert windows["primary"]["source"] == "reported" and windows["primary"]["used_percent"] == 35.0
    assert windows["primary"]["full_at"] == T0 + 907 + 65 * 60  # 15 points in 900 s
    assert windows["secondary"]["window_minutes"] == 10080
