"""The team-dashboard recipe end to end: a real Prometheus scrapes `tail --metrics`.

Not part of the default run (it needs Debian's `prometheus` package and ~20 s):

    apt-get install -y prometheus
    FLIGHTDECK_E2E_PROMETHEUS=1 python -m pytest tests/e2e/test_prometheus_recipe.py -q

It writes a log of priced calls from several agents and models, runs
`flightdeck tail LOG --metrics` and a Prometheus server scraping it every
second, and checks that Prometheus' query API returns the spend, the call
count and the token totals `flightdeck report --json` prints for the same log.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from flightdeck.core.events import Event, IdSource, Latency, Usage, encode_event, format_usd
from flightdeck.core.pricing import price

pytestmark = pytest.mark.skipif(
    os.environ.get("FLIGHTDECK_E2E_PROMETHEUS") != "1" or shutil.which("prometheus") is None,
    reason="set FLIGHTDECK_E2E_PROMETHEUS=1 and install Debian's prometheus package",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def query(port: int, promql: str) -> float | None:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            doc = json.load(resp)
    except OSError:
        return None
    result = doc.get("data", {}).get("result", [])
    return float(result[0]["value"][1]) if result else None


def test_prometheus_query_api_returns_the_report_cost(tmp_path: Path) -> None:
    rng = random.Random(12)
    ids = IdSource()
    now = time.time()
    lines = []
    models = [("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4-5"), ("google", "gemini-2.5-pro")]
    for i in range(600):
        provider, model = models[i % 3]
        usage = Usage(input_tokens=rng.randint(100, 5000), output_tokens=rng.randint(10, 800),
                      cache_read_tokens=rng.randint(0, 20000))
        p = price(provider, model, usage, now)
        assert p.usd is not None
        lines.append(encode_event(Event(
            v=1, ts=now - 600 + i, kind="llm_call", id=ids(), run=f"r-{i % 7}", agent=f"agent-{i % 5}",
            provider=provider, route="direct", model=model, usage=usage, cost_usd=format_usd(p.usd),
            cost_status=p.status, latency_ms=Latency(ttft=300.0, gen=900.0, total=1250.0), stream=True)))
    log = tmp_path / "fleet.jsonl"
    log.write_bytes(b"".join(lines))
    report = json.loads(subprocess.run([sys.executable, "-m", "flightdeck", "report", str(log), "--json"],
                                       capture_output=True, text=True, check=True, timeout=120).stdout)

    metrics_port, prom_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: flightdeck\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{metrics_port}']\n")
    tail = subprocess.Popen([sys.executable, "-m", "flightdeck", "tail", str(log), "--metrics",
                             f"127.0.0.1:{metrics_port}", "--json", "--interval", "5"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    prom = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        got: dict[str, Any] = {}
        want = {
            "sum(flightdeck_llm_calls_total)": float(report["events"]),
            'sum(flightdeck_llm_tokens_total{type="cache_read"})': float(report["tokens"]["cache_read_tokens"]),
            'sum(flightdeck_llm_tokens_total{type="input"})': float(report["tokens"]["input_tokens"]),
        }
        while time.monotonic() < deadline:
            got = {q: query(prom_port, q) for q in [*want, "sum(flightdeck_llm_cost_usd_total)"]}
            if all(got[q] == v for q, v in want.items()):
                break
            time.sleep(0.5)
        assert {q: got[q] for q in want} == want
        cost = got["sum(flightdeck_llm_cost_usd_total)"]
        assert cost is not None
        # Prometheus keeps a float: the same cost to the report's last decimal place.
        assert Decimal(f"{cost:.6f}") == Decimal(report["cost_usd"]).quantize(Decimal("0.000001"))
        print(f"\nreport cost_usd {report['cost_usd']}, Prometheus sum(flightdeck_llm_cost_usd_total) {cost!r}, "
              f"calls {got['sum(flightdeck_llm_calls_total)']:.0f}")
    finally:
        prom.terminate()
        tail.terminate()
        prom.wait(timeout=30)
        tail.wait(timeout=30)
