"""Pricing speed: flightdeck's Pricer against genai_prices.calc_price, measured in the same run.

    /tmp/venv/bin/python benchmarks/bench_pricing.py [--calls N]

Prints microseconds per call and the speed-up ratio. The target is a warm
call (after the first for its provider/model) under 20 us.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime

import genai_prices

from flightdeck.core.events import Usage
from flightdeck.core.pricing import Pricer

MODELS = [
    ("anthropic", "claude-3-5-sonnet"),
    ("anthropic", "claude-sonnet-4-5"),
    ("openai", "gpt-4o"),
    ("openai", "o3"),
    ("google", "gemini-2.5-pro"),
    ("deepseek", "deepseek-chat"),
    ("mistral", "mistral-large-latest"),
    ("openrouter", "anthropic/claude-3.5-sonnet"),
]
USAGE = Usage(input_tokens=1200, output_tokens=350, cache_read_tokens=8000, cache_write_tokens=500)
T0 = datetime(2025, 11, 27, 12, tzinfo=UTC).timestamp()


def per_call_us(fn: Callable[[int], object], calls: int, repeats: int = 5) -> float:
    """Best of ``repeats`` runs, in microseconds per call."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(calls):
            fn(i)
        best = min(best, time.perf_counter() - start)
    return best / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    calls = parser.parse_args().calls

    genai_usage = genai_prices.Usage(input_tokens=9700, output_tokens=350, cache_read_tokens=8000,
                                     cache_write_tokens=500)
    when_dt = datetime.fromtimestamp(T0, UTC)
    warnings.simplefilter("ignore")

    def genai_one(i: int) -> object:
        provider, model = MODELS[i % len(MODELS)]
        return genai_prices.calc_price(genai_usage, model, provider_id=provider, genai_request_timestamp=when_dt)

    pricer = Pricer()

    def ours_one(i: int) -> object:
        provider, model = MODELS[i % len(MODELS)]
        return pricer.price(provider, model, USAGE, T0)

    def ours_days(i: int) -> object:  # a month of logs: a new UTC day every 1000 calls
        provider, model = MODELS[i % len(MODELS)]
        return pricer.price(provider, model, USAGE, T0 + (i // 1000 % 30) * 86400.0)

    def ours_unknown(i: int) -> object:
        return pricer.price("acme", "in-house-model", USAGE, T0)

    # The first call per (provider, model): resolution plus the day's rates, on a fresh Pricer.
    cold = Pricer()
    genai_prices.data_snapshot.get_snapshot()  # the one-off data load is not per model
    start = time.perf_counter()
    for provider, model in MODELS:
        cold.price(provider, model, USAGE, T0)
    cold_us = (time.perf_counter() - start) / len(MODELS) * 1e6

    genai_calls = max(calls // 10, 500)  # it is slow; fewer calls give the same per-call figure
    baseline = per_call_us(genai_one, genai_calls, repeats=3)
    results = {
        "warm, 8 models round robin": per_call_us(ours_one, calls),
        "warm, dates spread over 30 days": per_call_us(ours_days, calls),
        "unknown model (cached miss)": per_call_us(ours_unknown, calls),
    }
    print(f"genai_prices.calc_price (baseline)   {baseline:8.2f} us/call")
    for name, value in results.items():
        print(f"Pricer.price, {name:30s} {value:8.2f} us/call   {baseline / value:6.1f}x faster")
    print(f"first call per model (cold, incl. lookup) {cold_us:8.1f} us/call  (one-off genai data load excluded)")
    warm = results["warm, 8 models round robin"]
    print(f"target warm < 20 us: {'met' if warm < 20 else 'MISSED'} ({warm:.2f} us)")


if __name__ == "__main__":
    main()
