"""``tail ... --metrics HOST:PORT``: Prometheus text on ``/metrics`` (SPEC 5.3 names).

Built on ``prometheus_client`` with a registry of its own (nothing global is
touched, so two engines in one process do not collide). Counters:
``flightdeck_llm_calls_total``, ``flightdeck_llm_errors_total``,
``flightdeck_llm_cost_usd_total``, ``flightdeck_llm_tokens_total{type=...}``;
histograms ``flightdeck_llm_ttft_seconds``, ``flightdeck_llm_duration_seconds``,
``flightdeck_llm_stage_seconds{stage=...}``. Labels ``provider``, ``model``,
``route``, ``agent``; each label keeps at most ``cap`` distinct values and
folds the rest into ``other``, so a fleet of 10,000 agents cannot blow up the
scrape (the fold count is reported as a notice).

The cost is summed from the events' exact decimal strings; Prometheus stores a
float, so the exposed total is exact to about 15 significant digits.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from flightdeck.core.events import Event
from flightdeck.ingest.genai_spans import call_seconds

INSTALL_HINT = "Prometheus metrics need the otel extra: pip install 'flightdeck[otel]'"
LABELS = ("provider", "model", "route", "agent")
OTHER = "other"
DEFAULT_CAP = 50
# Seconds. LLM calls run from ~100 ms to minutes; the defaults stop at 10 s.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
_TOKEN_TYPES = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cache_read", "cache_read_tokens"),
    ("cache_write", "cache_write_tokens"),
    ("reasoning", "reasoning_tokens"),
)
_STAGES = ("pre", "ttft", "gen", "post")


class PrometheusMissing(RuntimeError):
    """prometheus_client is not installed."""


class _Capped:
    """Distinct values of one label, at most ``cap``; later ones become ``other``."""

    __slots__ = ("cap", "folded", "values")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.values: set[str] = set()
        self.folded: set[str] = set()

    def __call__(self, value: str | None) -> str:
        v = value or "unknown"
        if v in self.values:
            return v
        if len(self.values) < self.cap:
            self.values.add(v)
            return v
        if len(self.folded) < 100_000:  # counted for the notice, itself bounded
            self.folded.add(v)
        return OTHER


class PrometheusExporter:
    """Counts calls into its own registry; ``serve(host, port)`` exposes it over HTTP."""

    def __init__(self, cap: int = DEFAULT_CAP) -> None:
        try:
            from prometheus_client import CollectorRegistry, Counter, Histogram
        except ImportError as exc:
            raise PrometheusMissing(INSTALL_HINT) from exc
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self._caps = {label: _Capped(cap) for label in LABELS}
        self.calls = Counter("flightdeck_llm_calls", "LLM calls ingested", LABELS, registry=reg)
        self.errors = Counter("flightdeck_llm_errors", "LLM calls that failed", LABELS, registry=reg)
        self.cost = Counter("flightdeck_llm_cost_usd", "Spend in USD (priced, reported or override)",
                            LABELS, registry=reg)
        self.tokens = Counter("flightdeck_llm_tokens", "Tokens by canonical bucket", (*LABELS, "type"),
                              registry=reg)
        self.ttft = Histogram("flightdeck_llm_ttft_seconds", "Time to first token (streamed calls)",
                              LABELS, buckets=BUCKETS, registry=reg)
        self.duration = Histogram("flightdeck_llm_duration_seconds", "Call duration, request to response",
                                  LABELS, buckets=BUCKETS, registry=reg)
        self.stage = Histogram("flightdeck_llm_stage_seconds", "Agent step stages", (*LABELS, "stage"),
                               buckets=BUCKETS, registry=reg)
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        # The exact spend behind the float counter, per label set, for tests and audits.
        self.cost_exact: dict[tuple[str, ...], Decimal] = {}

    def _labels(self, ev: Event) -> tuple[str, ...]:
        caps = self._caps
        return (caps["provider"](ev.provider), caps["model"](ev.model), caps["route"](ev.route),
                caps["agent"](ev.agent))

    def observe(self, events: Sequence[Event]) -> None:
        """Count each call (the caller passes each once)."""
        with self._lock:
            for ev in events:
                labels = self._labels(ev)
                self.calls.labels(*labels).inc()
                if ev.error:
                    self.errors.labels(*labels).inc()
                if ev.cost_usd:
                    amount = Decimal(ev.cost_usd)
                    total = self.cost_exact.get(labels, Decimal(0)) + amount
                    self.cost_exact[labels] = total
                    self.cost.labels(*labels).inc(float(amount))
                usage = ev.usage
                if usage is not None:
                    for kind, attr in _TOKEN_TYPES:
                        n = getattr(usage, attr)
                        if n:
                            self.tokens.labels(*labels, kind).inc(n)
                lat = ev.latency_ms
                if lat is None:
                    continue
                if lat.ttft is not None:
                    self.ttft.labels(*labels).observe(lat.ttft / 1000.0)
                seconds = call_seconds(ev)
                if seconds is not None:
                    self.duration.labels(*labels).observe(seconds)
                for stage in _STAGES:
                    ms = getattr(lat, stage)
                    if ms is not None:
                        self.stage.labels(*labels, stage).observe(ms / 1000.0)

    def text(self) -> str:
        """The exposition text, as a scrape would get it."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode("utf-8")

    def serve(self, host: str, port: int) -> tuple[str, int]:
        """Serve ``/metrics`` on a daemon thread; returns the bound (host, port). OSError if taken."""
        from prometheus_client import start_http_server

        server, thread = start_http_server(port, addr=host, registry=self.registry)
        self._server, self._thread = server, thread
        bound = server.server_address
        return str(bound[0]), int(bound[1])

    def notices(self) -> list[str]:
        out = []
        for label, capped in self._caps.items():
            if capped.folded:
                out.append(f"--metrics: {len(capped.folded)} {label} values beyond {capped.cap} "
                           f"folded into '{OTHER}'")
        return out

    def close(self) -> None:
        server = self._server
        if server is not None:
            server.shutdown()
            server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
