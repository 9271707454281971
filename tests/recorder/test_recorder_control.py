"""The recorder obeys the sidecar: pause, resume, downgrade, restore, targets, restarts."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from rec_helpers import of_kind, read_events

from flightdeck.core.control import append_command, new_command, sidecar_path
from flightdeck.core.events import Usage
from flightdeck.recorder.recorder import Paused, Recorder


def send(log: Path, cmd: str, **kw: object) -> str:
    command = new_command(cmd, **kw)  # type: ignore[arg-type]
    append_command(sidecar_path(log), command)
    return command.id


def one_call(rec: Recorder, model: str = "gpt-4o") -> None:
    with rec.call(provider="openai", model=model) as c:
        c.set_usage(Usage(input_tokens=1))


def test_pause_waits_until_resume_then_calls_again(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    rec = Recorder(log, agent="a", poll_interval=0.005)
    one_call(rec)
    pause_id = send(log, "pause", reason="spend")
    assert rec.paused
    entered = threading.Event()

    def agent() -> None:
        one_call(rec)
        entered.set()

    worker = threading.Thread(target=agent)
    worker.start()
    # While paused the call is held at the door: no llm_call is written.
    assert not entered.wait(0.2)
    assert len(of_kind(log, "llm_call")) == 1
    resume_id = send(log, "resume")
    worker.join(10)
    assert entered.is_set()
    rec.close()
    events = read_events(log)
    kinds = [(e.kind, e.ref) for e in events if e.kind in ("llm_call", "signal_ack")]
    assert kinds == [("llm_call", None), ("signal_ack", pause_id), ("signal_ack", resume_id), ("llm_call", None)]
    acks = of_kind(log, "signal_ack")
    assert acks[0].state == {"paused": True, "models": {}} and acks[0].cmd == "pause"
    assert acks[1].state == {"paused": False, "models": {}}
    assert not rec.paused


async def test_async_pause_waits_without_blocking_the_loop(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    rec = Recorder(log, poll_interval=0.005)
    send(log, "pause")
    order: list[str] = []

    async def call() -> None:
        async with rec.call(provider="openai", model="gpt-4o") as c:
            c.set_usage(Usage(input_tokens=1))
        order.append("call")

    async def operator() -> None:
        await asyncio.sleep(0.05)
        order.append("resume")
        send(log, "resume")

    await asyncio.gather(call(), operator())
    rec.close()
    assert order == ["resume", "call"]
    assert len(of_kind(log, "llm_call")) == 1


def test_on_pause_raise(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    rec = Recorder(log, on_pause="raise")
    send(log, "pause", reason="loop")
    with pytest.raises(Paused, match="agent paused: loop"):
        one_call(rec)
    rec.close()
    assert of_kind(log, "llm_call") == []


def test_pause_timeout_gives_up(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    rec = Recorder(log, pause_timeout=0.05, poll_interval=0.005)
    send(log, "pause")
    with pytest.raises(Paused, match=r"gave up after 0\.05 s"):
        one_call(rec)
    rec.close()


def test_downgrade_ladder_mapping_and_restore(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    ladder = {"claude-opus-4": "claude-sonnet-4", "claude-sonnet-4": "claude-haiku-4", "gpt-4o": "gpt-4o-mini"}
    rec = Recorder(log, downgrades=ladder)
    assert rec.model("claude-opus-4") == "claude-opus-4"
    ids = [send(log, "downgrade")]
    assert rec.model("claude-opus-4") == "claude-sonnet-4"
    assert rec.model("gpt-4o") == "gpt-4o-mini"
    ids.append(send(log, "downgrade"))
    assert rec.model("claude-opus-4") == "claude-haiku-4"
    ids.append(send(log, "downgrade"))  # nothing lower: acknowledged with the reason
    assert rec.model("claude-opus-4") == "claude-haiku-4"
    ids.append(send(log, "restore"))
    assert rec.model("claude-opus-4") == "claude-opus-4"
    ids.append(send(log, "downgrade", to={"gpt-4o": "gpt-3.5-turbo"}))
    assert rec.model("gpt-4o") == "gpt-3.5-turbo"
    assert rec.model("claude-opus-4") == "claude-opus-4"
    rec.poll()
    rec.close()
    acks = of_kind(log, "signal_ack")
    assert [a.ref for a in acks] == ids
    assert acks[0].state["models"] == {"claude-opus-4": "claude-sonnet-4", "gpt-4o": "gpt-4o-mini"}
    assert acks[1].state["models"] == {"claude-opus-4": "claude-haiku-4", "gpt-4o": "gpt-4o-mini"}
    assert acks[1].message is None
    assert acks[2].message == "already at the lowest rung for claude-opus-4, gpt-4o"
    assert acks[3].state["models"] == {"claude-opus-4": "claude-opus-4", "gpt-4o": "gpt-4o"}
    assert acks[4].state["models"] == {"claude-opus-4": "claude-opus-4", "gpt-4o": "gpt-3.5-turbo"}


def test_downgrade_without_ladder_is_acknowledged_with_reason(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    rec = Recorder(log)
    rec.model("gpt-4o")
    send(log, "downgrade")
    rec.poll()
    rec.close()
    ack = of_kind(log, "signal_ack")[0]
    assert "no downgrade ladder" in ack.message
    assert ack.state == {"paused": False, "models": {"gpt-4o": "gpt-4o"}}


def test_commands_for_other_agents_are_ignored(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    rec = Recorder(log, run="r-1", agent="researcher")
    send(log, "pause", target={"agent": "writer"})
    send(log, "pause", target={"run": "r-2"})
    assert not rec.paused
    mine = send(log, "pause", target={"agent": "researcher", "run": "r-1"})
    assert rec.paused
    rec.close()
    assert [a.ref for a in of_kind(log, "signal_ack")] == [mine]


def test_restart_does_not_apply_acknowledged_commands_twice(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    first = Recorder(log, agent="a", downgrades={"big": "small"})
    first.model("big")
    send(log, "downgrade")
    send(log, "pause")
    assert first.paused
    first.close()
    # Written while the agent is down: never acknowledged, so the next start obeys it.
    waiting = send(log, "resume")
    stale = send(log, "downgrade", now=time.time() - 3600)  # an hour old and never acked: history
    second = Recorder(log, agent="a", downgrades={"big": "small"})
    assert not second.paused
    assert second.model("big") == "big"
    second.close()
    acks = of_kind(log, "signal_ack")
    assert [a.cmd for a in acks] == ["downgrade", "pause", "resume"]
    assert acks[-1].ref == waiting
    assert stale not in {a.ref for a in acks}


def test_sidecar_check_is_a_stat_when_quiet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "r.jsonl"
    send(log, "pause", now=time.time() - 3600)  # the sidecar exists, with a stale command
    rec = Recorder(log)
    opened: list[str] = []
    import builtins

    real_open = builtins.open

    def spy(file, *a, **k):  # type: ignore[no-untyped-def]
        opened.append(str(file))
        return real_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", spy)
    for _ in range(20):
        one_call(rec)
    monkeypatch.setattr(builtins, "open", real_open)
    rec.close()
    assert not any(p.endswith(".control") for p in opened)


def test_bad_and_unsafe_sidecar_lines_never_raise(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    import os

    log = tmp_path / "r.jsonl"
    rec = Recorder(log)
    side = sidecar_path(log)
    with open(side, "ab") as f:
        f.write(b'{"v":1,"id":"c-x","ts":1,"cmd":"self-destruct"}\nnot json\n')
    os.chmod(side, 0o600)
    one_call(rec)
    assert not rec.paused
    assert "control channel" in capfd.readouterr().err
    os.chmod(side, 0o666)  # writable by anyone: its commands are not obeyed
    with open(side, "ab") as f:
        f.write(b'{"v":1,"id":"c-y","ts":1,"cmd":"pause"}\n')
    one_call(rec)
    assert not rec.paused
    rec.close()
    assert of_kind(log, "signal_ack") == []


def test_entering_calls_checks_the_sidecar_at_most_once_per_poll_interval(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    rec = Recorder(log, on_pause="raise", poll_interval=0.05)
    now = [100.0]
    rec._poll_clock = lambda: now[0]  # a clock the test steps by hand: no timing in the test
    stats: list[str] = []
    real_poll = rec._sidecar.poll  # type: ignore[union-attr]

    def counted() -> list:
        stats.append("stat")
        return real_poll()

    rec._sidecar.poll = counted  # type: ignore[union-attr,method-assign]
    for _ in range(5):
        one_call(rec)
    assert stats == ["stat"]  # five calls inside one interval: one check
    send(log, "pause", reason="spend")
    one_call(rec)  # written inside the interval: not seen yet
    now[0] += 0.05
    with pytest.raises(Paused, match="spend"):  # the first call once the interval is over obeys it
        one_call(rec)
    assert len(of_kind(log, "llm_call")) == 6
    rec.close()


def test_explicit_checks_are_never_throttled(tmp_path: Path) -> None:
    log = tmp_path / "r.jsonl"
    rec = Recorder(log, on_pause="raise", downgrades={"gpt-4o": "gpt-4o-mini"})
    rec._poll_clock = lambda: 100.0  # the gate's clock frozen: only explicit checks can see commands
    one_call(rec)
    send(log, "downgrade")
    assert rec.model("gpt-4o") == "gpt-4o-mini"
    send(log, "pause")
    assert rec.paused
    with pytest.raises(Paused):
        one_call(rec)  # the pause is in force, whatever the throttle
    rec.close()
