"""Every agent's logs found in a fake $HOME; report and tail with no PATH; four tools at once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from flightdeck.core.events import Usage
from flightdeck.core.pricing import price
from flightdeck.ingest.discover import describe, discover, resolve_sources
from flightdeck.ingest.engine import Engine
from tests.ingest.formats.agent_logs import (
    gemini_meta,
    gemini_reply,
    gemini_tokens,
    gemini_user,
    jsonl,
    oc_assistant,
    oc_database,
    oc_insert,
    oc_step,
    oc_tokens,
)
from tests.ingest.formats.codex_logs import Session
from tests.ingest.formats.test_claude_code import streamed, user_line

T0 = 1_795_000_000.0  # 2026-11-18T00:26:40Z
DAY = 86400.0


def build_home(home: Path) -> dict[tuple[str, str], list[tuple[float, Usage]]]:
    """A machine with all four tools' logs over three days; returns the expected usage per (model, day)."""
    want: dict[tuple[str, str], list[tuple[float, Usage]]] = defaultdict(list)

    def day(ts: float) -> str:
        return time.strftime("%Y-%m-%d", time.gmtime(ts))

    # Claude Code: streamed responses (the last copy the complete one), two sessions, three days.
    proj = home / ".claude" / "projects" / "-home-u-app"
    proj.mkdir(parents=True)
    for s in range(2):
        lines = []
        for k in range(6):
            ts = T0 + s * DAY + k * 600
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))
            outs = (3, 3, 200 + k)
            lines += streamed(f"msg_{s}_{k}", outs, req=f"req_{s}_{k}", session=f"cc-{s}", ts=stamp)
            lines.append(user_line(session=f"cc-{s}"))
            want[("claude-sonnet-4-5-20250929", day(ts))].append((ts, Usage(
                input_tokens=4, output_tokens=outs[-1], cache_read_tokens=5000, cache_write_tokens=200)))
        (proj / f"cc-{s}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    # Codex: a session with repeated counts.
    sess = Session("cx-1", T0 + DAY)
    for k in range(5):
        sess.call(9000 + k, 6000, 300, 120, repeats=2, gap=400)
        want[("gpt-5-codex", day(sess.t))].append((sess.t, Usage(
            input_tokens=3000 + k, cache_read_tokens=6000, output_tokens=300, reasoning_tokens=120)))
    rollouts = home / ".codex" / "sessions" / "2026" / "11" / "19"
    rollouts.mkdir(parents=True)
    (rollouts / "rollout-2026-11-19T00-26-40-cx-1.jsonl").write_bytes(sess.data())
    # Gemini CLI: a recording with upserted replies.
    chats = home / ".gemini" / "tmp" / "9f2c1a" / "chats"
    chats.mkdir(parents=True)
    rows = [gemini_meta("gm-1", T0 + 2 * DAY)]
    for k in range(4):
        ts = T0 + 2 * DAY + k * 300
        rows += [gemini_user(f"u{k}", ts), gemini_reply(f"g{k}", ts + 1, None),
                 gemini_reply(f"g{k}", ts + 1, gemini_tokens(5000 + k, 80, 4000, 20))]
        want[("gemini-2.5-pro", day(ts))].append((ts + 1, Usage(
            input_tokens=1000 + k, cache_read_tokens=4000, output_tokens=100, reasoning_tokens=20)))
    (chats / "session-2026-11-20T00-26-gm1.jsonl").write_bytes(jsonl(rows))
    # OpenCode: a database with a multi-step message.
    data = home / ".local" / "share" / "opencode"
    data.mkdir(parents=True)
    con = oc_database(data / "opencode.db")
    for k in range(3):
        created = int((T0 + 2 * DAY + 3600 + k * 60) * 1000)
        steps = [oc_step(f"p{k}a", f"m{k}", "oc-1", oc_tokens(700, 40, 10, 3000, 0), 0.01),
                 oc_step(f"p{k}b", f"m{k}", "oc-1", oc_tokens(50, 90, 0, 3600, 0), 0.01)]
        oc_insert(con, oc_assistant(f"m{k}", "oc-1", created, steps[-1]["tokens"], 0.02), steps, k + 1)
        want[("claude-sonnet-4-5-20250929", day(created / 1000))].append((created / 1000, Usage(
            input_tokens=750, output_tokens=140, reasoning_tokens=10, cache_read_tokens=6600)))
    con.close()
    return want


def test_discover_finds_each_tool_in_a_fake_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    build_home(home)
    found = discover(env={"HOME": str(home)})
    assert describe(found) == ("Claude Code: 2 sessions; Codex: 1 session; Gemini CLI: 1 session; "
                               "OpenCode: 1 database")
    assert discover(env={"HOME": str(tmp_path / "nobody")}) == []


def test_tool_variables_are_honoured(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    a, b = tmp_path / "claude-a", tmp_path / "claude-b"
    for base in (a, b):
        (base / "projects" / "p").mkdir(parents=True)
        (base / "projects" / "p" / "s.jsonl").write_bytes(user_line() + b"\n")
    (tmp_path / "cx" / "archived_sessions").mkdir(parents=True)
    (tmp_path / "cx" / "archived_sessions" / "rollout-x.jsonl").write_bytes(b"{}\n")
    (tmp_path / "gh" / ".gemini" / "tmp" / "p" / "chats").mkdir(parents=True)
    (tmp_path / "gh" / ".gemini" / "tmp" / "p" / "chats" / "session-1.json").write_text("{}")
    (tmp_path / "xdg" / "opencode").mkdir(parents=True)
    (tmp_path / "xdg" / "opencode" / "opencode.db").write_bytes(b"")
    env = {"HOME": str(home), "CLAUDE_CONFIG_DIR": f"{a}, ,{b},", "CODEX_HOME": str(tmp_path / "cx"),
           "GEMINI_CLI_HOME": str(tmp_path / "gh"), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    found = discover(env=env)
    assert [f.tool for f in found] == ["Claude Code", "Codex", "Gemini CLI", "OpenCode"]
    assert found[0].paths == [a / "projects", b / "projects"] and found[0].sessions == 2
    assert found[1].paths == [tmp_path / "cx" / "archived_sessions"]
    assert found[2].paths == [tmp_path / "gh" / ".gemini" / "tmp"]
    with pytest.raises(ValueError, match="no agent logs found"):
        resolve_sources([], env={"HOME": str(home)}, say=False)


def _expected(want: dict[tuple[str, str], list[tuple[float, Usage]]],
              provider_of: dict[str, str]) -> dict[str, Decimal]:
    by_model: dict[str, Decimal] = defaultdict(Decimal)
    for (model, _day), calls in want.items():
        for ts, u in calls:
            got = price(provider_of[model], model, u, ts, route="direct")
            assert got.usd is not None
            by_model[model] += got.usd
    return by_model


def test_report_with_no_path_is_exact_by_model_for_every_tool(tmp_path: Path) -> None:
    home = tmp_path / "home"
    want = build_home(home)
    env = {"HOME": str(home), "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "flightdeck", "report", "--json", "--by", "model,agent"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Claude Code: 2 sessions; Codex: 1 session; Gemini CLI: 1 session; OpenCode: 1 database" in out.stderr
    doc = json.loads(out.stdout)
    assert doc["events"] == sum(len(v) for v in want.values()) == 12 + 5 + 4 + 3
    assert doc["rejected"] == 0 and doc["unpriced"] == 0
    models = {row["key"]: row for row in doc["by"]["model"]}
    tokens: dict[str, int] = defaultdict(int)
    for (model, _day), calls in want.items():
        tokens[model] += sum(u.output_tokens for _ts, u in calls)
    for model, row in models.items():
        assert row["tokens"]["output_tokens"] == tokens[model]
    agents = {row["key"]: row["events"] for row in doc["by"]["agent"]}
    assert agents == {"claude-code": 12, "codex": 5, "gemini-cli": 4, "opencode": 3}
    provider_of = {"claude-sonnet-4-5-20250929": "anthropic", "gpt-5-codex": "openai", "gemini-2.5-pro": "google"}
    expected = _expected(want, provider_of)
    for model, usd in expected.items():
        assert Decimal(models[model]["cost_usd"]) == usd, model
    assert Decimal(doc["cost_usd"]) == sum(expected.values())


def test_engine_follows_all_four_tools_at_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    build_home(home)
    paths, documents = resolve_sources([], env={"HOME": str(home)}, say=False)
    eng = Engine(paths, documents=documents)
    eng.start()
    try:
        assert eng.wait_backfilled(30)
        # New activity in every tool while following.
        chats = home / ".gemini" / "tmp" / "9f2c1a" / "chats" / "session-2026-11-20T00-26-gm1.jsonl"
        with chats.open("ab") as f:
            f.write(jsonl([gemini_user("u9", T0 + 3 * DAY), gemini_reply("g9", T0 + 3 * DAY + 1,
                                                                          gemini_tokens(10, 5, 0, 0)),
                           gemini_user("u10", T0 + 3 * DAY + 60),
                           gemini_reply("g10", T0 + 3 * DAY + 61, gemini_tokens(10, 5, 0, 0))]))
        con = oc_database_append(home / ".local" / "share" / "opencode" / "opencode.db")
        oc_insert(con, oc_assistant("m9", "oc-1", int((T0 + 3 * DAY) * 1000), oc_tokens(10, 5, 0, 0, 0), 0.0),
                  [], 99)
        con.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            agents = {g.key: g.figures.calls for g in eng.snapshot().breakdowns["agent"]}
            if agents.get("gemini-cli", 0) >= 5 and agents.get("opencode", 0) >= 4:
                break
            time.sleep(0.1)
        snap = eng.snapshot()
    finally:
        eng.stop()
    agents = {g.key: g.figures.calls for g in snap.breakdowns["agent"]}
    # Claude Code's last response of each session and Gemini's g10 are still held (their
    # threads have not moved on): they settle after SETTLE_SECONDS of quiet.
    assert agents == {"claude-code": 10, "codex": 5, "gemini-cli": 5, "opencode": 4}
    assert snap.rejected == 0


def oc_database_append(path: Path):  # type: ignore[no-untyped-def]
    import sqlite3

    return sqlite3.connect(path)


def test_tail_once_with_no_path_reads_every_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from flightdeck.cli import main

    home = tmp_path / "home"
    want = build_home(home)
    monkeypatch.setenv("HOME", str(home))
    assert main(["tail", "--once", "--json"]) == 0
    out = capsys.readouterr()
    assert "found Claude Code: 2 sessions; Codex: 1 session; Gemini CLI: 1 session; OpenCode: 1 database" in out.err
    doc = json.loads(out.out)
    assert doc["events"] == sum(len(v) for v in want.values()) and doc["rejected"] == 0
    monkeypatch.setenv("HOME", str(tmp_path / "empty"))
    assert main(["tail", "--once", "--json"]) == 2
    assert "no agent logs found" in capsys.readouterr().err


def test_a_filter_change_reads_documents_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    build_home(home)
    paths, documents = resolve_sources([], env={"HOME": str(home)}, say=False)
    eng = Engine(paths, documents=documents)
    eng.backfill()
    assert eng.snapshot().events == 24
    eng.set_filter("agent:opencode")
    assert eng.snapshot().events == 3
    eng.set_filter(None)
    assert eng.snapshot().events == 24 and eng.snapshot().rejected == 0
