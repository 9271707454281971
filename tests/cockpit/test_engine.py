"""The cockpit on the real ingest engine and a real file: key -> sidecar -> ack -> header."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path

from flightdeck.cockpit.app import FlightdeckApp
from flightdeck.core.control import sidecar_path
from flightdeck.core.events import Event, IdSource, Latency, Usage, decode_command, encode_event
from flightdeck.ingest.engine import Engine

from .conftest import screen_text, wait_for

ids = IdSource()


def call(ts: float, model: str, name: str) -> Event:
    return Event(
        v=1, ts=ts, kind="llm_call", id=ids(), run="r-1", agent="researcher", provider="anthropic",
        route="direct", model=model, name=name, stream=True,
        usage=Usage(input_tokens=1000, output_tokens=200, cache_read_tokens=3000),
        cost_usd="0.004500", cost_status="priced",
        latency_ms=Latency(pre=20.0, ttft=300.0, gen=700.0, post=15.0, total=1035.0),
    )


async def test_real_engine_pause_and_ack(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    now = time.time()
    with log.open("wb") as f:
        for i in range(300):
            f.write(encode_event(call(now - 300 + i, "claude-3-5-sonnet", ("plan", "reflect")[i % 2])))
        f.write(b'{"v":1,"kind":"llm_call"\n')  # a broken line: counted, shown, never fatal
    engine = Engine([log])
    app = FlightdeckApp(engine, refresh_interval=0.05)
    async with app.run_test(size=(160, 48)) as pilot:
        text = await wait_for(app, "300 calls", "claude-3-5-sonnet", "reflect", "1 rejected")
        assert "300 calls" in text and "claude-3-5-sonnet" in text and "reflect" in text, text[:600]
        assert "1 rejected" in text
        await pilot.press("p")
        sidecar = sidecar_path(log)
        lines = sidecar.read_bytes().splitlines()
        assert [decode_command(x).cmd for x in lines] == ["pause"]
        assert stat.S_IMODE(os.stat(sidecar).st_mode) == 0o600
        ref = decode_command(lines[0]).id
        assert "pause sent" in screen_text(app)
        ack = Event(v=1, ts=time.time(), kind="signal_ack", id=ids(), run="r-1", agent="researcher",
                    ref=ref, cmd="pause", state={"paused": True, "models": {}})
        with log.open("ab") as f:
            f.write(encode_event(ack))
        text = await wait_for(app, "pause acked in", "PAUSED")
        assert "pause acked in" in text and "PAUSED" in text
        await pilot.press("p")  # the agent says paused: p now resumes
        assert [decode_command(x).cmd for x in sidecar.read_bytes().splitlines()] == ["pause", "resume"]


async def test_real_engine_header_waiting_then_running_then_finished(tmp_path: Path) -> None:
    log = tmp_path / "later.jsonl"
    engine = Engine([log])
    app = FlightdeckApp(engine, refresh_interval=0.05)
    async with app.run_test(size=(120, 36)):
        text = await wait_for(app, f"○ waiting for {log}")
        assert f"○ waiting for {log}" in text and "✓ running" not in text
        now = time.time()
        with log.open("ab") as f:
            f.write(encode_event(call(now, "claude-3-5-sonnet", "plan")))
        text = await wait_for(app, "● running")
        assert "● running" in text
        end = Event(v=1, ts=time.time(), kind="run_end", id=ids(), run="r-1", agent="researcher")
        with log.open("ab") as f:
            f.write(encode_event(end))
        text = await wait_for(app, "■ finished since")
        assert "■ finished since" in text and "● running" not in text


async def test_real_engine_ack_time_survives_a_filter(tmp_path: Path) -> None:
    import re

    log = tmp_path / "run.jsonl"
    now = time.time()
    with log.open("wb") as f:
        for i in range(200):
            f.write(encode_event(call(now - 200 + i, "claude-3-5-sonnet", "plan")))
    engine = Engine([log])
    app = FlightdeckApp(engine, refresh_interval=0.05)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(app, "200 calls")
        await pilot.press("u")
        ref = decode_command(sidecar_path(log).read_bytes().splitlines()[0]).id
        ack = Event(v=1, ts=time.time(), kind="signal_ack", id=ids(), run="r-1", agent="researcher",
                    ref=ref, cmd="restore", state={"paused": False, "models": {}})
        with log.open("ab") as f:
            f.write(encode_event(ack))
        text = await wait_for(app, "restore acked in")
        before = re.search(r"restore acked in (\d+) ms", text)
        assert before is not None, text[:400]
        await pilot.press("slash", *"model:claude", "enter")
        text = await wait_for(app, "filter model:claude", "200 calls")
        await asyncio.sleep(0.3)  # let the re-read finish and a few frames pass
        text = screen_text(app)
        after = re.search(r"restore acked in (\d+) ms", text)
        assert after is not None and after.group(1) == before.group(1), text[:400]
        assert engine.snapshot().source.events_per_second < 100  # the re-read history is not an arrival rate
