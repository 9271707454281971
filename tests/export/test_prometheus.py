"""`--metrics`: Prometheus text on /metrics, parsed with prometheus_client's own parser."""

from __future__ import annotations

import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families

from flightdeck.core.events import Event, IdSource, Latency, Usage, encode_event
from flightdeck.export.prometheus import PrometheusExporter
from flightdeck.ingest.engine import Engine

IDS = IdSource()


def call(agent: str = "a", model: str = "gpt-4o", cost: str | None = "0.001000", error: str | None = None,
         ttft: float | None = 250.0) -> Event:
    return Event(v=1, ts=time.time(), kind="llm_call", id=IDS(), run="r-" + agent, agent=agent, provider="openai",
                 route="direct", model=model, stream=ttft is not None,
                 usage=Usage(input_tokens=100, output_tokens=10, cache_read_tokens=50, reasoning_tokens=4),
                 cost_usd=cost, cost_status="priced" if cost else "unknown", error=error,
                 latency_ms=Latency(pre=20.0, ttft=ttft, gen=750.0, post=30.0, total=1050.0))


def scrape(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    samples: dict[str, Any] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((dict(s.labels), s.value))
    return samples


def total(samples: dict[str, Any], name: str, **labels: str) -> float:
    return sum(v for lab, v in samples.get(name, []) if all(lab.get(k) == x for k, x in labels.items()))


def test_metrics_from_a_file_source_exact(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    events = [call("a"), call("a", cost="0.002500", error="RateLimitError"), call("b", model="gpt-4o-mini",
              cost=None, ttft=None)]
    log.write_bytes(b"".join(encode_event(e) for e in events))
    prom = PrometheusExporter()
    host, port = prom.serve("127.0.0.1", 0)
    eng = Engine([log], exporters=[prom])
    eng.start()
    try:
        eng.wait_backfilled(10)
        s = scrape(f"http://{host}:{port}/metrics")
        assert total(s, "flightdeck_llm_calls_total") == 3
        assert total(s, "flightdeck_llm_calls_total", agent="a", model="gpt-4o", provider="openai",
                     route="direct") == 2
        assert total(s, "flightdeck_llm_errors_total") == 1
        assert total(s, "flightdeck_llm_cost_usd_total") == pytest.approx(0.0035, abs=1e-12)
        assert total(s, "flightdeck_llm_tokens_total", type="input") == 300
        assert total(s, "flightdeck_llm_tokens_total", type="cache_read") == 150
        assert total(s, "flightdeck_llm_tokens_total", type="reasoning") == 12
        assert total(s, "flightdeck_llm_tokens_total", type="cache_write") == 0
        assert total(s, "flightdeck_llm_ttft_seconds_count") == 2
        assert total(s, "flightdeck_llm_ttft_seconds_sum") == pytest.approx(0.5)
        assert total(s, "flightdeck_llm_duration_seconds_count") == 3
        # streamed: ttft + gen = 1.0 s (twice); not streamed: gen = 0.75 s
        assert total(s, "flightdeck_llm_duration_seconds_sum") == pytest.approx(2.75)
        assert total(s, "flightdeck_llm_stage_seconds_count", stage="post") == 3
        assert total(s, "flightdeck_llm_stage_seconds_sum", stage="pre") == pytest.approx(0.06)
        assert sum(prom.cost_exact.values()) == Decimal("0.0035")
        # A filter change re-reads the history: the counters must not count it again.
        eng.set_filter("agent:a")
        deadline = time.monotonic() + 10
        while eng.events_counted != 2 and time.monotonic() < deadline:  # the history read again
            time.sleep(0.01)
        assert eng.events_counted == 2
        assert total(scrape(f"http://{host}:{port}/metrics"), "flightdeck_llm_calls_total") == 3
    finally:
        eng.stop()


def test_label_cardinality_folds_into_other() -> None:
    prom = PrometheusExporter(cap=3)
    prom.observe([call(agent=f"agent-{i}") for i in range(10)])
    s: dict[str, Any] = {}
    for family in text_string_to_metric_families(prom.text()):
        for sample in family.samples:
            s.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    agents = {lab["agent"] for lab, _ in s["flightdeck_llm_calls_total"]}
    assert agents == {"agent-0", "agent-1", "agent-2", "other"}
    assert total(s, "flightdeck_llm_calls_total", agent="other") == 7
    assert prom.notices() == ["--metrics: 7 agent values beyond 3 folded into 'other'"]


def test_exporter_notices_show_in_the_snapshot(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    log.write_bytes(b"".join(encode_event(call(agent=f"agent-{i}")) for i in range(3)))
    eng = Engine([log], exporters=[PrometheusExporter(cap=1)])
    eng.backfill()
    assert "--metrics: 2 agent values beyond 1 folded into 'other'" in eng.snapshot().source.notices
    eng.stop()
