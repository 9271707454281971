from decimal import Decimal

from flightdeck.cockpit.format import (
    Level,
    budget_level,
    cache_level,
    clean,
    count,
    hbar,
    literal,
    ms,
    sparkline,
    ttft_level,
    usd,
)


def test_clean_escapes_controls_and_keeps_markup_literal() -> None:
    assert clean("\x1b[31mred") == "\\x1b[31mred"
    assert clean("\x1b]0;pwned\x07") == "\\x1b]0;pwned\\x07"
    assert clean("a\nb\tc\x7f\x9b") == "a\\x0ab\\x09c\\x7f\\x9b"
    assert clean("evil\u202etxt") == "evil\\u202etxt"
    assert clean("[red]x[/red]") == "[red]x[/red]"
    text = literal("[bold]x[/bold]")
    assert text.plain == "[bold]x[/bold]" and not text.spans


def test_usd_is_exact_and_readable() -> None:
    assert usd(Decimal("0")) == "$0.00"
    assert usd(Decimal("0.00425")) == "$0.0043"  # half-up, not float rounding
    assert usd(Decimal("18.796400")) == "$18.80"
    assert usd(Decimal("0.0361")) == "$0.0361" and usd(Decimal("0.4210")) == "$0.4210"  # one rule under $1
    assert usd(Decimal("0.00004")) == "<$0.0001"  # never a zero for a cost that is not
    assert usd(Decimal("-0.25")) == "-$0.2500"
    assert usd(Decimal("1234.5")) == "$1,234.50"
    assert usd(Decimal("123456.5")) == "$123,457"
    assert usd(None) == "—"


def test_counts_and_latencies() -> None:
    assert count(950) == "950"
    assert count(12_345) == "12.3k"
    assert count(4_560_000) == "4.56M"
    assert count(250_000) == "250k"
    assert ms(None) == "—"
    assert ms(850.4) == "850ms"
    assert ms(1250) == "1.25s"
    assert ms(125_000) == "2m05s"


def test_sparkline_scales_and_keeps_gaps() -> None:
    line = sparkline([0.0, 1.0, None, 4.0], 4)
    assert line == "▁▃ █"  # 1/4 of the top is 1.75 eighths up: rounds to ▃
    assert sparkline([1.0, 2.0, 3.0], 6) == "   ▃▆█"  # right-aligned: newest at the right edge
    assert sparkline([5.0] * 100, 10) == "█" * 10
    assert sparkline([], 3) == "   "


def test_hbar_fills_in_eighths() -> None:
    assert hbar(0.0, 4) == "    "
    assert hbar(1.0, 4) == "████"
    assert hbar(0.5, 4) == "██  "
    assert hbar(1 / 16, 2) == "▏ "
    assert hbar(7.0, 3) == "███"  # over budget stays inside its cells


def test_levels_share_one_meaning() -> None:
    assert budget_level(0.5) is Level.OK
    assert budget_level(0.8) is Level.WARN
    assert budget_level(1.2) is Level.BAD
    assert cache_level(None) is None
    assert cache_level(0.7) is Level.OK and cache_level(0.3) is Level.WARN and cache_level(0.05) is Level.BAD
    assert ttft_level(900) is Level.OK and ttft_level(3000) is Level.WARN and ttft_level(9000) is Level.BAD
    assert len({lvl.symbol for lvl in Level}) == 3  # meaning never rests on colour alone
