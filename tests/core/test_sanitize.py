"""The one sanitiser (core.sanitize): what a hostile string may not do on screen."""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flightdeck.core.sanitize import clean, clean_lines

UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def test_every_control_format_and_separator_character_is_escaped() -> None:
    # Checked against this Python's Unicode table, so a newer one cannot drift past the list.
    missed = [
        f"U+{code:04X}"
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in UNSAFE_CATEGORIES and clean(chr(code)) == chr(code)
    ]
    assert missed == []


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mred", "\\x1b[31mred"),
        ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),
        ("evil\u202etxt.exe", "evil\\u202etxt.exe"),  # right-to-left override
        ("a\u2066b\u2069", "a\\u2066b\\u2069"),  # bidi isolates
        ("gpt\u200b-4o", "gpt\\u200b-4o"),  # zero-width space
        ("x\u200dy\u2060z\ufeff", "x\\u200dy\\u2060z\\ufeff"),  # joiner, word joiner, BOM
        ("tag\U000e0041", "tag\\U000e0041"),  # a tag character
        ("line\u2028sep", "line\\u2028sep"),
        ("lone\udcffsurrogate", "lone\\udcffsurrogate"),
        ("claude-3-5-sonnet", "claude-3-5-sonnet"),
        ("café 模型 🚀", "café 模型 🚀"),
    ],
)
def test_clean(raw: str, shown: str) -> None:
    assert clean(raw) == shown


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_clean_output_is_printable_and_idempotent(text: str) -> None:
    out = clean(text)
    assert all(unicodedata.category(c) not in UNSAFE_CATEGORIES for c in out)
    assert clean(out) == out
    out.encode("utf-8")  # writable to any UTF-8 terminal: no lone surrogate left


def test_clean_lines_keeps_the_layout() -> None:
    assert clean_lines("a\x1b\nb\u202e\n") == "a\\x1b\nb\\u202e\n"


def test_clean_takes_any_object() -> None:
    assert clean(42) == "42"


def test_report_table_shows_bidi_and_zero_width_characters_as_escapes(tmp_path: Path) -> None:
    from flightdeck.core.events import Event, IdSource, Usage, encode_event
    from flightdeck.core.report import render_table
    from flightdeck.ingest.scan import scan

    ids = IdSource()
    log = tmp_path / "hostile.jsonl"
    model = "gpt\u202e-4o\u200b\u2066x\u2069"
    log.write_bytes(encode_event(Event(v=1, ts=1764216000.0, kind="llm_call", id=ids(), run="r\ufeff",
                                       provider="openai", model=model, usage=Usage(input_tokens=5),
                                       cost_usd="0.000010", cost_status="priced"))
                    + b'{"v":1,"ts":1764216000.0,"kind":"llm_call","id":"\xe2\x80\xae"}\n')
    table = render_table(scan([log], jobs=1, by=("model", "run")).snapshot(), ("model", "run"))
    assert "gpt\\u202e-4o\\u200b\\u2066x\\u2069" in table and "r\\ufeff" in table
    assert not any(unicodedata.category(c) in UNSAFE_CATEGORIES for c in table.replace("\n", ""))


def test_prices_messages_are_sanitised() -> None:
    import subprocess

    out = subprocess.run([sys.executable, "-m", "flightdeck", "prices", "evil\u202emodel\x1b[2J"],
                         capture_output=True, text=True, check=False)
    assert "evil\\u202emodel\\x1b[2J" in out.stderr
    assert "\u202e" not in out.stderr and "\x1b" not in out.stderr
