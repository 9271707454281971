"""Pricing: each layer, genai-prices' dated/tiered/off-peak rules, and a cross-check against calc_price."""

from __future__ import annotations

import random
import warnings
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import genai_prices
import pytest
from genai_prices import data_snapshot
from genai_prices.types import ModelPrice, TieredPrices

from flightdeck.core import pricing
from flightdeck.core.events import Usage
from flightdeck.core.price_overrides import OverrideError, Overrides
from flightdeck.core.pricing import Price, Pricer, Rates, default_pricer, price, set_default_pricer

T_2025_01_01 = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
T_2025_11_27 = datetime(2025, 11, 27, 12, tzinfo=UTC).timestamp()


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test starts without the developer's own ~/.config overrides."""
    config = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    return config


@pytest.fixture
def pricer() -> Pricer:
    return Pricer()


def mtok(*pairs: tuple[int, str]) -> Decimal:
    """Sum of tokens x rate($/MTok) / 1e6, computed independently of the module."""
    return sum((Decimal(n) * Decimal(rate) for n, rate in pairs), Decimal(0)) / 1_000_000


# -- the genai-prices layer --------------------------------------------------------


def test_spec_example_is_priced_exactly(pricer: Pricer) -> None:
    usage = Usage(input_tokens=1200, output_tokens=350, cache_read_tokens=8000)
    result = pricer.price("anthropic", "claude-3-5-sonnet", usage, T_2025_11_27)
    assert result.usd == Decimal("0.011250")
    assert result.status == "priced"
    assert "genai-prices" in result.source and "anthropic/claude-3-5-sonnet" in result.source


def test_cache_write_1h_is_priced_at_the_1h_rate(pricer: Pricer) -> None:
    # claude-3-5-sonnet: input 3, cache write (5m) 3.75, cache write 1h 6.
    usage = Usage(input_tokens=10, cache_write_tokens=1000, cache_write_1h_tokens=400, output_tokens=0)
    result = pricer.price("anthropic", "claude-3-5-sonnet", usage, T_2025_11_27)
    assert result.usd == mtok((10, "3"), (600, "3.75"), (400, "6"))
    rates = pricer.rates("anthropic", "claude-3-5-sonnet", T_2025_11_27)
    assert rates is not None
    assert (rates.input, rates.cache_write, rates.cache_write_1h) == (Decimal("3"), Decimal("3.75"), Decimal("6"))


def test_tiered_prompt_over_200k_pays_the_higher_rate_on_every_token(pricer: Pricer) -> None:
    rates = pricer.rates("google", "gemini-2.5-pro", T_2025_11_27)
    assert rates is not None and rates.tiers
    threshold, high = rates.tiers[0]
    assert threshold == 200_000 and high.input > rates.input and high.output > rates.output
    at = pricer.price("google", "gemini-2.5-pro", Usage(input_tokens=200_000, output_tokens=1000), T_2025_11_27)
    over = pricer.price("google", "gemini-2.5-pro", Usage(input_tokens=200_001, output_tokens=1000), T_2025_11_27)
    assert at.usd == mtok((200_000, str(rates.input)), (1000, str(rates.output)))
    assert over.usd == mtok((200_001, str(high.input)), (1000, str(high.output)))
    # The threshold counts the whole prompt: cache reads push it over too.
    mixed = Usage(input_tokens=100_000, cache_read_tokens=100_001, output_tokens=0)
    assert pricer.price("google", "gemini-2.5-pro", mixed, T_2025_11_27).usd == mtok(
        (100_000, str(high.input)), (100_001, str(high.cache_read))
    )


def test_dated_price_change_uses_the_calls_time_not_now(pricer: Pricer) -> None:
    # genai-prices: o3 dropped from $10 to $2 per MTok input on 2025-06-10.
    usage = Usage(input_tokens=1_000_000)
    before = pricer.price("openai", "o3", usage, datetime(2025, 6, 9, 23, 59, tzinfo=UTC))
    after = pricer.price("openai", "o3", usage, datetime(2025, 6, 10, 0, 0, tzinfo=UTC))
    assert before.usd == Decimal(10) and after.usd == Decimal(2)
    assert "price from 2025-06-10" in after.source
    # Epoch seconds and naive datetimes (taken as UTC) mean the same thing.
    assert pricer.price("openai", "o3", usage, datetime(2025, 6, 9, 23, 59)).usd == Decimal(10)
    assert pricer.price("openai", "o3", usage, T_2025_01_01).usd == Decimal(10)
    rates = pricer.rates("openai", "o3", T_2025_01_01)
    assert rates is not None and rates.date_matters and any("2025-06-10" in s for s in rates.schedule)


def test_off_peak_time_of_day_prices_follow_genai(pricer: Pricer) -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cache_read_tokens=1_000_000)
    day = datetime(2025, 11, 27, tzinfo=UTC)
    results = set()
    for hour in (0, 3, 8, 12, 17, 23):
        when = day.replace(hour=hour, minute=45)
        ours = pricer.price("deepseek", "deepseek-chat", usage, when).usd
        theirs = genai_prices.calc_price(
            genai_prices.Usage(input_tokens=2_000_000, cache_read_tokens=1_000_000, output_tokens=1_000_000),
            "deepseek-chat", provider_id="deepseek", genai_request_timestamp=when,
        ).total_price
        assert ours == theirs, hour
        results.add(ours)
    assert len(results) == 2  # peak and off-peak


def test_reasoning_priced_separately_where_the_model_says_so(pricer: Pricer) -> None:
    rates = pricer.rates("openrouter", "perplexity/sonar-deep-research", T_2025_11_27)
    assert rates is not None and rates.reasoning is not None and rates.reasoning != rates.output
    usage = Usage(input_tokens=0, output_tokens=1000, reasoning_tokens=600)
    got = pricer.price("openrouter", "perplexity/sonar-deep-research", usage, T_2025_11_27).usd
    assert got == mtok((400, str(rates.output)), (600, str(rates.reasoning)))


@pytest.mark.parametrize(
    ("provider", "model", "expect_id"),
    [
        ("bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", "aws/"),
        ("litellm", "openai/gpt-4o", "openai/gpt-4o"),
        ("vertex", "gemini-2.5-pro", "google/gemini-2.5-pro"),
        ("gemini", "gemini-2.5-pro", "google/gemini-2.5-pro"),
        ("my-gateway", "gpt-4o", "openai/gpt-4o"),  # unknown provider: matched by model
        ("openai", "deepseek-chat", "deepseek/deepseek-chat"),  # OpenAI SDK pointed at DeepSeek
        ("openrouter", "anthropic/claude-3.5-sonnet", "openrouter/"),
    ],
)
def test_provider_names_map_to_genai(pricer: Pricer, provider: str, model: str, expect_id: str) -> None:
    result = pricer.price(provider, model, Usage(input_tokens=100, output_tokens=100), T_2025_11_27)
    assert result.status == "priced", result
    assert expect_id in result.source
    assert result.usd is not None and result.usd > 0


def test_missing_cache_rate_falls_back_to_input_and_says_so(pricer: Pricer) -> None:
    rates = pricer.rates("google", "gemini-2.5-pro", T_2025_11_27)
    assert rates is not None
    assert rates.cache_write == rates.input
    assert "cache writes at the input rate" in rates.source


# -- local, reported, unknown ------------------------------------------------------


def test_local_route_and_ollama_cost_nothing(pricer: Pricer) -> None:
    usage = Usage(input_tokens=10**6, output_tokens=10**6)
    assert pricer.price("anthropic", "claude-3-5-sonnet", usage, route="local") == Price(
        Decimal(0), "local", "local model: no charge"
    )
    assert pricer.price("ollama", "llama3.1:8b", usage).status == "local"
    # An explicit non-local route overrides the provider's default.
    assert pricer.price("ollama", "llama3.1:8b", usage, route="proxy").status == "unknown"
    local_rates = pricer.rates("ollama", "llama3.1:8b")
    assert local_rates is not None and local_rates.status == "local" and local_rates.input == 0


def test_reported_amount_wins_over_the_database_but_not_over_local(pricer: Pricer) -> None:
    usage = Usage(input_tokens=1000, output_tokens=1000)
    reported = pricer.price("openrouter", "x/whatever", usage, reported_usd=Decimal("0.0042"))
    assert (reported.usd, reported.status) == (Decimal("0.0042"), "reported")
    known = pricer.price("anthropic", "claude-3-5-sonnet", usage, reported_usd=Decimal("1.5"))
    assert (known.usd, known.status) == (Decimal("1.5"), "reported")
    local = pricer.price("ollama", "llama3", usage, reported_usd=Decimal("1.5"))
    assert local.status == "local"
    # A nonsense reported amount is ignored, not trusted.
    bad = pricer.price("anthropic", "claude-3-5-sonnet", usage, reported_usd=Decimal("NaN"))
    assert bad.status == "priced"


@pytest.mark.parametrize(
    "model",
    ["no-such-model-xyz", "", "   ", "/", "*", "?[", "\x00\n\t", "é" * 3, "a" * 10_000, "openai/", "//gpt"],
)
def test_unknown_and_weird_models_never_raise(pricer: Pricer, model: str) -> None:
    result = pricer.price("nosuchprovider", model, Usage(input_tokens=5, output_tokens=5))
    assert result.usd is None and result.status == "unknown" and result.source
    assert pricer.rates("nosuchprovider", model) is None


@pytest.mark.parametrize("provider", ["", "OPENAI", " anthropic ", "litellm", "x" * 500])
def test_odd_provider_strings_never_raise(pricer: Pricer, provider: str) -> None:
    result = pricer.price(provider, "weird model name \u202e", Usage(input_tokens=1))
    assert result.status in {"priced", "unknown"}


def test_bad_inputs_come_back_unknown_not_raised(pricer: Pricer) -> None:
    usage = Usage(input_tokens=1, output_tokens=1)
    assert pricer.price("anthropic", "claude-3-5-sonnet", usage, float("nan")).status == "unknown"
    assert pricer.price("anthropic", "claude-3-5-sonnet", usage, 1e300).status == "unknown"
    assert pricer.price("anthropic", "claude-3-5-sonnet", None).status == "unknown"  # type: ignore[arg-type]
    assert pricer.price(None, None, usage).status == "unknown"  # type: ignore[arg-type]
    negative = Usage(input_tokens=-5, output_tokens=1)  # constructed in code: not validated
    assert pricer.price("anthropic", "claude-3-5-sonnet", negative).usd is None
    floats = Usage(input_tokens=1.5, output_tokens=1)  # type: ignore[arg-type]
    assert pricer.price("anthropic", "claude-3-5-sonnet", floats).status == "unknown"


def test_huge_token_counts_stay_exact(pricer: Pricer) -> None:
    usage = Usage(input_tokens=10**15, output_tokens=10**15, cache_read_tokens=10**15)
    result = pricer.price("anthropic", "claude-3-5-sonnet", usage, T_2025_11_27)
    assert result.usd == mtok((10**15, "3"), (10**15, "15"), (10**15, "0.3"))


def test_sub_buckets_larger_than_their_parent_are_clamped(pricer: Pricer) -> None:
    # A writer that did not validate: 1h writes > writes, reasoning > output.
    usage = Usage(input_tokens=0, output_tokens=10, reasoning_tokens=50, cache_write_tokens=100,
                  cache_write_1h_tokens=500)
    result = pricer.price("anthropic", "claude-3-5-sonnet", usage, T_2025_11_27)
    assert result.usd == mtok((10, "15"), (100, "6"))


# -- caching ------------------------------------------------------------------------


def test_rates_are_cached_per_model_and_day(pricer: Pricer) -> None:
    first = pricer.rates("anthropic", "claude-3-5-sonnet", T_2025_11_27)
    assert first is pricer.rates("anthropic", "claude-3-5-sonnet", T_2025_11_27 + 3600)
    assert first is not pricer.rates("anthropic", "claude-3-5-sonnet", T_2025_11_27 + 86400)
    # Misses are cached too: an unknown model is resolved once.
    pricer.price("x", "nope", Usage())
    assert ("x", "nope", None) in pricer._resolved


def test_cache_savings_figure_from_rates(pricer: Pricer) -> None:
    rates = pricer.rates("anthropic", "claude-3-5-sonnet", T_2025_11_27)
    assert rates is not None
    saved = Decimal(8000) * (rates.input - rates.cache_read) / 1_000_000
    assert saved == Decimal("0.0216")


def test_module_level_price_uses_the_default_pricer(tmp_path: Path) -> None:
    overrides = tmp_path / "p.toml"
    overrides.write_text('[[model]]\nmatch = "house-model"\ninput = "1"\noutput = "2"\n')
    before = default_pricer()
    try:
        set_default_pricer(Pricer(overrides))
        got = price("openai", "house-model", Usage(input_tokens=10**6, output_tokens=10**6))
        assert (got.usd, got.status) == (Decimal(3), "override")
    finally:
        set_default_pricer(before)


# -- overrides ----------------------------------------------------------------------

OVERRIDES = """\
# my rates
[[model]]
match = "my-finetune-*"
provider = "openai"
input = "2.50"
output = "10.00"
cache_read = "1.25"

[[model]]
match = "gpt-4o"
input = "1"
output = 2
since = "2025-06-01"

[[model]]
match = "gpt-4o"
input = "0.5"
output = "1"
since = 2025-09-01

[[model]]
match = "big-*"
input = "1"
output = "1"
cache_write_1h = "9"

[[model.tier]]
above = 1000
input = "4"
"""


@pytest.fixture
def override_file(tmp_path: Path) -> Path:
    path = tmp_path / "prices.toml"
    path.write_text(OVERRIDES)
    return path


def test_override_matches_by_pattern_and_provider(override_file: Path) -> None:
    pricer = Pricer(override_file)
    usage = Usage(input_tokens=10**6, output_tokens=10**6, cache_read_tokens=10**6, cache_write_tokens=10**6)
    got = pricer.price("openai", "My-Finetune-v2", usage, T_2025_11_27)
    assert got.status == "override"
    assert got.usd == Decimal("2.50") + Decimal("10.00") + Decimal("1.25") + Decimal("2.50")  # write: input rate
    assert str(override_file) in got.source and "line 2" in got.source
    # provider = "openai" limits it: the same model from elsewhere is unknown.
    assert pricer.price("azure", "my-finetune-v2", usage, T_2025_11_27).status == "unknown"


def test_dated_overrides_and_fall_through_before_the_first_date(override_file: Path) -> None:
    pricer = Pricer(override_file)
    usage = Usage(input_tokens=10**6, output_tokens=10**6)
    early = pricer.price("openai", "gpt-4o", usage, T_2025_01_01)
    assert early.status == "priced"  # no override in force yet: genai-prices
    mid = pricer.price("openai", "gpt-4o", usage, datetime(2025, 7, 1, tzinfo=UTC))
    late = pricer.price("openai", "gpt-4o", usage, datetime(2025, 9, 1, tzinfo=UTC))
    assert (mid.usd, mid.status) == (Decimal(3), "override")
    assert (late.usd, late.status) == (Decimal("1.5"), "override")
    rates = pricer.rates("openai", "gpt-4o", T_2025_11_27)
    assert rates is not None and rates.date_matters


def test_override_tiers_and_1h_writes(override_file: Path) -> None:
    pricer = Pricer(override_file)
    small = pricer.price("x", "big-one", Usage(input_tokens=1000, cache_write_tokens=0, output_tokens=0))
    large = pricer.price("x", "big-one", Usage(input_tokens=1001, output_tokens=1000))
    assert small.usd == mtok((1000, "1"))
    assert large.usd == mtok((1001, "4"), (1000, "1"))  # the tier inherits output
    writes = pricer.price("x", "big-one", Usage(input_tokens=0, cache_write_tokens=10, cache_write_1h_tokens=10))
    assert writes.usd == mtok((10, "9"))


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ('[[model]]\nmatch = "a"\ninput = "1"\noutpt = "2"\n', ["line 4", "outpt"]),
        ('[[model]]\nmatch = "a"\ninput = 1.5\noutput = "2"\n', ["line 3", "input", "string"]),
        ('[[model]]\nmatch = "a"\noutput = "2"\n', ["input", "required"]),
        ('[[model]]\nmatch = "a"\ninput = "1"\noutput = "-2"\n', ["line 4", "output"]),
        ('[[model]]\nmatch = "a"\ninput = "x1"\noutput = "2"\n', ["line 3", "input"]),
        ('[[model]]\ninput = "1"\noutput = "2"\n', ["match", "required"]),
        ('[[model]]\nmatch = "a"\ninput = "1"\noutput = "2"\nsince = "June"\n', ["line 5", "since"]),
        ('[[model]]\nmatch = "a"\ninput = "1"\n\n[[model]]\nmatch = "b"\ninput = "1"\noutput = "2"\nfoo = 1\n',
         ["output"]),
        ('[[model]]\nmatch = "a"\ninput = "1"\noutput = "2"\n[[model]]\nmatch = "b"\ninput = "1"\noutput = "2"\n'
         'bogus = 1\n', ["line 9", "bogus"]),
        ('[[model]\nmatch = "a"\n', ["not valid TOML", "line 1"]),
        ('rates = 1\n', ["rates"]),
    ],
)
def test_broken_override_file_names_file_line_and_field(tmp_path: Path, text: str, needles: list[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(OverrideError) as info:
        Pricer(path)
    message = str(info.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message, message


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OverrideError, match=r"nope.toml"):
        Pricer(tmp_path / "nope.toml")


def test_auto_loaded_broken_file_warns_once_and_continues(
    no_user_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (no_user_config / "flightdeck").mkdir(parents=True)
    bad = no_user_config / "flightdeck" / "prices.toml"
    bad.write_text('[[model]]\nmatch = "a"\ninput = 1.5\noutput = "1"\n')
    pricing._warned.clear()
    first = Pricer()
    second = Pricer()
    assert first.overrides is None and second.overrides is None
    err = capsys.readouterr().err
    assert err.count("ignoring your price overrides") == 1 and str(bad) in err
    assert first.price("anthropic", "claude-3-5-sonnet", Usage(input_tokens=1)).status == "priced"


def test_auto_loaded_good_file_is_used(no_user_config: Path) -> None:
    (no_user_config / "flightdeck").mkdir(parents=True)
    (no_user_config / "flightdeck" / "prices.toml").write_text(
        '[[model]]\nmatch = "claude-3-5-sonnet"\ninput = "1"\noutput = "1"\n'
    )
    got = Pricer().price("anthropic", "claude-3-5-sonnet", Usage(input_tokens=10**6))
    assert (got.usd, got.status) == (Decimal(1), "override")


def test_override_groups_keep_file_order() -> None:
    # The first matching pattern wins even if a later one is more specific.
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as handle:
        handle.write('[[model]]\nmatch = "m-*"\ninput = "1"\noutput = "1"\n'
                     '[[model]]\nmatch = "m-1"\ninput = "5"\noutput = "5"\n')
    overrides = Overrides.load(handle.name)
    group = overrides.lookup("p", "m-1")
    assert group is not None and group[0].match == "m-*"
    assert Overrides.in_force(group, date(2020, 1, 1)) is group[0]
    Path(handle.name).unlink()


# -- cross-check against genai-prices' own calc_price --------------------------------


def _token_priced_models() -> list[tuple[str, str]]:
    snapshot = data_snapshot.get_snapshot()
    pairs = []
    for provider in snapshot.providers:
        for model in provider.models:
            prices = model.prices if isinstance(model.prices, list) else None
            price_sets = [c.prices for c in prices] if prices else [model.prices]
            if all(isinstance(p, ModelPrice) and (p.input_mtok is not None or p.output_mtok is not None)
                   for p in price_sets):
                pairs.append((provider.id, model.id))
    return pairs


def _random_usage(rng: random.Random) -> Usage:
    scale = rng.choice([100, 10_000, 150_000, 400_000, 2_000_000])
    cache_write = rng.choice([0, 0, rng.randrange(scale)])
    output = rng.randrange(scale // 10 + 1)
    return Usage(
        input_tokens=rng.randrange(scale),
        cache_read_tokens=rng.choice([0, rng.randrange(scale)]),
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=rng.choice([0, rng.randrange(cache_write + 1)]),
        output_tokens=output,
        reasoning_tokens=rng.choice([0, rng.randrange(output + 1)]),
    )


def _genai_usage(u: Usage) -> genai_prices.Usage:
    return genai_prices.Usage(
        input_tokens=u.input_tokens + u.cache_read_tokens + u.cache_write_tokens,
        cache_read_tokens=u.cache_read_tokens,
        cache_write_tokens=u.cache_write_tokens,
        cache_write_1h_tokens=u.cache_write_1h_tokens,
        output_tokens=u.output_tokens,
        output_reasoning_tokens=u.reasoning_tokens,
    )


def test_matches_genai_calc_price_exactly_across_many_models(pricer: Pricer) -> None:
    pricer.corrections = None  # this checks the genai engine; the corrections differ on purpose
    rng = random.Random(20261127)
    models = _token_priced_models()
    assert len(models) > 1000
    tiered = 0
    checked = 0
    for provider_id, model_id in rng.sample(models, 600):
        usage = _random_usage(rng)
        when = datetime(2024, 1, 1, tzinfo=UTC).timestamp() + rng.randrange(3 * 365 * 86400)
        when_dt = datetime.fromtimestamp(when, UTC)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs = genai_prices.calc_price(
                    _genai_usage(usage), model_id, provider_id=provider_id, genai_request_timestamp=when_dt
                )
        except LookupError:
            continue
        ours = pricer.price(provider_id, model_id, usage, when)
        assert ours.status == "priced", (provider_id, model_id, ours)
        assert ours.usd == theirs.total_price, (provider_id, model_id, usage, when_dt, ours, theirs.total_price)
        checked += 1
        if any(isinstance(v, TieredPrices) for v in theirs.model_price.__dict__.values()):
            tiered += 1
    assert checked > 500 and tiered > 20


def test_rates_dataclass_is_frozen() -> None:
    rates = Rates(Decimal(1), Decimal(2), Decimal(0), Decimal(1), Decimal(1))
    with pytest.raises(AttributeError):
        rates.input = Decimal(5)  # type: ignore[misc]
    assert rates.for_prompt(10**9) is rates


# -- corrections, service tiers and speed --------------------------------------------
# Published prices (USD per MTok), from the provider's own pages:
#   Anthropic long context (platform.claude.com/docs/en/about-claude/pricing#long-context-pricing):
#     Sonnet 4 / 4.5, prompt > 200k tokens, the whole request: input 6, output 22.50
#     (cache: reads 0.1x, 5m writes 1.25x, 1h writes 2x of the input rate).
#   Anthropic fast mode (build-with-claude/fast-mode, Opus 4.6): speed "fast", prompt <= 200k:
#     input 30, output 150; prompt > 200k: input 60, output 225 (caching multipliers on top).
#   Anthropic batch (build-with-claude/batch-processing): 50% of standard prices.

T_2026_06_01 = datetime(2026, 6, 1, 12, tzinfo=UTC).timestamp()
T_2026_11_01 = datetime(2026, 11, 1, 12, tzinfo=UTC).timestamp()  # genai's tier variants start 2026-10-12/14


@pytest.mark.parametrize("model", ["claude-sonnet-4-20250514", "claude-sonnet-4-0", "claude-sonnet-4-5",
                                   "claude-sonnet-4-5-20250929"])
def test_sonnet_4_long_context_bills_the_whole_request(pricer: Pricer, model: str) -> None:
    big = Usage(input_tokens=250_000, cache_read_tokens=40_000, cache_write_tokens=10_000,
                cache_write_1h_tokens=4_000, output_tokens=2_000)
    result = pricer.price("anthropic", model, big, T_2026_06_01)
    assert result.status == "priced"
    assert result.usd == mtok((250_000, "6"), (40_000, "0.60"), (6_000, "7.50"), (4_000, "12"),
                              (2_000, "22.50"))
    small = Usage(input_tokens=150_000, cache_read_tokens=50_000, output_tokens=1_000)  # exactly 200k
    assert pricer.price("anthropic", model, small, T_2026_06_01).usd == mtok(
        (150_000, "3"), (50_000, "0.30"), (1_000, "15"))


def test_sonnet_4_price_source_says_a_correction_applied(pricer: Pricer) -> None:
    result = pricer.price("anthropic", "claude-sonnet-4-20250514", Usage(input_tokens=1), T_2026_06_01)
    assert result.source.startswith(pricing.CORRECTION_PREFIX)
    assert "platform.claude.com" in result.source and "price_corrections.toml" in result.source
    # Sonnet 4.5's long-context tier is already right in genai-prices: no correction.
    assert "genai-prices" in pricer.price("anthropic", "claude-sonnet-4-5", Usage(input_tokens=1)).source


def test_opus_4_6_fast_mode_is_six_times_the_rate(pricer: Pricer) -> None:
    usage = Usage(input_tokens=100_000, output_tokens=100_000)
    standard = pricer.price("anthropic", "claude-opus-4-6", usage, T_2026_06_01)
    fast = pricer.price("anthropic", "claude-opus-4-6", usage, T_2026_06_01, speed="fast")
    assert standard.usd == Decimal("3") and fast.usd == Decimal("18")
    assert fast.usd == 6 * standard.usd
    assert fast.source.startswith(pricing.CORRECTION_PREFIX) and "fast-mode" in fast.source
    long = Usage(input_tokens=250_000, cache_read_tokens=50_000, output_tokens=10_000)
    before = datetime(2026, 3, 1, tzinfo=UTC).timestamp()  # long-context tier still in force
    assert pricer.price("anthropic", "claude-opus-4-6", long, before, speed="fast").usd == mtok(
        (250_000, "60"), (50_000, "6"), (10_000, "225"))
    # From 2026-03-13 the standard rate is flat over the whole context, and fast mode 6x of it.
    assert pricer.price("anthropic", "claude-opus-4-6", long, T_2026_06_01, speed="fast").usd == mtok(
        (250_000, "30"), (50_000, "3"), (10_000, "150"))
    assert pricer.price("anthropic", "claude-opus-4-6", long, T_2026_06_01).usd == mtok(
        (250_000, "5"), (50_000, "0.5"), (10_000, "25"))
    cached = Usage(input_tokens=0, cache_read_tokens=100_000, cache_write_tokens=50_000,
                   cache_write_1h_tokens=25_000, output_tokens=0)
    assert pricer.price("anthropic", "claude-opus-4-6", cached, T_2026_06_01, speed="fast").usd == mtok(
        (100_000, "3"), (25_000, "37.50"), (25_000, "60"))
    # "standard" is the standard speed.
    assert pricer.price("anthropic", "claude-opus-4-6", usage, T_2026_06_01, speed="standard") == standard


def test_genai_speed_variant_is_used_where_it_exists(pricer: Pricer) -> None:
    snapshot = data_snapshot.get_snapshot()
    provider, model = snapshot.find_provider_model("claude-fable-5-2", None, "anthropic", None)
    usage = Usage(input_tokens=1000, output_tokens=500)
    when = datetime.fromtimestamp(T_2026_06_01, UTC)
    theirs = model.calc_price(_genai_usage(usage), provider, genai_request_timestamp=when,
                              price_context={"speed": "fast"})
    ours = pricer.price("anthropic", "claude-fable-5-2", usage, T_2026_06_01, speed="fast")
    assert ours.usd == theirs.total_price and ours.usd != pricer.price(
        "anthropic", "claude-fable-5-2", usage, T_2026_06_01).usd
    assert "speed=fast" in ours.source


@pytest.mark.parametrize("tier", ["flex", "priority"])
def test_openai_flex_and_priority_use_genai_price_context(pricer: Pricer, tier: str) -> None:
    snapshot = data_snapshot.get_snapshot()
    provider, model = snapshot.find_provider_model("gpt-5", None, "openai", None)
    usage = Usage(input_tokens=10_000, cache_read_tokens=30_000, output_tokens=5_000, reasoning_tokens=2_000)
    when = datetime.fromtimestamp(T_2026_11_01, UTC)
    theirs = model.calc_price(_genai_usage(usage), provider, genai_request_timestamp=when,
                              price_context={"service_tier": tier})
    ours = pricer.price("openai", "gpt-5", usage, T_2026_11_01, service_tier=tier)
    assert ours.status == "priced" and ours.usd == theirs.total_price
    # Published: gpt-5 flex is half the standard rate, priority double (1.25 -> 0.625 / 2.50 input).
    standard = pricer.price("openai", "gpt-5", usage, T_2026_11_01)
    assert standard.usd is not None
    assert ours.usd == standard.usd * (Decimal("0.5") if tier == "flex" else 2)
    assert f"service_tier={tier}" in ours.source
    # Before genai's flex/priority rates start, the tier has no known rate: unknown, not standard.
    assert pricer.price("openai", "gpt-5", usage, T_2026_06_01, service_tier=tier).status == "unknown"


@pytest.mark.parametrize("tier", [None, "default", "standard", "auto", "DEFAULT", "on_demand"])
def test_standard_tier_names_are_the_standard_rate(pricer: Pricer, tier: str | None) -> None:
    usage = Usage(input_tokens=1000, output_tokens=100)
    assert pricer.price("openai", "gpt-5", usage, T_2026_06_01, service_tier=tier) == pricer.price(
        "openai", "gpt-5", usage, T_2026_06_01)


def test_batch_uses_genai_batch_variant(pricer: Pricer) -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    batch = pricer.price("anthropic", "claude-opus-4-5", usage, T_2026_11_01, service_tier="batch")
    assert batch.usd == Decimal("15")  # published batch: $2.50 + $12.50
    assert "processing=batch" in batch.source


def test_batch_without_a_batch_rate_is_half_where_the_provider_says_so(pricer: Pricer) -> None:
    usage = Usage(input_tokens=100_000, output_tokens=100_000)
    batch = pricer.price("anthropic", "claude-sonnet-4-20250514", usage, T_2026_06_01, service_tier="batch")
    assert batch.usd == mtok((100_000, "1.50"), (100_000, "7.50"))  # half of $3 / $15
    assert "batch: half the standard rates" in batch.source and "batch-processing" in batch.source
    big = Usage(input_tokens=300_000)  # the long-context tier, halved too
    assert pricer.price("anthropic", "claude-sonnet-4-20250514", big, T_2026_06_01,
                        service_tier="batch").usd == mtok((300_000, "3"))


def test_a_tier_with_no_rate_is_unknown_never_the_standard_price(pricer: Pricer) -> None:
    usage = Usage(input_tokens=1000, output_tokens=100)
    result = pricer.price("anthropic", "claude-opus-4-6", usage, T_2026_06_01, service_tier="priority")
    assert result.usd is None and result.status == "unknown"
    assert "service_tier 'priority'" in result.source and 'service_tier = "priority"' in result.source
    assert pricer.rates("anthropic", "claude-opus-4-6", T_2026_06_01, service_tier="priority") is None
    # A provider that does not publish a batch discount: unknown too.
    snapshot = data_snapshot.get_snapshot()
    found = next(((p.id, m.id) for p in snapshot.providers if p.id not in pricing.BATCH_DISCOUNT
                  for m in p.models if not m.price_variants and pricer.rates(p.id, m.id) is not None), None)
    assert found is not None
    assert pricer.price(*found, usage, service_tier="batch").status == "unknown"


def test_user_override_for_a_tier(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text('[[model]]\nmatch = "claude-opus-4-6"\nservice_tier = "priority"\n'
                    'input = "7"\noutput = "35"\nsource = "our contract"\n')
    pricer = Pricer(path)
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    result = pricer.price("anthropic", "claude-opus-4-6", usage, T_2026_06_01, service_tier="priority")
    assert result == Price(Decimal("42"), "override", result.source)
    assert 'service_tier="priority"' in result.source
    # The standard tier is untouched by a tier-only entry.
    assert pricer.price("anthropic", "claude-opus-4-6", usage, T_2026_06_01).usd == Decimal("30")


def test_user_override_wins_over_a_correction(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text('[[model]]\nmatch = "claude-sonnet-4-2025*"\ninput = "1"\noutput = "1"\n')
    result = Pricer(path).price("anthropic", "claude-sonnet-4-20250514", Usage(input_tokens=300_000))
    assert result.status == "override" and result.usd == mtok((300_000, "1"))


def test_shipped_corrections_each_have_a_source() -> None:
    from flightdeck.core.price_overrides import CORRECTIONS_PATH, shipped_corrections

    table = shipped_corrections()
    entries = [entry for group in table.groups for entry in group]
    assert len(entries) >= 3 and all(entry.source and "https://" in entry.source for entry in entries)
    assert Overrides.load(CORRECTIONS_PATH, require_source=True).groups == table.groups


def test_an_entry_without_source_is_refused_where_required(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[[model]]\nmatch = "x"\ninput = "1"\noutput = "1"\n')
    with pytest.raises(OverrideError, match="'source': required here"):
        Overrides.load(path, require_source=True)
    assert Overrides.load(path).groups  # the user's own file needs none


def test_bad_tier_field_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[[model]]\nmatch = "x"\ninput = "1"\noutput = "1"\nservice_tier = 3\n')
    with pytest.raises(OverrideError, match=r"line 5: \[\[model\]\] field 'service_tier': must be a non-empty string"):
        Overrides.load(path)


def test_batch_halves_your_own_rate_not_the_database_batch_rate(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text('[[model]]\nmatch = "claude-opus-4-5"\ninput = "4"\noutput = "20"\n')
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    result = Pricer(path).price("anthropic", "claude-opus-4-5", usage, T_2026_11_01, service_tier="batch")
    # genai-prices' own batch variant would say $15; your rate is $24, and batch is half of it.
    assert result.status == "override" and result.usd == Decimal("12")
    assert "batch: half the standard rates" in result.source
    flex = Pricer(path).price("anthropic", "claude-opus-4-5", usage, T_2026_11_01, service_tier="flex")
    assert flex.status == "unknown" and "standard: override" in flex.source
