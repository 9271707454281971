"""Gemini CLI recordings (upserts, $set/$rewindTo, legacy copies) and OpenCode (multi-step messages)."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path

from flightdeck.core.aggregate import Aggregator
from flightdeck.core.events import Event, Rejected, Usage
from flightdeck.core.pricing import price
from flightdeck.ingest.discover import add_documents
from flightdeck.ingest.documents import OpenCodeDatabase, gemini_legacy, opencode_storage
from flightdeck.ingest.formats import FileFormat
from flightdeck.ingest.formats.opencode import read_database
from flightdeck.ingest.scan import scan
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

T0 = 1_795_000_000.0


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
    events.extend(f.flush())
    return events, rejects, f


def test_gemini_record_last_copy_wins_and_tokens_are_canonical() -> None:
    rows = [gemini_meta("s-1", T0), gemini_user("u1", T0),
            gemini_reply("g1", T0 + 2, None),  # streaming: no tokens yet
            gemini_reply("g1", T0 + 2, gemini_tokens(15_327, 23, 11_526, 919, 7),
                         tool_calls=[{"id": "c1", "name": "read_file", "status": "executing"}]),
            gemini_reply("g1", T0 + 2, gemini_tokens(15_327, 23, 11_526, 919, 7),
                         tool_calls=[{"id": "c1", "name": "read_file", "status": "success"}]),
            {"$set": {"lastUpdated": "2026-11-18T00:10:00.000Z"}},
            gemini_user("u2", T0 + 30), gemini_reply("g2", T0 + 31, gemini_tokens(16_000, 400, 15_000, 0)),
            {"$rewindTo": "u2"}]
    events, rejects, f = parse_all(jsonl(rows))
    assert f.name == "gemini-cli" and rejects == []
    assert [e.id for e in events] == ["gemini:s-1:g1", "gemini:s-1:g2"]  # the rewound reply was billed too
    first = events[0]
    # input includes cached, tool-use prompt tokens are input, thoughts are output
    assert first.usage == Usage(input_tokens=15_327 - 11_526 + 7, cache_read_tokens=11_526, output_tokens=23 + 919,
                                reasoning_tokens=919)
    assert first.agent == "gemini-cli" and first.run == "s-1" and first.provider == "google"
    assert first.tags == {"project": "9f2c1a"} and first.model == "gemini-2.5-pro"
    expected = price("google", "gemini-2.5-pro", first.usage, first.ts, route="direct")  # type: ignore[arg-type]
    assert expected.usd is not None and Decimal(first.cost_usd or "nan") == expected.usd
    assert f.take_copies() == 1


def test_gemini_resumed_legacy_session_counts_once_across_json_and_jsonl(tmp_path: Path) -> None:
    chats = tmp_path / "tmp" / "9f2c1a" / "chats"
    chats.mkdir(parents=True)
    old = [gemini_user("u1", T0), gemini_reply("g1", T0 + 2, gemini_tokens(1000, 50, 0, 10)),
           gemini_user("u2", T0 + 20), gemini_reply("g2", T0 + 22, gemini_tokens(2000, 60, 800, 0))]
    legacy = {**gemini_meta("s-old", T0), "messages": old}
    (chats / "session-2026-11-18T00-00-s-old.json").write_text(json.dumps(legacy, indent=2))
    # Resuming copies the conversation into a .jsonl, then appends the new turn.
    for shape in ("set", "records"):  # the copy as one $set, or record by record
        copied = [{"$set": {"messages": old}}] if shape == "set" else old
        resumed = [gemini_meta("s-old", T0), *copied, gemini_user("u3", T0 + 900),
                   gemini_reply("g3", T0 + 901, gemini_tokens(3000, 70, 2500, 0))]
        (chats / "session-2026-11-18T00-15-s-old.jsonl").write_bytes(jsonl(resumed))
        agg = scan([tmp_path / "tmp"], by=("model",))
        add_documents(agg, [gemini_legacy(tmp_path / "tmp")])
        snap = agg.snapshot()
        assert snap.events == 3, shape  # g1, g2, g3: the legacy copy adds nothing
        assert snap.duplicates == 2, shape
        assert snap.total.tokens.output_tokens == 60 + 60 + 70


def test_opencode_multi_step_message_sums_its_steps(tmp_path: Path) -> None:
    db = tmp_path / "opencode.db"
    con = oc_database(db)
    steps = [oc_step("prt_1", "msg_a", "ses_1", oc_tokens(1200, 90, 30, 0, 4000), 0.0194),
             oc_step("prt_2", "msg_a", "ses_1", oc_tokens(300, 40, 0, 5200, 0), 0.0031),
             oc_step("prt_3", "msg_a", "ses_1", oc_tokens(150, 260, 12, 5500, 0), 0.0060)]
    # message.tokens keeps only the last step; message.cost is the sum
    oc_insert(con, oc_assistant("msg_a", "ses_1", 1_795_000_000_000, steps[-1]["tokens"], 0.0285), steps, 1)
    oc_insert(con, {"id": "msg_user", "sessionID": "ses_1", "role": "user", "time": {"created": 1_794_999_999_000}},
              [], 1)
    con.close()
    read = read_database(db)
    assert read.notice is None and read.rejects == []
    (ev,) = read.events
    assert ev.usage == Usage(input_tokens=1650, output_tokens=390 + 42, reasoning_tokens=42,
                             cache_read_tokens=10_700, cache_write_tokens=4000)
    assert ev.id == "opencode:msg_a" and ev.agent == "opencode" and ev.run == "ses_1" and ev.provider == "anthropic"
    assert ev.tags == {"tool_cost_usd": repr(0.0194 + 0.0031 + 0.0060), "project": "/home/u/site"}
    assert ev.ts == 1_795_000_000.0


def test_opencode_database_is_followed_and_never_locked_out(tmp_path: Path) -> None:
    db = tmp_path / "opencode.db"
    con = oc_database(db)
    source = OpenCodeDatabase(db)
    step = oc_step("prt_1", "msg_a", "ses_1", oc_tokens(10, 5, 0, 0, 0), 0.001)
    oc_insert(con, oc_assistant("msg_a", "ses_1", 1_795_000_000_000, step["tokens"], 0.001, completed=False),
              [step], 5)
    assert source.poll(final=False).events == []  # still being written: wait for it
    # While we hold nothing, OpenCode writes freely.
    oc_insert(con, oc_assistant("msg_a", "ses_1", 1_795_000_000_000, step["tokens"], 0.001), [step], 6)
    (ev,) = source.poll(final=False).events
    assert ev.usage == Usage(input_tokens=10, output_tokens=5)
    assert source.poll(final=False).events == []  # unchanged: nothing again
    # An exclusive writer (a migration) holds the database: skipped with a notice, read at the next change.
    con.execute("PRAGMA journal_mode=DELETE")
    con.execute("BEGIN EXCLUSIVE")
    con.execute("UPDATE message SET time_updated = 7")
    busy = read_database(db, sleep=0.0)
    assert busy.notice is not None and "locked" in busy.notice and busy.events == []
    con.rollback()
    con.close()


def test_opencode_legacy_files_and_database_count_a_message_once(tmp_path: Path) -> None:
    base = tmp_path / "opencode"
    (base / "storage" / "message" / "ses_1").mkdir(parents=True)
    (base / "storage" / "part" / "msg_a").mkdir(parents=True)
    step = oc_step("prt_1", "msg_a", "ses_1", oc_tokens(100, 20, 0, 0, 0), 0.0006)
    msg = oc_assistant("msg_a", "ses_1", 1_795_000_000_000, step["tokens"], 0.0006)
    (base / "storage" / "message" / "ses_1" / "msg_a.json").write_text(json.dumps(msg))
    (base / "storage" / "part" / "msg_a" / "prt_1.json").write_text(json.dumps(step))
    con = oc_database(base / "opencode.db")
    oc_insert(con, msg, [step], 1)
    oc_insert(con, oc_assistant("msg_b", "ses_1", 1_795_000_060_000, oc_tokens(5, 1, 0, 0, 0), 0.0), [], 1)
    con.close()
    agg = Aggregator(live=False)
    add_documents(agg, [OpenCodeDatabase(base / "opencode.db"), opencode_storage(base / "storage")])
    snap = agg.snapshot()
    assert snap.events == 2 and snap.duplicates == 1


def test_bad_documents_are_counted_not_raised(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp" / "p" / "chats"
    tmp.mkdir(parents=True)
    (tmp / "session-cut.json").write_text('{"sessionId": "s", "messages": [')
    not_db = tmp_path / "opencode.db"
    not_db.write_text("not a database")
    agg = Aggregator(live=False)
    add_documents(agg, [gemini_legacy(tmp_path / "tmp"), OpenCodeDatabase(not_db)])
    assert agg.snapshot().rejected_reasons == {"bad gemini-cli session": 1}
    assert isinstance(sqlite3.sqlite_version, str)


def test_hostile_opencode_rows_are_rejected_one_by_one(tmp_path: Path) -> None:
    db = tmp_path / "opencode.db"
    con = oc_database(db)
    good = oc_assistant("m_ok", "ses_1", 1_795_000_000_000, oc_tokens(10, 5, 0, 0, 0), 0.0)
    oc_insert(con, good, [], 1)
    hostile = [
        {**good, "id": "m_inf", "tokens": {"input": 1e999, "output": 1}},
        {**good, "id": "m_neg", "tokens": {"input": -5, "output": 1}},
        {**good, "id": "m_str", "tokens": "lots"},
        {**good, "id": "m_time", "time": {"created": "yesterday"}},
        {**good, "id": "m_list", "path": ["x"], "providerID": 7},
    ]
    for row in hostile:
        con.execute("INSERT INTO message VALUES (?, ?, ?, ?, ?)",
                    (row["id"], "ses_1", 1, 2, json.dumps(row).replace("Infinity", "1e999")))
    con.execute("INSERT INTO message VALUES ('m_junk', 'ses_1', 1, 2, 'not json')")
    con.commit()
    con.close()
    read = read_database(db)
    assert sorted(e.id for e in read.events) == ["opencode:m_list", "opencode:m_ok"]
    assert sorted(r.reason for r in read.rejects) == ["bad opencode message", "bad opencode message",
                                                      "bad opencode tokens", "bad opencode tokens",
                                                      "missing timestamp"]


def test_each_tool_is_detected_from_its_first_line() -> None:
    from flightdeck.ingest.formats import detect_format
    from tests.ingest.formats.codex_logs import session_meta
    from tests.ingest.formats.test_claude_code import block_line, user_line

    cases = {
        json.dumps(gemini_meta("s", T0)).encode(): "gemini-cli",
        json.dumps({"sessionId": "s", "startTime": "2026-11-18T00:00:00.000Z", "kind": "subagent"}).encode():
            "gemini-cli",
        json.dumps(gemini_reply("g", T0, None)).encode(): "gemini-cli",
        session_meta(T0, "x"): "codex",
        user_line(): "claude-code",
        block_line("m", 1): "claude-code",
    }
    for line, name in cases.items():
        found = detect_format(line)
        assert not isinstance(found, Rejected) and found.name == name, line[:80]
