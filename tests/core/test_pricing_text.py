"""``price_text`` (integer rates, what the recorder writes) gives ``format_usd(price(...).usd)`` digit for digit."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from test_pricing import _random_usage, _token_priced_models

from flightdeck.core import pricing
from flightdeck.core.events import Usage, format_usd
from flightdeck.core.pricing import Pricer, set_default_pricer

T = datetime(2025, 11, 27, 12, tzinfo=UTC).timestamp()


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    return config


def _same(pricer: Pricer, provider: str, model: str, usage: Usage, when: float = T, **kw: object) -> tuple:
    full = pricer.price(provider, model, usage, when, **kw)  # type: ignore[arg-type]
    text = pricer.price_text(provider, model, usage, when, **kw)  # type: ignore[arg-type]
    assert text == (None if full.usd is None else format_usd(full.usd), full.status, full.source), (
        provider, model, usage, kw)
    return text


def test_many_models_and_usages_give_the_same_digits() -> None:
    pricer = Pricer()
    rng = random.Random(20261201)
    priced = 0
    for provider_id, model_id in rng.sample(_token_priced_models(), 400):
        when = datetime(2024, 1, 1, tzinfo=UTC).timestamp() + rng.randrange(3 * 365 * 86400)
        text = _same(pricer, provider_id, model_id, _random_usage(rng), when)
        priced += text[1] == "priced"
    assert priced > 300


USAGE = Usage(input_tokens=300_000, output_tokens=2_000, cache_read_tokens=5_000, cache_write_tokens=3_000,
              cache_write_1h_tokens=1_000, reasoning_tokens=500)


# Every layer and tier, as (provider, model, price keywords); test_pricing_quote runs
# the ones without a reported amount.
LAYER_CASES: list[tuple[str, str, dict]] = [
    ("anthropic", "claude-sonnet-4-20250514", {}),  # a correction's long-context tier
    ("anthropic", "claude-opus-4-6", {"speed": "fast"}),
    ("anthropic", "claude-opus-4-5", {"service_tier": "batch"}),  # half the standard rate
    ("anthropic", "claude-opus-4-5", {"service_tier": "flex"}),  # no rate: unknown, never standard
    ("openai", "gpt-4o", {"service_tier": "flex"}),
    ("openai", "o4-mini", {"service_tier": "priority"}),
    ("ollama", "llama3", {}),  # local: 0
    ("openai", "gpt-4o", {"route": "local"}),
    ("openai", "gpt-4o", {"reported_usd": Decimal("0.0123")}),  # reported wins
    ("openai", "gpt-4o", {"reported_usd": Decimal("-1")}),  # not an amount: priced instead
    ("nobody", "no-such-model", {}),  # unknown, with its reason
    ("openai", "", {}),
]


@pytest.mark.parametrize(("provider", "model", "kw"), LAYER_CASES)
def test_each_layer_and_tier_gives_the_same_answer(provider: str, model: str, kw: dict) -> None:
    _same(Pricer(), provider, model, USAGE, **kw)


@pytest.mark.parametrize("usage", [
    Usage(),
    Usage(input_tokens=10**14, output_tokens=10**14, cache_read_tokens=10**14),  # beyond Decimal's 28 digits
    Usage(input_tokens=-1),  # built in code, negative: unknown with the reason
    Usage(output_tokens=10, reasoning_tokens=50, cache_write_tokens=1, cache_write_1h_tokens=9),  # clamped
])
def test_edge_usages_give_the_same_answer(usage: Usage) -> None:
    pricer = Pricer()
    for provider, model in (("anthropic", "claude-3-5-sonnet-20241022"), ("openai", "o3")):
        _same(pricer, provider, model, usage)


def test_overrides_with_a_fee_per_call_and_tiers(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text('[[model]]\nmatch = "mine-*"\ninput = "0.3333333"\noutput = "1.1"\nper_request = "0.0004"\n'
                    '[[model.tier]]\nabove = 1000\ninput = "7"\n')
    pricer = Pricer(path)
    for n in (0, 999, 1000, 1001, 10**9):
        assert _same(pricer, "x", "mine-1", Usage(input_tokens=n, output_tokens=n // 3))[1] == "override"


def test_the_module_function_uses_the_default_pricer(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text('[[model]]\nmatch = "gpt-4o"\ninput = "1"\noutput = "2"\n')
    before = pricing._default
    try:
        set_default_pricer(Pricer(path))
        assert pricing.price_text("openai", "gpt-4o", Usage(input_tokens=10**6))[:2] == ("1.000000", "override")
    finally:
        pricing._default = before


def test_the_cached_answer_follows_off_peak_edges_and_days() -> None:
    """One pricer asked all day (its answers cached) agrees with a fresh pricer at every moment."""
    cached = Pricer()
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cache_read_tokens=1_000_000)
    day = datetime(2025, 11, 26, tzinfo=UTC).timestamp()
    seen = set()
    for minute in range(0, 3 * 24 * 60, 7):  # three days, every 7 minutes, forwards then backwards
        for when in (day + minute * 60.0, day + (3 * 24 * 60 - minute) * 60.0):
            fresh = Pricer().price_text("deepseek", "deepseek-chat", usage, when)
            assert cached.price_text("deepseek", "deepseek-chat", usage, when) == fresh, when
            seen.add(fresh[0])
    assert len(seen) >= 2  # peak and off-peak both met


def _digits_by_slicing(n: int, k: int) -> str:
    """The first version of ``money._digits`` (string slicing), the reference for the integer one."""
    if not n:
        return "0." + "0" * max(6, k)
    digits = str(n)
    places = 6
    if k:
        if digits[-1] == "0":
            z = min(len(digits) - len(digits.rstrip("0")), k, 6)
            digits = digits[:-z]
            places = k + 6 - z
        else:
            places = k + 6
    if len(digits) <= places:
        digits = "0" * (places + 1 - len(digits)) + digits
    return digits[:-places] + "." + digits[-places:]


def test_integer_digits_match_the_slicing_version() -> None:
    from flightdeck.core.money import _digits

    rng = random.Random(11)
    cases = [(0, k) for k in range(10)] + [(10**e, k) for e in range(30) for k in range(10)]
    for _ in range(20000):
        k = rng.randint(0, 14)
        n = rng.choice([rng.randint(0, 10 ** rng.randint(1, 32)), rng.randint(0, 999) * 10 ** rng.randint(0, 14)])
        cases.append((n, k))
    for n, k in cases:
        assert _digits(n, k) == _digits_by_slicing(n, k), (n, k)


def test_a_negative_count_is_still_refused() -> None:
    from flightdeck.core.money import IntRates, compile_rates

    rates = pricing.default_pricer().rates("anthropic", "claude-3-5-sonnet-20241022", T)
    assert rates is not None
    exact = compile_rates(rates)
    assert isinstance(exact, IntRates)
    for field in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                  "reasoning_tokens", "cache_write_1h_tokens"):
        with pytest.raises(ValueError):
            exact.cost_text(Usage(**{field: -1}))
