"""`flightdeck prices MODEL`: text and JSON output, exit codes, --at, --prices."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from flightdeck.cli import main
from flightdeck.core import pricing


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No user config, and the default pricer the command sets is put back."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    before = pricing._default
    yield
    pricing._default = before


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["prices", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_shows_each_bucket_tiers_and_source(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "claude-sonnet-4-5", "--provider", "anthropic", "--at", "2025-11-27")
    assert code == 0 and err == ""
    assert "genai-prices" in out and "anthropic/claude-sonnet-4-5" in out
    rows = {line.split("  ")[0]: line.split() for line in out.splitlines()}
    assert rows["input"][-2:] == ["3", "6"]  # base and > 200k tier
    assert rows["cache write (1h)"][-2:] == ["6", "12"]
    assert "> 200,000 prompt tokens" in out
    assert "the date does not matter" in out


def test_at_picks_the_dated_rate(capsys: pytest.CaptureFixture[str]) -> None:
    _, before, _ = run(capsys, "o3", "--provider", "openai", "--at", "2025-06-09T23:00Z", "--json")
    _, after, _ = run(capsys, "o3", "--provider", "openai", "--at", "1749600000", "--json")  # 2025-06-11
    before_json, after_json = json.loads(before), json.loads(after)
    assert before_json["rates"]["input"] == "10" and after_json["rates"]["input"] == "2"
    assert before_json["date_matters"] is True and any("2025-06-10" in s for s in after_json["schedule"])
    _, text, _ = run(capsys, "o3", "--at", "2025-01-01")
    assert "the date matters" in text


def test_json_is_exact_decimal_strings(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "gemini-2.5-pro", "--provider", "google", "--json", "--at", "2025-11-27")
    assert code == 0
    data = json.loads(out)
    assert data["status"] == "priced" and data["unit"] == "USD per million tokens"
    assert data["rates"]["input"] == "1.25" and data["rates"]["cache_read"] == "0.125"
    assert data["tiers"][0]["above_prompt_tokens"] == 200_000
    assert Decimal(data["tiers"][0]["rates"]["input"]) > Decimal(data["rates"]["input"])
    assert "cache writes at the input rate" in data["notes"]
    assert data["rates"]["reasoning"] is None


def test_unknown_model_exits_1_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "definitely-not-a-model")
    assert code == 1 and out == ""
    assert "unknown model 'definitely-not-a-model'" in err and "Traceback" not in err
    code, out, _ = run(capsys, "definitely-not-a-model", "--json")
    assert code == 1 and json.loads(out)["status"] == "unknown"


def test_local_route(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "llama3.1:8b", "--provider", "ollama")
    assert code == 0 and "local model" in out
    code, out, _ = run(capsys, "claude-3-5-sonnet", "--route", "local", "--json")
    assert code == 0 and json.loads(out)["status"] == "local"


def test_prices_file_overrides_and_sets_the_default_pricer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('[[model]]\nmatch = "house-*"\ninput = "0.40"\noutput = "1.60"\n')
    code, out, _ = run(capsys, "house-llm", "--prices", str(path), "--json")
    data = json.loads(out)
    assert code == 0 and data["status"] == "override" and str(path) in data["source"]
    assert data["rates"]["input"] == "0.4" and data["rates"]["cache_read"] == "0.4"
    assert pricing.default_pricer().overrides is not None


def test_broken_prices_file_and_bad_time_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[model]]\nmatch = "x"\ninput = "1"\n')
    code, _, err = run(capsys, "x", "--prices", str(path))
    assert code == 2 and str(path) in err and "output" in err and "Traceback" not in err
    code, _, err = run(capsys, "gpt-4o", "--at", "next tuesday")
    assert code == 2 and "--at" in err


def test_a_correction_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "claude-sonnet-4-20250514", "--provider", "anthropic", "--at", "2026-06-01")
    assert code == 0 and err == ""
    assert "a flightdeck correction applied" in out and "long-context-pricing" in out
    rows = {line.split("  ")[0]: line.split() for line in out.splitlines()}
    assert rows["input"][-2:] == ["3", "6"] and rows["output"][-2:] == ["15", "22.5"]
    code, out, _ = run(capsys, "claude-sonnet-4-20250514", "--provider", "anthropic", "--json")
    data = json.loads(out)
    assert code == 0 and data["correction"] is True and data["source"].startswith("flightdeck correction")


def test_speed_and_service_tier_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "claude-opus-4-6", "--provider", "anthropic", "--speed", "fast",
                       "--at", "2026-03-01")
    rows = {line.split("  ")[0]: line.split() for line in out.splitlines()}
    assert code == 0 and "at speed fast" in out
    assert rows["input"][-2:] == ["30", "60"] and rows["output"][-2:] == ["150", "225"]
    code, out, _ = run(capsys, "gpt-5", "--provider", "openai", "--service-tier", "flex",
                       "--at", "2026-11-01", "--json")
    data = json.loads(out)
    assert code == 0 and data["service_tier"] == "flex" and data["rates"]["input"] == "0.625"
    code, out, err = run(capsys, "claude-opus-4-6", "--provider", "anthropic", "--service-tier", "priority")
    assert code == 1 and out == "" and "service_tier 'priority'" in err and "unknown model" not in err


def test_a_correction_applies_without_provider(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "claude-sonnet-4-20250514", "--json")
    data = json.loads(out)
    assert code == 0 and data["correction"] is True
    assert data["tiers"][0]["above_prompt_tokens"] == 200000 and data["tiers"][0]["rates"]["input"] == "6"
