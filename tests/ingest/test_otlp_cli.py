"""`flightdeck tail --otlp / --metrics / --otlp-export` as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from prometheus_client.parser import text_string_to_metric_families

from flightdeck.core.events import Event, IdSource, Usage, encode_event

IDS = IdSource()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "flightdeck", "tail", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def read_until(proc: subprocess.Popen[str], cond: Any, limit: int = 200) -> dict[str, Any]:
    assert proc.stdout is not None
    for _ in range(limit):
        line = proc.stdout.readline()
        if not line:
            break
        snap = json.loads(line)
        if cond(snap):
            return snap
    raise AssertionError(f"no matching snapshot; stderr: {proc.stderr.read() if proc.stderr else ''}")


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def test_tail_otlp_json_with_metrics_same_cost_as_the_file(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    log.write_bytes(encode_event(Event(
        v=1, ts=time.time(), kind="llm_call", id=IDS(), run="r-1", agent="local", provider="openai",
        route="direct", model="gpt-4o", usage=Usage(input_tokens=1000, output_tokens=100),
        cost_usd="0.003500", cost_status="priced")))
    otlp, metrics = free_port(), free_port()
    proc = tail(str(log), "--otlp", f"127.0.0.1:{otlp}", "--metrics", f"127.0.0.1:{metrics}",
                "--json", "--interval", "0.2")
    try:
        wait_port(otlp)
        tp = TracerProvider(resource=Resource.create({"service.name": "remote"}))
        tp.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{otlp}/v1/traces")))
        span = tp.get_tracer("t").start_span("chat gpt-4o", attributes={
            "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.cache_read.input_tokens": 200,
            "gen_ai.usage.output_tokens": 100})
        span.end()
        tp.shutdown()
        snap = read_until(proc, lambda s: s["events"] == 2)
        assert snap["cost_usd"] == "0.007250"  # 0.003500 from the file + 0.00375 over OTLP
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        cost = sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == "flightdeck_llm_cost_usd_total")
        assert cost == pytest.approx(0.00725, abs=1e-12)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_usage_errors_and_warnings(tmp_path: Path) -> None:
    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "flightdeck", "tail", *args], capture_output=True,
                              text=True, timeout=60, env=env)

    r = run("--otlp", "127.0.0.1:notaport", "--json")
    assert r.returncode == 2 and "port must be a number" in r.stderr
    r = run("--otlp-export", "collector:4318", "--otlp", "1", "--json")
    assert r.returncode == 2 and "http://" in r.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run("--otlp", "9", "--metrics", f"127.0.0.1:{port}", "--json")
        assert r.returncode == 3 and "--metrics" in r.stderr
        r = run("--otlp", f"127.0.0.1:{port}", "--json")
        assert r.returncode == 3 and "--otlp" in r.stderr
    # Without the otel extra: say how to install it, exit 2.
    shadow = tmp_path / "shadow"
    for name in ("opentelemetry", "prometheus_client"):
        (shadow / name).mkdir(parents=True)
        (shadow / name / "__init__.py").write_text("raise ImportError('not installed')\n")
    env = {**os.environ, "PYTHONPATH": f"{shadow}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    for flag, value in (("--otlp", "4318"), ("--metrics", "9464"), ("--otlp-export", "http://c:4318")):
        r = run(flag, value, str(tmp_path), "--json", env=env)
        assert r.returncode == 2, r.stderr
        assert "pip install 'flightdeck[otel]'" in r.stderr and flag in r.stderr


def test_non_loopback_bind_warns(tmp_path: Path) -> None:
    port = free_port()
    proc = tail("--otlp", f"0.0.0.0:{port}", "--json", "--interval", "0.2")
    try:
        read_until(proc, lambda s: True)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert proc.stderr is not None
        assert "listens beyond this machine" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_tail_once_otlp_export_sends_the_file_calls(tmp_path: Path) -> None:
    from tests.export.otlp_sink import OtlpSink

    log = tmp_path / "run.jsonl"
    log.write_bytes(b"".join(encode_event(Event(
        v=1, ts=time.time(), kind="llm_call", id=IDS(), run="r-1", agent="local", provider="openai",
        route="direct", model="gpt-4o", usage=Usage(input_tokens=1000, output_tokens=100),
        cost_usd="0.003500", cost_status="priced")) for _ in range(3)))
    sink = OtlpSink()
    try:
        r = subprocess.run([sys.executable, "-m", "flightdeck", "tail", str(log), "--once", "--json",
                            "--otlp-export", sink.url], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["events"] == 3
        # --once flushes before it exits: the spans are there when it returns.
        assert len(sink.spans) == 3
        assert {sink.attrs(s)["flightdeck.cost_usd"] for _, s in sink.spans} == {"0.003500"}
    finally:
        sink.close()
