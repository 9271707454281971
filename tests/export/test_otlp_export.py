"""`--otlp-export`: what the exporter sends, decoded by an independent OTLP endpoint."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from flightdeck.core.events import Event, IdSource, Latency, Usage, encode_event
from flightdeck.export.otlp import OtlpExporter, endpoints
from flightdeck.ingest.engine import Engine
from tests.export.otlp_sink import OtlpSink

IDS = IdSource()
TS = 1_780_000_000.5


def wait_for(cond: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


def anthropic_call(**kw: Any) -> Event:
    fields: dict[str, Any] = {
        "v": 1, "ts": TS, "kind": "llm_call", "id": IDS(), "run": "r-1", "agent": "researcher",
        "provider": "anthropic", "route": "direct", "model": "claude-sonnet-4-5", "name": "reflect",
        "stream": True, "cost_usd": "0.007005", "cost_status": "priced",
        "usage": Usage(input_tokens=10, output_tokens=300, cache_read_tokens=2000, cache_write_tokens=500,
                       reasoning_tokens=40),
        "latency_ms": Latency(pre=41.0, ttft=400.0, gen=800.0, post=12.0, total=1253.0)}
    fields.update(kw)
    return Event(**fields)


@pytest.fixture
def sink() -> Any:
    s = OtlpSink()
    yield s
    s.close()


def metric_points(sink: OtlpSink, name: str) -> list[tuple[dict[str, Any], Any, int]]:
    out = []
    for m in sink.metrics:
        if m.name == name:
            for p in m.histogram.data_points:
                out.append(({kv.key: kv.value.WhichOneof("value") and getattr(kv.value, kv.value.WhichOneof("value"))
                             for kv in p.attributes}, p, m.histogram.aggregation_temporality))
    return out


def test_engine_exports_every_call_as_a_genai_span_and_metrics(tmp_path: Path, sink: OtlpSink) -> None:
    log = tmp_path / "run.jsonl"
    failed = anthropic_call(error="RateLimitError", cost_usd=None, cost_status="unknown",
                            usage=Usage(input_tokens=5, output_tokens=0), stream=False,
                            latency_ms=Latency(gen=150.0, total=160.0))
    log.write_bytes(encode_event(anthropic_call()) + encode_event(failed))
    exporter = OtlpExporter(sink.url, export_interval=0.2)
    eng = Engine([log], exporters=[exporter])
    eng.start()
    try:
        eng.wait_backfilled(10)
        assert exporter.flush(10)
        wait_for(lambda: len(sink.spans) == 2)
    finally:
        eng.stop()
    (res, ok), (_, bad) = sorted(sink.spans, key=lambda rs: rs[1].status.code)
    assert res["service.name"] == "flightdeck"
    a = sink.attrs(ok)
    assert ok.name == "chat claude-sonnet-4-5" and ok.kind == 3  # SPAN_KIND_CLIENT
    assert a["gen_ai.provider.name"] == "anthropic" and a["gen_ai.request.model"] == "claude-sonnet-4-5"
    assert a["gen_ai.usage.input_tokens"] == 2510  # the whole prompt: 10 + 2000 read + 500 written
    assert a["gen_ai.usage.cache_read.input_tokens"] == 2000
    assert a["gen_ai.usage.cache_creation.input_tokens"] == 500
    assert a["gen_ai.usage.output_tokens"] == 300
    assert a["gen_ai.usage.reasoning.output_tokens"] == 40
    assert a["gen_ai.usage.cost"] == 0.007005 and a["flightdeck.cost_usd"] == "0.007005"
    assert a["gen_ai.conversation.id"] == "r-1" and a["gen_ai.agent.name"] == "researcher"
    assert a["gen_ai.response.time_to_first_chunk"] == 0.4
    # The span ends at the event's ts and lasts ttft + gen.
    assert ok.end_time_unix_nano == int(TS * 1e9)
    assert ok.end_time_unix_nano - ok.start_time_unix_nano == 1_200_000_000
    b = sink.attrs(bad)
    assert bad.status.code == 2 and b["error.type"] == "RateLimitError"
    assert "gen_ai.usage.cost" not in b and "flightdeck.cost_usd" not in b and b["flightdeck.cost_status"] == "unknown"

    wait_for(lambda: metric_points(sink, "gen_ai.client.operation.duration"))
    tokens = metric_points(sink, "gen_ai.client.token.usage")
    by_type: dict[str, int] = {}
    for attrs, p, temporality in tokens:
        assert temporality == 1  # AGGREGATION_TEMPORALITY_DELTA
        by_type[attrs["gen_ai.token.type"]] = by_type.get(attrs["gen_ai.token.type"], 0) + int(p.sum)
    assert by_type == {"input": 2515, "output": 300}
    durations = metric_points(sink, "gen_ai.client.operation.duration")
    assert sum(p.count for _, p, _ in durations) == 2
    assert sum(p.sum for _, p, _ in durations) == pytest.approx(1.35)
    assert {a.get("error.type") for a, _, _ in durations} == {None, "RateLimitError"}
    assert all(path in ("/v1/traces", "/v1/metrics") and ctype == "application/x-protobuf"
               for path, ctype in sink.requests)


def test_retries_after_503_and_counts_drops() -> None:
    sink = OtlpSink(fail_first=1)
    try:
        exporter = OtlpExporter(sink.url, export_interval=0.1, max_buffer=3)
        exporter.observe([anthropic_call() for _ in range(5)])  # 2 over the buffer
        assert exporter.flush(20)
        wait_for(lambda: len(sink.spans) == 3)
        assert exporter.processor.dropped == 2 and exporter.processor.failed == 0
        assert exporter.notices() == ["--otlp-export: 2 spans dropped (buffer of 3 full)"]
        assert sum(1 for p, _ in sink.requests if p == "/v1/traces") >= 2  # the 503, then the retry
        exporter.close()
    finally:
        sink.close()


def test_round_trip_through_flightdecks_own_receiver(sink: OtlpSink) -> None:
    """Machine A exports, machine B's `tail --otlp` receives: the same call, exact cost kept."""
    b = Engine(otlp=("127.0.0.1", 0))
    b.start()
    try:
        assert b.otlp is not None
        host, port = b.otlp.address
        exporter = OtlpExporter(f"http://{host}:{port}", export_interval=0.2)
        original = anthropic_call(cost_usd="0.012345", cost_status="reported")
        exporter.observe([original])
        assert exporter.flush(10)
        wait_for(lambda: b.events_counted == 1)
        exporter.close()
        row = b.snapshot().recent[-1]
    finally:
        b.stop()
    assert (row.run, row.agent, row.model, row.provider) == ("r-1", "researcher", "claude-sonnet-4-5", "anthropic")
    assert (row.input_tokens, row.cache_read_tokens, row.output_tokens) == (10, 2000, 300)
    assert row.cost_usd == Decimal("0.012345") and row.cost_status == "reported"


def test_endpoint_urls() -> None:
    assert endpoints("http://c:4318") == ("http://c:4318/v1/traces", "http://c:4318/v1/metrics")
    assert endpoints("https://c/otlp/v1/traces") == ("https://c/otlp/v1/traces", "https://c/otlp/v1/metrics")
    with pytest.raises(ValueError, match="http"):
        endpoints("c:4318")
