"""core.money: integer money units and compiled integer rates, pinned to ``Rates.cost``."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flightdeck.core.events import Usage, format_usd
from flightdeck.core.money import (
    UNIT,
    compile_rates,
    cost_text,
    cost_units,
    scaled_to_units,
    units_to_usd,
)
from flightdeck.core.pricing import Rates
from flightdeck.core.snapshot import usd_text

D = Decimal
SONNET = Rates(D("3"), D("15"), D("0.3"), D("3.75"), D("6"))


def test_a_call_worked_out_by_hand() -> None:
    # SPEC section 1's example: 1200 x $3 + 350 x $15 + 8000 x $0.30 per million = $0.011250
    u = Usage(input_tokens=1200, output_tokens=350, cache_read_tokens=8000)
    exact = compile_rates(SONNET)
    assert exact is not None
    assert exact.cost_text(u) == "0.011250" == format_usd(SONNET.cost(u))
    assert exact.cost_units(u) == 11_250_000_000
    assert exact.cost_usd(u) == D("0.01125")
    # Cache reads saved 8000 x (3 - 0.3) per million = $0.0216
    assert exact.saving_units(u) == 21_600_000_000
    assert units_to_usd(exact.saving_units(u)) == D("0.021600")


def test_one_hour_writes_reasoning_and_a_fee() -> None:
    rates = Rates(D("1"), D("4"), D("0.1"), D("1.25"), D("2"), reasoning=D("8"), per_request=D("0.0005"))
    u = Usage(input_tokens=10, output_tokens=100, reasoning_tokens=40, cache_write_tokens=30,
              cache_write_1h_tokens=10)
    # 10x1 + 20x1.25 + 10x2 + 60x4 + 40x8 = 10 + 25 + 20 + 240 + 320 = 615 per million, + 0.0005
    assert compile_rates(rates).cost_usd(u) == D("0.000615") + D("0.0005")  # type: ignore[union-attr]
    assert cost_text(rates, u) == format_usd(rates.cost(u)) == "0.001115"


def test_tiers_bill_the_whole_call_at_the_tier_of_its_prompt() -> None:
    over = Rates(D("6"), D("22.5"), D("0.6"), D("7.5"), D("12"))
    rates = Rates(D("3"), D("15"), D("0.3"), D("3.75"), D("6"), tiers=((200_000, over),))
    small = Usage(input_tokens=200_000, output_tokens=1000)
    big = Usage(input_tokens=100_000, output_tokens=1000, cache_read_tokens=150_000)
    exact = compile_rates(rates)
    assert exact is not None
    assert exact.cost_usd(small) == D("0.615")  # 200k x 3 + 1k x 15, per million: not above 200k
    assert exact.cost_usd(big) == D("0.7125")  # 100k x 6 + 150k x 0.6 + 1k x 22.5
    assert exact.saving_units(big) == 150_000 * (6_000_000 - 600_000)  # (6 - 0.6) $/M at the upper tier
    assert exact.cost_text(big) == format_usd(rates.cost(big))


def test_no_saving_when_reads_cost_no_less_and_unmirrorable_rates() -> None:
    odd = Rates(D("1"), D("1"), D("2"), D("1"), D("1"))
    assert compile_rates(odd).saving_units(Usage(cache_read_tokens=10)) == 0  # type: ignore[union-attr]
    assert compile_rates(Rates(D("NaN"), D("1"), D("1"), D("1"), D("1"))) is None
    # cost_text still answers through Decimal
    fine = Rates(D("0.123456789012345678901234"), D("1"), D("0"), D("0"), D("0"))
    assert compile_rates(fine) is None
    u = Usage(input_tokens=3, output_tokens=1)
    assert cost_text(fine, u) == format_usd(fine.cost(u))


def test_negative_counts_raise_as_rates_cost_does() -> None:
    u = Usage(input_tokens=-1)
    with pytest.raises(ValueError):
        SONNET.cost(u)
    with pytest.raises(ValueError):
        compile_rates(SONNET).cost_text(u)  # type: ignore[union-attr]


def test_units_and_strings() -> None:
    assert UNIT == 10**12
    assert cost_units("0.011250") == 11_250_000_000
    assert cost_units("0.0000000000001") == D("0.1")
    assert scaled_to_units(5, 13) == D("0.5") and scaled_to_units(5, 6) == 5_000_000
    assert units_to_usd(1) == D("1E-12")
    assert usd_text(units_to_usd(1)) == "0.000000000001"  # JSON gets plain digits, never 1E-12
    for bad in ("-1", "abc", "Infinity"):
        with pytest.raises(ValueError):
            cost_units(bad)


_rate = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False)
_rates = st.builds(lambda a, b, c, d, e, r, fee: Rates(a, b, c, d, e, reasoning=r, per_request=fee),
                   _rate, _rate, _rate, _rate, _rate, st.none() | _rate,
                   st.sampled_from([D(0), D(0), D("0.001"), D("0.0000001")]))
_count = st.integers(min_value=0, max_value=3_000_000)


@st.composite
def _tiered(draw: st.DrawFn) -> Rates:
    base = draw(_rates)
    thresholds = sorted(set(draw(st.lists(st.integers(min_value=1, max_value=2_000_000), max_size=3))))
    tiers = tuple((t, draw(_rates)) for t in thresholds)
    return Rates(base.input, base.output, base.cache_read, base.cache_write, base.cache_write_1h,
                 reasoning=base.reasoning, per_request=base.per_request, tiers=tiers)


@settings(max_examples=400, deadline=None)
@given(_tiered(), _count, _count, _count, _count, _count, _count)
def test_compiled_rates_equal_rates_cost_exactly(rates: Rates, inp: int, out: int, cr: int, cw: int,
                                                 cw1h: int, rs: int) -> None:
    u = Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=cr, cache_write_tokens=cw,
              cache_write_1h_tokens=cw1h, reasoning_tokens=rs)
    exact = compile_rates(rates)
    assert exact is not None
    want = rates.cost(u)
    assert exact.cost_usd(u) == want
    assert cost_units(format(want, "f")) == exact.cost_units(u)
    assert exact.cost_text(u) == format_usd(want)  # digit for digit, trailing zeros included
    tier = rates.for_prompt(inp + cr + cw)
    saving = max(D(0), (tier.input - tier.cache_read) * cr) / 1_000_000
    assert units_to_usd(exact.saving_units(u)) == saving


def test_sums_of_costs_finer_than_a_unit_stay_exact() -> None:
    # The line format allows 40 decimals below $10^9; a Decimal sum would round
    # to 28 digits (2 x 999999999.9...9 came out as 2000000000.000000).
    cost = "999999999." + "9" * 40
    total = cost_units(cost) + cost_units(cost) + cost_units("0.000001")
    assert str(units_to_usd(total)) == "2000000000.000000" + "9" * 33 + "8"  # 40 places, none lost
    assert cost_units("0.25") == 250_000_000_000 and type(cost_units("0.0000000000005")) is not int


def _digits_by_slicing(n: int, k: int) -> str:
    """``money._digits`` as first written: two str() and a slice (the plain version of its %-format)."""
    if not n:
        return "0." + "0" * max(6, k)
    places = k + 6
    z = min(k, 6)
    while z and not n % 10:
        n //= 10
        places -= 1
        z -= 1
    scale = 10**places
    q, r = divmod(n, scale)
    return str(q) + "." + str(r + scale)[1:]


@settings(max_examples=3000, deadline=None)
@given(st.one_of(st.integers(min_value=0, max_value=10**60), st.integers(min_value=0, max_value=10**6).map(
    lambda n: n * 10**7)), st.integers(min_value=0, max_value=40))
def test_the_digits_of_a_scaled_cost_are_the_sliced_ones(n: int, k: int) -> None:
    from flightdeck.core.money import _digits

    assert _digits(n, k) == _digits_by_slicing(n, k)
