from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from flightdeck.cli import main
from flightdeck.core.aggregate import Aggregator
from flightdeck.core.events import Event, IdSource, Latency, Usage, encode_event
from flightdeck.core.report import parse_dims, parse_time, render_table, report_json, safe_text

T0 = 1_764_216_000.0
_ids = IdSource()


def line(model: str = "gpt-4o", cost: str | None = "0.123456789", ts: float = T0, **kw: object) -> bytes:
    return encode_event(Event(
        v=1, ts=ts, kind="llm_call", id=_ids(), run="r-1", provider="openai", route="direct", model=model,
        stream=True, usage=Usage(input_tokens=1000, output_tokens=100, cache_read_tokens=3000),
        cost_usd=cost, cost_status="priced" if cost else "unknown",
        latency_ms=Latency(pre=5.0, ttft=300.0, gen=700.0, post=3.0, total=1008.0), **kw))  # type: ignore[arg-type]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "run.jsonl"
    path.write_bytes(
        line() + line() + line("gpt-4o-mini", "0.000000000001") + line("mystery-model", None)
        + b"{oops\n" + b"[1]\n"
    )
    return path


def test_parse_time_accepts_iso_epoch_and_ages() -> None:
    assert parse_time("2025-11-27T04:00:00Z") == T0
    assert parse_time("2025-11-27T04:00:00") == T0  # naive means UTC
    assert parse_time("1764216000") == T0
    assert parse_time("1764216000.5") == T0 + 0.5
    assert parse_time("2h", now=T0) == T0 - 7200
    assert parse_time("30m", now=T0) == T0 - 1800
    assert parse_time("7d", now=T0) == T0 - 7 * 86400
    for bad in ("yesterday", "-5", "2x", "nan"):
        with pytest.raises(ValueError):
            parse_time(bad)


def test_parse_dims() -> None:
    assert parse_dims("model, provider,model") == ("model", "provider")
    with pytest.raises(ValueError, match="colour"):
        parse_dims("model,colour")
    with pytest.raises(ValueError):
        parse_dims(" , ")


def test_safe_text_escapes_terminal_controls() -> None:
    assert safe_text("evil\x1b[2Jmodel\n") == "evil\\x1b[2Jmodel\\x0a"
    assert safe_text("[bold]x[/]") == "[bold]x[/]"  # plain text, printed as is


def test_table_shows_totals_groups_and_exact_money() -> None:
    agg = Aggregator(live=False, breakdowns=("model", "provider"), rates=lambda p, m, t: None)
    from flightdeck.core.events import decode_line

    for raw in (line(), line(), line("gpt-4o-mini", "0.000000000001"), line("mystery\x1b[31m", None)):
        agg.add(decode_line(raw))  # type: ignore[arg-type]
    agg.reject("not json", "x")
    snap = agg.snapshot()
    text = render_table(snap, ("model", "provider"))
    assert "0.246913578001 USD" in text  # 2 x 0.123456789 + 1e-12, digit for digit
    assert "(1 calls unpriced)" in text
    assert "rejected      1 lines: not json 1" in text
    assert "by model:" in text and "by provider:" in text
    assert "mystery\\x1b[31m" in text and "\x1b" not in text
    assert "0.000000 *" in text
    assert "100.0 %" in text  # openai's share
    out = report_json(snap, ("model",))
    assert next(row["key"] for row in out["by"]["model"]) == "gpt-4o"
    assert out["cost_usd"] == "0.246913578001"


def test_command_json_counts_everything_and_exits_zero(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(log), "--json", "--by", "model,provider"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["events"] == 4
    assert out["rejected"] == 2
    assert out["rejected_reasons"] == {"not json": 1, "not an object": 1}
    assert out["duplicates"] == 0
    assert Decimal(out["cost_usd"]) == Decimal("0.246913578001")
    assert out["unpriced"] == 1
    assert out["tokens"]["cache_read_tokens"] == 12000
    assert out["cache_hit_rate"] == pytest.approx(0.75)
    assert out["ttft_ms"]["count"] == 4 and out["ttft_ms"]["p50"] == pytest.approx(300, rel=0.01)
    for stage in ("pre", "ttft", "gen", "post", "total"):
        assert {"p50", "p90", "mean"} <= set(out["stages_ms"][stage])
    assert set(out["by"]) == {"model", "provider"}


def test_command_table(log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(log)]) == 0
    text = capsys.readouterr().out
    assert "flightdeck report: 4 calls" in text
    assert "by model:" in text


def test_command_since_until(log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(line(ts=T0 + i * 3600) for i in range(10)))
    assert main(["report", str(path), "--json", "--since", "2025-11-27T06:00Z", "--until", str(T0 + 5 * 3600)]) == 0
    assert json.loads(capsys.readouterr().out)["events"] == 3


@pytest.mark.parametrize("args, message", [
    (["/no/such/file.jsonl"], "no such file"),
    (["{log}", "--since", "last tuesday"], "last tuesday"),
    (["{log}", "--by", "colour"], "colour"),
    (["{log}", "--jobs", "-1"], "--jobs"),
    (["{log}", "--prices", "/no/such/prices.toml"], "prices"),
])
def test_command_bad_arguments_exit_2(log: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                      message: str) -> None:
    argv = ["report", *[a.replace("{log}", str(log)) for a in args]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("flightdeck report:") and message in err


def test_report_never_imports_textual(log: Path) -> None:
    code = (
        "import sys; from flightdeck.cli import main; "
        f"rc = main(['report', {str(log)!r}, '--json']); "
        "assert 'textual' not in sys.modules, 'textual imported'; sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["events"] == 4


def test_report_and_tail_sum_forty_decimal_costs_exactly(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    cost = "999999999." + "9" * 40
    log = tmp_path / "run.jsonl"
    log.write_text("".join(json.dumps({
        "v": 1, "ts": 1764216000.0 + i, "kind": "llm_call", "id": f"x-{i}", "run": "r", "provider": "openai",
        "route": "direct", "model": "gpt-4o", "stream": False, "cost_usd": cost, "cost_status": "reported",
        "usage": {"input_tokens": 10**15 - 1, "output_tokens": 0, "cache_read_tokens": 0, "cache_write_tokens": 0,
                  "reasoning_tokens": 0}, "latency_ms": {}}) + "\n" for i in range(2)))
    want = "1999999999." + "9" * 39 + "8"
    for argv in (["report", str(log), "--json", "--no-cache"], ["tail", str(log), "--once", "--json"]):
        out = subprocess.run([sys.executable, "-m", "flightdeck", *argv], capture_output=True, text=True, check=True)
        got = json.loads(out.stdout)
        assert got["cost_usd"] == want and got["tokens"]["input_tokens"] == 2 * (10**15 - 1), argv
