"""Pricer.keep_rates: rates() answers kept across runs equal the looked-up ones, field by field.

The kept file must give exactly what a fresh Pricer gives (every Decimal with
its exponent, the source text, tiers, flags) for every model a Claude Code
history and the other readers meet, on either side of every dated change; a
change of any pricing input discards it; a damaged or planted file is never
trusted; and a run that finds every answer kept never imports genai-prices.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flightdeck.core import pricing
from flightdeck.core.pricing import Pricer, Rates

DAY = 86400.0
NOW = datetime(2026, 11, 28, 15, tzinfo=UTC).timestamp()
# (provider, model, route, service_tier, speed): what the readers ask for (the bench's Claude
# Code models first), tiers and speeds, models with dated prices, a local and an unknown one.
ASKED: list[tuple[str, str, str | None, str | None, str | None]] = [
    ("anthropic", "claude-sonnet-4-5-20250929", "direct", None, None),
    ("anthropic", "claude-opus-4-1-20250805", "direct", None, None),
    ("anthropic", "claude-haiku-4-5-20251001", "direct", None, None),
    ("anthropic", "claude-3-5-haiku-20241022", "direct", None, None),
    ("anthropic", "claude-sonnet-4-5", "direct", None, None),
    ("anthropic", "claude-opus-4-6", "direct", None, "fast"),
    ("anthropic", "claude-opus-4-6", "direct", None, None),
    ("anthropic", "claude-sonnet-4-5", "direct", "batch", None),
    ("anthropic", "claude-sonnet-4-5", "direct", "priority", None),
    ("openai", "o3", None, None, None),
    ("openai", "gpt-5", None, "flex", None),
    ("openai", "o4-mini", None, None, None),
    ("google", "gemini-2.5-pro", None, None, None),
    ("deepseek", "deepseek-chat", None, None, None),  # off-peak hours: never kept
    ("ollama", "llama3", None, None, None),
    ("anthropic", "no-such-model-xyz", "direct", None, None),
    ("", "", None, None, None),
]
TIMES = [NOW, NOW - 3 * DAY, datetime(2025, 6, 9, 12, tzinfo=UTC).timestamp(),
         datetime(2025, 6, 10, 12, tzinfo=UTC).timestamp(), datetime(2024, 1, 1, tzinfo=UTC).timestamp()]


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    return config


def fields(rates: Rates | None) -> Any:
    """Every field, Decimals as their text (so an exponent lost in the file shows), tiers nested."""
    if rates is None:
        return None
    out = {}
    for f in dataclasses.fields(rates):
        value = getattr(rates, f.name)
        if f.name == "tiers":
            value = [(t, fields(r)) for t, r in value]
        elif value is not None and not isinstance(value, (str, bool, tuple)):
            value = str(value)
        out[f.name] = value
    return out


def answers(pricer: Pricer) -> list[Any]:
    return [fields(pricer.rates(p, m, ts, route=r, service_tier=t, speed=s)) for p, m, r, t, s in ASKED
            for ts in TIMES]


def test_kept_answers_equal_fresh_ones_field_by_field(tmp_path: Path) -> None:
    plain = answers(Pricer())
    first = Pricer()
    first.keep_rates(tmp_path / "cache")
    assert answers(first) == plain  # the run that looks them up and stores them
    stored = tmp_path / "cache" / "rates.msgpack"
    assert stored.is_file() and stored.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700
    second = Pricer()
    second.keep_rates(tmp_path / "cache")
    assert second._kept is not None and second._kept.answers  # loaded from the file
    assert answers(second) == plain
    # Every answer came from the file but the local model's (no lookup needed) and the off-peak one's.
    assert set(second._resolved) == {("ollama", "llama3", None), ("deepseek", "deepseek-chat", None)}
    # The off-peak model is asked again each run (its answer changes within a day).
    assert not any(key[1] == "deepseek-chat" for key in second._kept.answers)


def test_threads_pricing_at_once_keep_every_answer(tmp_path: Path) -> None:
    # The cockpit prices on its engine thread and on the UI's: answers put while another
    # thread writes the file must neither fail a lookup nor be lost.
    import threading

    pricer = Pricer()
    pricer.keep_rates(tmp_path)
    plain = Pricer()
    days = [NOW - k * DAY for k in range(0, 400, 7)]  # many spans: many puts and writes
    failures: list[str] = []

    def work(model: str) -> None:
        for ts in days:
            got = fields(pricer.rates("anthropic", model, ts, route="direct"))
            if got != fields(plain.rates("anthropic", model, ts, route="direct")):
                failures.append(f"{model} {ts}")

    models = ["claude-sonnet-4-5-20250929", "claude-opus-4-6", "claude-haiku-4-5-20251001", "claude-opus-4-1-20250805"]
    threads = [threading.Thread(target=work, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    again = Pricer()
    again.keep_rates(tmp_path)
    assert again._kept is not None
    assert {key[1] for key in again._kept.answers} == set(models)  # every model's answers reached the file


def test_a_new_day_in_the_same_span_needs_no_lookup(tmp_path: Path) -> None:
    first = Pricer()
    first.keep_rates(tmp_path)
    first.rates("anthropic", "claude-sonnet-4-5-20250929", NOW, route="direct")
    again = Pricer()
    again.keep_rates(tmp_path)
    later = NOW + 40 * DAY  # no dated change of this model in between
    assert fields(again.rates("anthropic", "claude-sonnet-4-5-20250929", later, route="direct")) == \
        fields(Pricer().rates("anthropic", "claude-sonnet-4-5-20250929", later, route="direct"))
    assert not again._resolved


def test_dated_override_spans_are_kept_apart(tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[[model]]\nmatch = "house-*"\ninput = "1"\noutput = "2"\n\n'
                      '[[model]]\nmatch = "house-*"\ninput = "3.50"\noutput = "7"\nsince = "2026-06-01"\n')
    before, after = datetime(2026, 5, 31, 23, tzinfo=UTC).timestamp(), datetime(2026, 6, 1, tzinfo=UTC).timestamp()
    first = Pricer(prices)
    first.keep_rates(tmp_path / "c")
    a, b = first.rates("x", "house-1", before), first.rates("x", "house-1", after)
    assert a is not None and b is not None and str(a.input) == "1" and str(b.input) == "3.50"
    again = Pricer(prices)
    again.keep_rates(tmp_path / "c")
    assert fields(again.rates("x", "house-1", before)) == fields(a)
    assert fields(again.rates("x", "house-1", after)) == fields(b)
    assert fields(again.rates("x", "house-1", after + 90 * DAY)) == fields(b)
    assert not again._resolved


def test_a_changed_override_file_discards_the_kept_answers(tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[[model]]\nmatch = "house-*"\ninput = "1"\noutput = "2"\n')
    first = Pricer(prices)
    first.keep_rates(tmp_path / "c")
    assert str(first.rates("x", "house-1", NOW).input) == "1"  # type: ignore[union-attr]
    prices.write_text('[[model]]\nmatch = "house-*"\ninput = "1.25"\noutput = "2"\n')
    again = Pricer(prices)
    again.keep_rates(tmp_path / "c")
    assert again._kept is not None and not again._kept.answers
    assert str(again.rates("x", "house-1", NOW).input) == "1.25"  # type: ignore[union-attr]
    assert Pricer(prices).pricing_inputs() != Pricer().pricing_inputs()


def test_a_damaged_or_planted_file_is_not_trusted(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir(mode=0o700)
    (folder / "rates.msgpack").write_bytes(b"\x93not msgpack at all")
    pricer = Pricer()
    pricer.keep_rates(folder)
    assert fields(pricer.rates("anthropic", "claude-sonnet-4-5", NOW, route="direct")) == \
        fields(Pricer().rates("anthropic", "claude-sonnet-4-5", NOW, route="direct"))
    assert Pricer().pricing_inputs() in (folder / "rates.msgpack").read_bytes().decode("latin-1")  # rewritten
    # A symlink in its place is neither read nor written through.
    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep me")
    (folder / "rates.msgpack").unlink()
    os.symlink(target, folder / "rates.msgpack")
    linked = Pricer()
    linked.keep_rates(folder)
    assert linked._kept is not None and not linked._kept.answers
    assert linked.rates("anthropic", "claude-sonnet-4-5", NOW, route="direct") is not None
    assert target.read_bytes() == b"keep me"


def test_a_bad_time_still_answers_as_before(tmp_path: Path) -> None:
    pricer = Pricer()
    pricer.keep_rates(tmp_path)
    assert pricer.rates("ollama", "llama3", "not a time") is pricing._LOCAL_RATES  # type: ignore[arg-type]
    assert pricer.rates("anthropic", "claude-sonnet-4-5", float("nan"), route="direct") is None
    assert Pricer().rates("anthropic", "claude-sonnet-4-5", float("nan"), route="direct") is None


def test_a_report_with_every_rate_kept_never_imports_genai_prices(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "s.jsonl"
    log.parent.mkdir()
    log.write_text('{"type":"assistant","timestamp":"2026-11-28T10:00:00.000Z","sessionId":"s",'
                   '"message":{"id":"msg_1","model":"claude-sonnet-4-5-20250929","usage":'
                   '{"input_tokens":10,"output_tokens":20,"cache_read_input_tokens":1000}}}\n')
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    code = ("import sys, json, io, contextlib\n"
            "from flightdeck.cli import main\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n"
            f"    main(['report', {str(log)!r}, '--json', '--no-cache', '--jobs', '1'])\n"
            "print(json.loads(out.getvalue())['cost_usd'], 'genai_prices' in sys.modules)\n")
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            .stdout.split() for _ in range(2)]
    assert runs[0] == [runs[1][0], "True"]  # the first run looked the rate up
    assert runs[1][1] == "False"  # the second found it kept
    assert runs[0][0] == "0.000630"  # 10 x 3 + 20 x 15 + 1000 x 0.30 USD per MTok


def test_rates_hold_all_day_unless_the_model_has_off_peak_hours(tmp_path: Path) -> None:
    pricer = Pricer()
    assert pricer.rates_hold_all_day("anthropic", "claude-opus-4-6", "direct")  # dated, at UTC midnight
    assert pricer.rates_hold_all_day("anthropic", "claude-sonnet-4-5", "direct")
    assert not pricer.rates_hold_all_day("deepseek", "deepseek-chat")  # off-peak hours
    first = Pricer()
    first.keep_rates(tmp_path)
    first.rates("anthropic", "claude-opus-4-6", NOW, route="direct")
    kept = Pricer()
    kept.keep_rates(tmp_path)
    assert kept.rates_hold_all_day("anthropic", "claude-opus-4-6", "direct") and not kept._resolved
