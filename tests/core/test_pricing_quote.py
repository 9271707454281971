"""``Pricer.text_quote`` (what the recorder keeps per model) answers as ``price_text`` for every call it covers."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_pricing import _random_usage, _token_priced_models
from test_pricing_text import LAYER_CASES, USAGE

from flightdeck.core.events import Usage
from flightdeck.core.pricing import Pricer

T = datetime(2025, 11, 27, 12, tzinfo=UTC).timestamp()


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    return config


def _same_over_span(pricer: Pricer, provider: str, model: str, usage: Usage, when: float, rng: random.Random,
                    **kw: str | None) -> tuple:
    """The quote at ``when`` against ``price_text`` at ``when`` and at other times of the span it claims."""
    quote = pricer.text_quote(provider, model, when, **kw)
    assert quote.since <= when < quote.until and quote.pricer is pricer
    lo = max(quote.since, when - 3 * 86400)
    hi = min(quote.until, when + 3 * 86400)
    for at in (when, lo, math.nextafter(hi, -math.inf), rng.uniform(lo, hi)):
        want = pricer.price_text(provider, model, usage, at, route=kw.get("route"),
                                 service_tier=kw.get("service_tier"), speed=kw.get("speed"))
        assert (quote.cost(usage), quote.status, quote.source) == want, (provider, model, usage, at, kw)
    return quote.cost(usage), quote.status


def test_many_models_usages_and_times() -> None:
    pricer = Pricer()
    rng = random.Random(20261201)
    priced = 0
    for provider_id, model_id in rng.sample(_token_priced_models(), 300):
        when = datetime(2024, 1, 1, tzinfo=UTC).timestamp() + rng.randrange(3 * 365 * 86400)
        _text, status = _same_over_span(pricer, provider_id, model_id, _random_usage(rng), when, rng)
        priced += status == "priced"
    assert priced > 200


@pytest.mark.parametrize(("provider", "model", "kw"),
                         [case for case in LAYER_CASES if "reported_usd" not in case[2]])
def test_each_layer_and_tier(provider: str, model: str, kw: dict) -> None:
    rng = random.Random(7)
    for usage in (USAGE, Usage(), Usage(input_tokens=10**14, output_tokens=10**14)):
        _same_over_span(Pricer(), provider, model, usage, T, rng, **kw)


def test_a_local_or_unknown_answer_holds_for_all_time() -> None:
    pricer = Pricer()
    for provider, model in (("ollama", "llama3"), ("nobody", "no-such-model")):
        quote = pricer.text_quote(provider, model, T)
        assert (quote.since, quote.until) == (-math.inf, math.inf)
    assert pricer.text_quote("ollama", "llama3", T).cost(USAGE) == pricer.price_text("ollama", "llama3", USAGE, T)[0]


def test_a_usage_price_text_refuses_raises_so_the_caller_asks_price_text() -> None:
    pricer = Pricer()
    quote = pricer.text_quote("anthropic", "claude-3-5-sonnet-20241022", T)
    with pytest.raises(ValueError):
        quote.cost(Usage(input_tokens=-1))
    assert pricer.price_text("anthropic", "claude-3-5-sonnet-20241022", Usage(input_tokens=-1), T)[1] == "unknown"
