"""The engine's filter-independent bookkeeping: agent states, command round trips, ev/s, call rows."""

from __future__ import annotations

import time
from pathlib import Path

from flightdeck.core.events import Event, IdSource, Latency, Usage, encode_event
from flightdeck.core.snapshot import (
    AGENT_DISCONNECTED,
    AGENT_FINISHED,
    AGENT_PAUSED,
    AGENT_RUNNING,
    AGENT_STALLED,
    Snapshot,
)
from flightdeck.ingest.engine import Engine
from flightdeck.ingest.tracker import LiveTracker, call_row
from tests.ingest.formats.test_formats import cc_line

IDS = IdSource()
# The line format accepts years 2000-2199 only: the tests' small clock readings are offsets from this.
BASE = 1_764_000_000.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return BASE + self.now


def ev(kind: str, ts: float, *, agent: str = "a", run: str = "r-1", **kw: object) -> Event:
    return Event(v=1, ts=BASE + ts, kind=kind, id=IDS(), run=run, agent=agent, **kw)  # type: ignore[arg-type]


def llm(ts: float, *, agent: str = "a", model: str = "gpt-4o", prompt_hash: str | None = None) -> Event:
    return ev("llm_call", ts, agent=agent, provider="openai", route="direct", model=model, name="plan",
              step=3, stream=True, prompt_hash=prompt_hash, service_tier="flex",
              price_source="genai-prices openai/gpt-4o", tags={"team": "search"},
              usage=Usage(input_tokens=100, output_tokens=40, cache_read_tokens=900, cache_write_tokens=50,
                          reasoning_tokens=10, cache_write_1h_tokens=20),
              cost_usd="0.001250", cost_status="priced",
              latency_ms=Latency(pre=10.0, ttft=200.0, gen=300.0, post=5.0, total=515.0))


def write(path: Path, *events: Event) -> None:
    with path.open("ab") as f:
        for e in events:
            f.write(encode_event(e))


def wait_for(cond, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.005)


def row_of(snap: Snapshot, agent: str = "a"):  # type: ignore[no-untyped-def]
    return next(r for r in snap.agent_rows if r.agent == agent)


def test_an_ack_keeps_its_round_trip_and_ev_s_stays_put_when_a_filter_rereads(tmp_path: Path) -> None:
    clock = Clock(1000.0)
    path = tmp_path / "run.jsonl"
    write(path, *(llm(900.0 + i * 0.1, prompt_hash="same") for i in range(500)))
    with Engine([path], clock=clock) as eng:
        assert eng.wait_backfilled(10)
        assert eng.snapshot().source.events_per_second == 0  # history is not an arrival rate
        cmd = eng.send("restore")
        clock.now = 1000.296
        write(path, ev("signal_ack", 1000.29, ref=cmd.id, cmd="restore", state={"paused": False, "models": {}}))
        wait_for(lambda: eng.snapshot().commands[-1].ack_ms is not None)
        assert round(eng.snapshot().commands[-1].ack_ms or 0) == 296
        before = eng.snapshot().source.events_per_second
        clock.now = 1030.0  # the filter is applied half a minute later; the history is read again
        eng.set_filter("model:gpt")
        wait_for(lambda: not eng.backfilling and eng.snapshot().events == 500)
        snap = eng.snapshot()
        assert round(snap.commands[-1].ack_ms or 0) == 296
        assert snap.source.events_per_second <= before
        assert len(snap.recent) == 500 and snap.recent[-1].service_tier == "flex"
        assert snap.recent[-1].prompt_hash_seen == 500  # the re-read did not count the prompts again
        write(path, llm(1030.0, prompt_hash="same"))  # a line written during or after the re-read is new
        wait_for(lambda: eng.snapshot().events == 501)
        assert eng.snapshot().recent[-1].prompt_hash_seen == 501
        eng.set_filter("model:nothing-matches")
        wait_for(lambda: not eng.backfilling and eng.snapshot().events == 0 and not eng.snapshot().recent)
        assert eng.snapshot().recent == () and round(eng.snapshot().commands[-1].ack_ms or 0) == 296


def test_states_waiting_running_finished_stalled(tmp_path: Path) -> None:
    clock = Clock(2000.0)
    path = tmp_path / "later.jsonl"
    eng = Engine([path], clock=clock)
    eng.backfill()
    snap = eng.snapshot()
    assert snap.waiting_for == (str(path),) and snap.agent_rows == ()
    write(path, ev("run_start", 1990.0), llm(1995.0), llm(1999.0, agent="b"))
    eng._tailer.rescan()  # type: ignore[union-attr]
    eng.backfill()
    snap = eng.snapshot()
    assert snap.waiting_for == ()
    assert row_of(snap).status == AGENT_RUNNING and row_of(snap).source == str(path)
    write(path, ev("run_end", 2001.0))
    eng.backfill()
    clock.now = 2040.0
    snap = eng.snapshot()
    assert row_of(snap).status == AGENT_FINISHED and row_of(snap).since == BASE + 2001.0
    assert row_of(snap, "b").status == AGENT_STALLED and row_of(snap, "b").since == BASE + 1999.0


def test_who_paused_it_the_agents_rule_or_our_key(tmp_path: Path) -> None:
    clock = Clock(3000.0)
    path = tmp_path / "run.jsonl"
    write(path, llm(2990.0),
          ev("alert", 2991.0, rule="loop", metric="loop", value=4.0, threshold=4.0, action="pause"),
          ev("signal_ack", 2991.0, ref="l-abc-1", cmd="pause", state={"paused": True, "models": {}}))
    eng = Engine([path], clock=clock)
    eng.backfill()
    a = row_of(eng.snapshot())
    assert (a.status, a.paused_by, a.since) == (AGENT_PAUSED, "rule:loop", BASE + 2991.0)
    cmd = eng.send("resume")
    write(path, ev("signal_ack", 3001.0, ref=cmd.id, cmd="resume", state={"paused": False, "models": {}}))
    eng.backfill()
    assert row_of(eng.snapshot()).status == AGENT_RUNNING
    cmd = eng.send("pause")
    write(path, ev("signal_ack", 3002.0, ref=cmd.id, cmd="pause", state={"paused": True, "models": {}}))
    eng.backfill()
    assert row_of(eng.snapshot()).paused_by == "key"
    write(path, ev("signal_ack", 3003.0, ref="c-elsewhere", cmd="pause", state={"paused": True, "models": {}},
                   agent="b"))
    eng.backfill()
    assert row_of(eng.snapshot(), "b").paused_by == "another monitor or the shell"
    # `flightdeck pause run.jsonl` wrote this one: its origin is read back from the sidecar.
    from flightdeck.core.control import append_command, new_command, sidecar_path

    shell = new_command("pause", origin="shell")
    append_command(sidecar_path(path), shell)
    write(path, ev("signal_ack", 3004.0, ref=shell.id, cmd="pause", state={"paused": True, "models": {}},
                   agent="c"))
    eng.backfill()
    assert row_of(eng.snapshot(), "c").paused_by == "shell"


def test_an_agent_cli_log_is_watch_only(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    path.write_bytes(cc_line() + b"\n")
    eng = Engine([path])
    eng.backfill()
    rows = eng.snapshot().agent_rows
    assert rows and all(r.watch_only for r in rows)


def test_a_socket_agent_that_hung_up_is_disconnected(tmp_path: Path) -> None:
    from flightdeck import Recorder

    sock = tmp_path / "s" / "fd.sock"
    with Engine(socket_path=sock) as eng:
        rec = Recorder(socket=sock, run="r-9", agent="sock-agent", stats=False)
        with rec.call(provider="openai", model="gpt-4o") as c:
            c.sent()
            c.received()
            c.set_usage({"prompt_tokens": 10, "completion_tokens": 2})
        wait_for(lambda: any(r.agent == "sock-agent" for r in eng.snapshot().agent_rows))
        assert row_of(eng.snapshot(), "sock-agent").status == AGENT_RUNNING
        rec.close()
        wait_for(lambda: row_of(eng.snapshot(), "sock-agent").status in (AGENT_DISCONNECTED, AGENT_FINISHED))


def test_call_rows_carry_the_detail_and_the_prompt_hash_count() -> None:
    tracker = LiveTracker(Clock(0.0))
    events = [llm(1.0, prompt_hash="h1"), llm(2.0, prompt_hash="h1"), llm(3.0, prompt_hash="h2")]
    tracker.observe(events)
    tracker.view(events)
    rows = tracker.recent()
    assert [r.prompt_hash_seen for r in rows] == [2, 2, 1]
    r = rows[0]
    assert (r.cache_write_tokens, r.cache_write_1h_tokens, r.reasoning_tokens) == (50, 20, 10)
    assert (r.pre_ms, r.ttft_ms, r.gen_ms, r.post_ms, r.total_ms) == (10.0, 200.0, 300.0, 5.0, 515.0)
    assert r.tags == (("team", "search"),) and r.price_source == "genai-prices openai/gpt-4o" and r.step == 3
    assert call_row(events[0], None).cost_usd is None


def test_stage_windows_follow_the_window_not_the_run() -> None:
    tracker = LiveTracker(Clock(0.0))
    slow = ev("llm_call", 100.0, name="observe", latency_ms=Latency(pre=5000.0, total=5100.0))
    fast = [ev("llm_call", 500.0 + i, name="observe", latency_ms=Latency(pre=10.0, total=110.0))
            for i in range(5)]
    tracker.view([slow, *fast])
    windows = tracker.stage_windows(now=BASE + 600.0)
    five = windows[300].groups[0].figures
    assert five.calls == 5 and five.stages["pre"].mean == 10.0
    fifteen = windows[900].groups[0].figures
    assert fifteen.calls == 6 and fifteen.stages["pre"].mean == (5000.0 + 50.0) / 6


def test_fine_series_fits_a_young_run() -> None:
    tracker = LiveTracker(Clock(0.0))
    tracker.view([llm(1000.0 + i) for i in range(60)])
    points, step = tracker.fine_series(now=BASE + 1060.0, first_ts=BASE + 1000.0)
    assert step == 1 and len(points) == 61 and sum(p.calls for p in points) == 60
    tracker.view([llm(1000.0 + i * 10) for i in range(60)])
    points, step = tracker.fine_series(now=BASE + 1600.0, first_ts=BASE + 1000.0)
    assert step == 5 and len(points) <= 121
    assert tracker.fine_series(now=BASE + 1000.0 + 3600, first_ts=BASE + 1000.0) == ((), 0)  # an hour-long run: minutes


def test_a_monitor_rule_steers_the_agent_that_tripped_it_not_the_fleet(tmp_path: Path) -> None:
    from flightdeck.core.control import SidecarReader, sidecar_path

    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "loop"\ntype = "loop"\nthreshold = 3\nwindow = "2m"\naction = "pause"\n'
                     '[[rule]]\nname = "spend"\ntype = "spend"\nthreshold = 0.002\nwindow = "10m"\n'
                     'action = "pause"\n')
    path = tmp_path / "fleet.jsonl"
    path.write_bytes(b"")
    now = time.time()
    with Engine([path], rules_path=rules) as eng:
        assert eng.wait_backfilled(10)
        write(path, llm(now, agent="calm", prompt_hash="a"), *(llm(now + i, agent="looper", prompt_hash="same")
                                                              for i in range(3)))
        reader = SidecarReader(sidecar_path(path))
        got: list = []
        wait_for(lambda: got.extend(reader.poll()) or len(got) >= 2)
    by_origin = {c.origin: c for c in got}
    assert by_origin["rule:loop"].target == {"run": "r-1", "agent": "looper"}
    assert by_origin["rule:spend"].target is None  # a spend limit covers everything counted


def test_a_receiver_can_mark_its_agents_watch_only() -> None:
    eng = Engine()
    eng._count([llm(time.time(), agent="otel-agent")], [], history=False, source=("otlp 127.0.0.1:4318", True))
    row = row_of(eng.snapshot(), "otel-agent")
    assert row.watch_only and row.source == "otlp 127.0.0.1:4318"
