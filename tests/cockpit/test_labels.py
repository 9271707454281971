"""Every label says what is true, in the panels' units: alerts, windows, shares, plurals, '+N more'."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from flightdeck.cockpit.app import FlightdeckApp
from flightdeck.cockpit.format import Palette, plural
from flightdeck.cockpit.phrases import alert_text, condition, merge_alerts
from flightdeck.cockpit.testing import FIXED_NOW, FakeFeed, sample_snapshot
from flightdeck.cockpit.widgets.charts import chart_points
from flightdeck.cockpit.widgets.models import money_line, route_label
from flightdeck.core.snapshot import AgentRow, AlertRow, Figures, Group, MinutePoint, Snapshot

from .conftest import fixed_clock, screen_text

P = Palette()


def alert(metric: str, value: float, threshold: float, *, source: str = "agent", ts: float = FIXED_NOW,
          message: str | None = None, action: str = "alert", rule: str = "r") -> AlertRow:
    return AlertRow(ts=ts, rule=rule, metric=metric, value=value, threshold=threshold, action=action,
                    source=source, run="r-1", agent="a", message=message)


def test_each_rule_reads_the_way_it_fires() -> None:
    assert condition(alert("cache_hit_rate", 0.252986, 0.3)) == "cache hit 25% < 30%"
    loop = alert("loop", 4, 4, message="same prompt 4 times in 2m (limit 4)")
    assert condition(loop) == "same prompt 4× in 2m (limit 4)"
    assert condition(alert("spend", 2.3112, 2.0, message="spend 2.31 USD in 10m > 2.00")) == \
        "spend $2.31 in 10m > $2.00"
    latency = alert("latency_p90", 12500.0, 12000.0, message="p90 total 12500 ms over last 20 calls > 12000 ms")
    assert condition(latency) == "p90 total 12.5s > 12.0s"
    assert condition(alert("token_spike", 81234, 60000)) == "prompt 81.2k tokens > 60k"
    assert condition(alert("new_metric", 1.5, 2.0)) == "new_metric 1.5 (limit 2)"  # no direction claimed


def test_one_firing_seen_by_the_agent_and_the_monitor_is_one_row() -> None:
    rows = [alert("loop", 4, 4, action="pause", rule="loop", message="same prompt 4 times in 2m (limit 4)"),
            alert("loop", 4, 4, action="pause", rule="loop", source="monitor", ts=FIXED_NOW + 0.4,
                  message="same prompt 4 times in 2m (limit 4)")]
    merged = merge_alerts(rows)
    assert len(merged) == 1 and merged[0].origins == ("agent", "monitor")
    assert alert_text(merged[0]) == "loop: same prompt 4× in 2m (limit 4) → paused (agent+monitor)"
    late_monitor = alert("loop", 4, 4, action="pause", rule="loop", source="monitor", ts=FIXED_NOW + 20)
    assert len(merge_alerts([rows[0], late_monitor])) == 1  # the monitor's window fired a little later
    later = [*rows, alert("loop", 5, 4, action="pause", rule="loop", ts=FIXED_NOW + 300)]
    assert len(merge_alerts(later)) == 2  # a later firing is its own row


def test_plurals() -> None:
    assert plural(1, "call") == "1 call" and plural(2, "call") == "2 calls" and plural(0, "alert") == "0 alerts"
    assert plural(12_300, "call") == "12.3k calls"


def test_route_and_model_shares_say_what_they_are_a_share_of() -> None:
    assert route_label(Decimal("1")) == "cost by route "
    assert route_label(Decimal(0)) == "calls by route "
    free = Snapshot(now=FIXED_NOW, total=Figures(calls=4),
                    breakdowns={"model": (Group("model", "llama3", Figures(calls=3)),
                                          Group("model", "qwen", Figures(calls=1)))})
    assert money_line(free, 80, P).plain == "calls by model llama3 75% · qwen 25%"
    snap = sample_snapshot()
    assert money_line(snap, 40, P).plain == "cost by model claude-3-5-sonnet 98% +2"


def test_a_young_run_charts_in_seconds_an_old_one_in_minutes() -> None:
    fine = tuple(MinutePoint(start=FIXED_NOW - 60 + i, calls=1) for i in range(61))
    young = replace(sample_snapshot(), fine_series=fine, fine_step=1)
    points, per = chart_points(young)
    assert len(points) == 61 and per == "/1s"
    points, per = chart_points(sample_snapshot())
    assert len(points) == 60 and per == "/min"


async def test_charts_label_their_bins() -> None:
    fine = tuple(MinutePoint(start=FIXED_NOW - 300 + 5 * i, calls=1, cost_usd=Decimal("0.01"),
                             cache_hit_rate=0.5, ttft_p90=500.0, ttft_p50=300.0) for i in range(61))
    app = FlightdeckApp(FakeFeed(replace(sample_snapshot(), fine_series=fine, fine_step=5)), clock=fixed_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "peak $0.0100/5s" in text and " hit/5s" in text and " p90/5s" in text


async def test_w_moves_the_stages_window_and_the_blame_follows() -> None:
    app = FlightdeckApp(FakeFeed(sample_snapshot()), clock=fixed_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        stages = app.query_one("#stages")
        assert stages.border_title == "Stages per step · last 5m (w)"
        plan = next(ln for ln in screen_text(app).splitlines() if "│ plan " in ln.replace("││", "│"))
        assert "✗ your code/pre" in plan  # the slow vector store of the last minutes
        await pilot.press("w")
        assert stages.border_title == "Stages per step · last 15m (w)"
        await pilot.press("w", "w")
        await pilot.pause()
        assert stages.border_title == "Stages per step · run (w)"
        act = next(ln for ln in screen_text(app).splitlines() if "│ act " in ln.replace("││", "│"))
        assert "✗ your code/post" in act  # over the whole run another step costs the most


async def test_no_panel_drops_rows_silently() -> None:
    snap = sample_snapshot(models=tuple(f"model-{i}" for i in range(12)))
    names = tuple(Group("name", f"step-{i}", g.figures) for i, g in
                  enumerate(snap.breakdowns["name"] * 4))
    snap = replace(snap, breakdowns={**snap.breakdowns, "name": names}, stage_windows={})
    app = FlightdeckApp(FakeFeed(snap), clock=fixed_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "more models ($0.00)" in text
        assert "more steps (slower ones first)" in text
        assert "Alerts · commands · rejects" in text


async def test_the_header_never_wraps_at_80_columns() -> None:
    long = replace(sample_snapshot(paused=True, paused_by="rule:a-very-long-rule-name-indeed"),
                   dropped=12, source=replace(sample_snapshot().source, description="/a/very/long/path/" * 5))
    app = FlightdeckApp(FakeFeed(long), clock=fixed_clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("p")
        await pilot.pause()
        lines = screen_text(app).splitlines()
        assert lines[0].rstrip().endswith("04:00:00")
        assert lines[1].lstrip().startswith("⏸ PAUSED by rule:a-very-long-rule-name-indeed")
        assert lines[2].startswith("╭")  # the panels start on the third line: two header lines, no more
        assert app.query_one("#header").size.height == 2


async def test_p_on_watch_only_agents_says_why_it_cannot() -> None:
    rows = (AgentRow("sess-1", "claude-code", watch_only=True, source="~/.claude/projects/x/sess-1.jsonl"),)
    feed = FakeFeed(replace(sample_snapshot(), agent_rows=rows))
    app = FlightdeckApp(feed, clock=fixed_clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert "● running (watch-only)" in screen_text(app)
        await pilot.press("p")
        await pilot.pause()
        assert feed.sent == []
        messages = [n.message for n in app._notifications]
        assert any(m.startswith("cannot pause: 1 agent is only watched (read from ~/.claude/") for m in messages)


async def test_at_80x24_the_spend_panel_keeps_its_budget_and_unpriced_warning() -> None:
    app = FlightdeckApp(FakeFeed(sample_snapshot()), clock=fixed_clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "▲ 126 unpriced calls not in totals" in text and "$1.62/$2.00 10m" in text
        assert "peak $0.3300/min" in text and "run $18.80" in text
