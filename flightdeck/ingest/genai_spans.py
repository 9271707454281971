"""The one mapping between OpenTelemetry GenAI telemetry and flightdeck events.

Both directions live here so they cannot drift apart:

- ``span_to_event``: a GenAI client span (OpenTelemetry semantic conventions
  ``gen_ai.*``, current and deprecated names; OpenInference ``llm.*``) -> ``llm_call``.
- ``log_to_event``: the agent CLIs' own OTel log events -> ``llm_call``:
  Claude Code ``claude_code.api_request`` / ``claude_code.api_error``, Codex
  ``codex.sse_event`` (kind ``response.completed``), Gemini CLI
  ``gemini_cli.api_response`` / ``gemini_cli.api_error``.
- ``event_attributes``: an ``llm_call`` -> the span attributes of SPEC 5.3, used
  by ``--otlp-export``, ``Recorder(otel=True)`` and read back by ``span_to_event``.

Inputs are neutral records (``SpanRecord``, ``LogRecord``) with plain Python
attribute dicts, so the OTLP receiver (protobuf messages), the JSON files and
``FlightdeckSpanExporter`` (SDK ``ReadableSpan``) share this code. Nothing here
imports opentelemetry.

Token rules, from the sources:
- semconv ``gen_ai.usage.input_tokens`` includes cached tokens (read by
  ``core.normalize.otel``); OpenInference ``llm.token_count.prompt`` likewise
  includes its ``prompt_details.cache_read`` / ``cache_write``.
- Claude Code's ``input_tokens`` is Anthropic's: cache reads and writes are
  NOT in it (``cache_read_tokens``, ``cache_creation_tokens`` are separate).
- Codex (codex-rs/otel ``sse_event_completed``) passes the Responses API usage:
  ``input_token_count`` includes ``cached_token_count``; ``output_token_count``
  includes ``reasoning_token_count``. Its counts arrive as strings (Display).
- Gemini CLI (packages/core/src/telemetry/types.ts ``ApiResponseEvent``):
  ``input_token_count`` is ``promptTokenCount`` (cached included),
  ``output_token_count`` is ``candidatesTokenCount`` (thoughts NOT included:
  they are ``thoughts_token_count``), ``tool_token_count`` is
  ``toolUsePromptTokenCount``, more prompt.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from flightdeck.core.events import KIND_LLM_CALL, Event, Latency, Rejected, Usage, format_usd, parse_ts

__all__ = [
    "LogRecord",
    "SpanRecord",
    "event_attributes",
    "json_logs",
    "json_spans",
    "log_to_event",
    "span_to_event",
]

# Span attributes flightdeck itself writes (SPEC 5.3 plus its own exact values).
ATTR_COST: Final = "gen_ai.usage.cost"
ATTR_COST_EXACT: Final = "flightdeck.cost_usd"
ATTR_COST_STATUS: Final = "flightdeck.cost_status"
ATTR_EVENT_ID: Final = "flightdeck.event_id"
ATTR_RUN: Final = "flightdeck.run"
ATTR_ROUTE: Final = "flightdeck.route"
ATTR_STEP_NAME: Final = "flightdeck.step.name"
ATTR_TTFT: Final = "gen_ai.response.time_to_first_chunk"  # seconds, a double

# OpenInference (Arize) LLM span attributes -> the semconv names they mean.
_OPENINFERENCE: Final = {
    "llm.token_count.prompt": "gen_ai.usage.input_tokens",
    "llm.token_count.completion": "gen_ai.usage.output_tokens",
    "llm.token_count.prompt_details.cache_read": "gen_ai.usage.cache_read.input_tokens",
    "llm.token_count.prompt_details.cache_write": "gen_ai.usage.cache_creation.input_tokens",
    "llm.token_count.completion_details.reasoning": "gen_ai.usage.reasoning.output_tokens",
    "llm.model_name": "gen_ai.request.model",
    "llm.provider": "gen_ai.provider.name",
    "llm.system": "gen_ai.system",
}

_MAX_TEXT = 500
_NS: Final = 1_000_000_000


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """A finished span, whatever it came from. Ids are lower-case hex; times in ns since the epoch.

    ``status_error``: the span's status is ERROR (``status_message`` its description).
    ``resource``: the resource attributes (``service.name`` ...).
    """

    name: str
    trace_id: str
    span_id: str
    start_ns: int
    end_ns: int
    attributes: Mapping[str, Any]
    resource: Mapping[str, Any] = field(default_factory=dict)
    status_error: bool = False
    status_message: str = ""


@dataclass(frozen=True, slots=True)
class LogRecord:
    """An OTel log record. ``time_ns`` 0 means unset (then ``observed_ns`` or ``event.timestamp``)."""

    time_ns: int
    observed_ns: int
    body: Any
    attributes: Mapping[str, Any]
    resource: Mapping[str, Any] = field(default_factory=dict)
    event_name: str = ""  # OTLP LogRecord.event_name (proto field 12), when the sender set it


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return value[:_MAX_TEXT] or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _count(attrs: Mapping[str, Any], key: str) -> int:
    """A token count: an int, or the digit string Codex writes. ValueError names the key."""
    value = attrs.get(key)
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"{key}: {value!r} is not a token count")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float) and value.is_integer():
        n = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        n = int(value.strip())
    else:
        raise ValueError(f"{key}: {value!r} is not a token count")
    if n < 0:
        raise ValueError(f"{key}: {n} is negative")
    return n


def _millis(value: Any) -> float | None:
    try:
        ms = float(value)
    except (TypeError, ValueError):
        return None
    return round(ms, 3) if ms >= 0 and ms == ms and ms != float("inf") else None


def _decimal(value: Any) -> Decimal | None:
    """A reported cost (a number or decimal string) as a Decimal, or None if it is not an amount."""
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def _priced(provider: str, model: str, usage: Usage, ts: float, route: str | None,
            reported: Decimal | None) -> tuple[str | None, str, str | None]:
    """(cost string or None, cost_status, price_source) from the shared pricer."""
    from flightdeck.core.pricing import price  # late: the module is large

    result = price(provider, model, usage, ts, route=route, reported_usd=reported)
    cost = format_usd(result.usd) if result.usd is not None else None
    return cost, result.status, getattr(result, "source", None) or None


def _digest_id(prefix: str, *parts: Any) -> str:
    """A stable id for a record without one, so an exporter's retry is counted once."""
    data = repr(parts).encode("utf-8", "replace")
    return f"{prefix}:{hashlib.blake2b(data, digest_size=12).hexdigest()}"


# --- OTLP JSON without the otel extra --------------------------------------------------


def _nanos(value: Any) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return 0
    return max(n, 0)


def _flat(attrs: Any) -> dict[str, Any]:
    from flightdeck.core.normalize.otel import attributes

    return (attributes(attrs) or {}) if isinstance(attrs, list) else {}


def json_spans(doc: Mapping[str, Any]) -> list[SpanRecord]:
    """The spans of one OTLP JSON traces document (``{"resourceSpans": [...]}``, as the
    Collector's file exporter writes it) as records, in pure Python: for file readers
    (``ingest.formats``), which must work without the otel extra. Malformed parts are skipped."""
    out: list[SpanRecord] = []
    for rs in doc.get("resourceSpans") or ():
        if not isinstance(rs, Mapping):
            continue
        resource = _flat((rs.get("resource") or {}).get("attributes"))
        # instrumentationLibrarySpans: the name before OTLP 0.15, still in old exporters' files
        for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or ():
            for sp in (ss.get("spans") or ()) if isinstance(ss, Mapping) else ():
                if not isinstance(sp, Mapping):
                    continue
                raw_status = sp.get("status")
                status: Mapping[str, Any] = raw_status if isinstance(raw_status, Mapping) else {}
                out.append(SpanRecord(
                    name=str(sp.get("name") or ""),
                    trace_id=str(sp.get("traceId") or "").lower(),
                    span_id=str(sp.get("spanId") or "").lower(),
                    start_ns=_nanos(sp.get("startTimeUnixNano")),
                    end_ns=_nanos(sp.get("endTimeUnixNano")),
                    attributes=_flat(sp.get("attributes")),
                    resource=resource,
                    status_error=status.get("code") in (2, "STATUS_CODE_ERROR"),
                    status_message=str(status.get("message") or ""),
                ))
    return out


def json_logs(doc: Mapping[str, Any]) -> list[LogRecord]:
    """The log records of one OTLP JSON logs document (``{"resourceLogs": [...]}``), like ``json_spans``."""
    out: list[LogRecord] = []
    for rl in doc.get("resourceLogs") or ():
        if not isinstance(rl, Mapping):
            continue
        resource = _flat((rl.get("resource") or {}).get("attributes"))
        for sl in rl.get("scopeLogs") or ():
            for lr in (sl.get("logRecords") or ()) if isinstance(sl, Mapping) else ():
                if not isinstance(lr, Mapping):
                    continue
                out.append(LogRecord(
                    time_ns=_nanos(lr.get("timeUnixNano")),
                    observed_ns=_nanos(lr.get("observedTimeUnixNano")),
                    body=_flat([{"key": "body", "value": lr.get("body")}]).get("body"),
                    attributes=_flat(lr.get("attributes")),
                    resource=resource,
                    event_name=str(lr.get("eventName") or ""),
                ))
    return out


# --- spans -------------------------------------------------------------------------


def _semconv_attributes(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The span's attributes with OpenInference names translated, semconv names winning."""
    out = dict(attrs)
    for theirs, ours in _OPENINFERENCE.items():
        if theirs in attrs and ours not in out:
            out[ours] = attrs[theirs]
    return out


def span_to_event(span: SpanRecord) -> Event | Rejected | None:
    """The ``llm_call`` a GenAI span stands for; None for spans that are not model calls.

    Agent and tool spans (``invoke_agent``, ``execute_tool``) carry ``gen_ai.*``
    attributes but no token usage, so they are skipped, not rejected. A span with
    usage that cannot be read is Rejected with the field named. Never raises.
    """
    try:
        return _span_to_event(span)
    except Exception as exc:  # a hostile span must not stop the others
        return Rejected("bad otlp span", f"{type(exc).__name__}: {exc}"[:300])


def _span_to_event(span: SpanRecord) -> Event | Rejected | None:
    from flightdeck.core.normalize import normalize_usage
    from flightdeck.core.normalize.otel import INPUT, OUTPUT, otel_model, otel_provider

    attrs = _semconv_attributes(span.attributes)
    if not any(k in attrs for k in INPUT + OUTPUT):
        return None  # an agent or tool span (as otel_has_usage judges, without re-reading the dict)
    try:
        usage = normalize_usage("otel", attrs)
    except ValueError as exc:
        return Rejected("bad gen_ai usage", str(exc)[:300])
    if span.end_ns <= 0 and span.start_ns <= 0:
        return Rejected("missing span times", f"span {span.span_id} has no start or end time")
    end_ns = span.end_ns if span.end_ns > 0 else span.start_ns
    start_ns = span.start_ns if span.start_ns > 0 else end_ns
    ts = end_ns / _NS  # int / int: the float nearest the exact time
    duration = max(0.0, (end_ns - start_ns) / 1e6)
    ttft_s = attrs.get(ATTR_TTFT)
    ttft = _millis(ttft_s * 1000.0) if isinstance(ttft_s, (int, float)) and not isinstance(ttft_s, bool) else None
    stream_attr = attrs.get("gen_ai.request.stream")
    stream = stream_attr if isinstance(stream_attr, bool) else (True if ttft is not None else None)
    if ttft is not None and ttft <= duration:
        latency = Latency(ttft=ttft, gen=round(duration - ttft, 3), total=round(duration, 3))
    else:
        latency = Latency(gen=round(duration, 3), total=round(duration, 3))

    provider = otel_provider(attrs) or "unknown"
    model = otel_model(attrs) or "unknown"
    route = _text(attrs.get(ATTR_ROUTE))
    if route not in ("direct", "proxy", "local"):
        route = None
    exact = attrs.get(ATTR_COST_EXACT)
    status = _text(attrs.get(ATTR_COST_STATUS))
    if isinstance(exact, str) and _decimal(exact) is not None and status in ("priced", "override", "reported",
                                                                                  "local"):
        # A span flightdeck exported: keep its exact cost and how it was reached.
        cost: str | None = format_usd(Decimal(exact))
        price_source = _text(attrs.get("flightdeck.price_source"))
    else:
        reported = _decimal(attrs.get(ATTR_COST))
        cost, status, price_source = _priced(provider, model, usage, ts, route, reported)
    error = _text(attrs.get("error.type"))
    if error is None and span.status_error:
        error = _text(span.status_message) or "error"
    resource = span.resource
    agent = _text(attrs.get("gen_ai.agent.name")) or _text(resource.get("service.name"))
    run = (_text(attrs.get(ATTR_RUN)) or _text(attrs.get("gen_ai.conversation.id"))
           or _text(attrs.get("session.id")) or span.trace_id or "otel")
    eid = _text(attrs.get(ATTR_EVENT_ID)) or f"{span.trace_id}:{span.span_id}"
    return Event(
        v=1,
        ts=ts,
        kind=KIND_LLM_CALL,
        id=eid,
        run=run,
        agent=agent,
        provider=provider,
        route=route,
        model=model,
        name=_text(attrs.get(ATTR_STEP_NAME)) or _text(attrs.get("gen_ai.operation.name")) or _text(span.name),
        stream=stream,
        usage=usage,
        cost_usd=cost,
        cost_status=status,
        latency_ms=latency,
        error=error,
        service_tier=_text(attrs.get("openai.response.service_tier")),
        price_source=price_source,
    )


# --- the agent CLIs' log events ------------------------------------------------------


def _log_name(rec: LogRecord) -> str:
    """The event's full name: Claude Code puts it in the body, Gemini/Codex in ``event.name``."""
    for candidate in (rec.event_name, rec.attributes.get("event.name"), rec.body):
        if isinstance(candidate, str) and "." in candidate:
            return candidate
    name = rec.attributes.get("event.name")
    if isinstance(name, str) and isinstance(rec.body, str) and rec.body.startswith("claude_code."):
        return rec.body
    return name if isinstance(name, str) else ""


def _log_ts(rec: LogRecord) -> float | None:
    if rec.time_ns > 0:
        return rec.time_ns / _NS
    stamp = rec.attributes.get("event.timestamp")
    if isinstance(stamp, str):
        try:
            return parse_ts(stamp)
        except ValueError:
            pass
    if rec.observed_ns > 0:
        return rec.observed_ns / _NS
    return None


def _claude_code(a: Mapping[str, Any], error: bool) -> tuple[str, Usage, Decimal | None, str | None]:
    # Anthropic's buckets: input_tokens excludes cache reads and writes.
    usage = Usage(
        input_tokens=_count(a, "input_tokens"),
        output_tokens=_count(a, "output_tokens"),
        cache_read_tokens=_count(a, "cache_read_tokens"),
        cache_write_tokens=_count(a, "cache_creation_tokens"),
    )
    err = (_text(a.get("error")) or "api_error") if error else None
    return "anthropic", usage, _decimal(a.get("cost_usd")), err


def _codex(a: Mapping[str, Any]) -> tuple[str, Usage, Decimal | None, str | None]:
    total_in = _count(a, "input_token_count")
    cached = min(_count(a, "cached_token_count"), total_in)
    output = _count(a, "output_token_count")
    reasoning = min(_count(a, "reasoning_token_count"), output)
    usage = Usage(input_tokens=total_in - cached, output_tokens=output, cache_read_tokens=cached,
                  reasoning_tokens=reasoning)
    return "openai", usage, None, _text(a.get("error.message"))


def _gemini(a: Mapping[str, Any], error: bool) -> tuple[str, Usage, Decimal | None, str | None]:
    prompt = _count(a, "input_token_count") + _count(a, "tool_token_count")
    cached = min(_count(a, "cached_content_token_count"), prompt)
    thoughts = _count(a, "thoughts_token_count")
    usage = Usage(input_tokens=prompt - cached, output_tokens=_count(a, "output_token_count") + thoughts,
                  cache_read_tokens=cached, reasoning_tokens=thoughts)
    err = (_text(a.get("error.type")) or _text(a.get("error")) or "api_error") if error else None
    return "google", usage, None, err


def log_to_event(rec: LogRecord) -> Event | Rejected | None:
    """The ``llm_call`` an agent CLI's log event stands for; None for the other events.

    Tool, prompt and config events are not model calls and are skipped (the
    receiver counts them as ignored). Never raises.
    """
    try:
        return _log_to_event(rec)
    except ValueError as exc:
        return Rejected("bad otlp log", str(exc)[:300])
    except Exception as exc:
        return Rejected("bad otlp log", f"{type(exc).__name__}: {exc}"[:300])


def _log_to_event(rec: LogRecord) -> Event | Rejected | None:
    name = _log_name(rec)
    a = rec.attributes
    if name == "claude_code.api_request":
        provider, usage, reported, error = _claude_code(a, error=False)
        run_key = "session.id"
    elif name == "claude_code.api_error":
        provider, usage, reported, error = _claude_code(a, error=True)
        run_key = "session.id"
    elif name == "codex.sse_event" and a.get("event.kind") == "response.completed":
        if "input_token_count" not in a:
            return None  # the failure variant carries only error.message; its api_request said so
        provider, usage, reported, error = _codex(a)
        run_key = "conversation.id"
    elif name == "gemini_cli.api_response":
        provider, usage, reported, error = _gemini(a, error=False)
        run_key = "session.id"
    elif name == "gemini_cli.api_error":
        provider, usage, reported, error = _gemini(a, error=True)
        run_key = "session.id"
    else:
        return None
    ts = _log_ts(rec)
    if ts is None:
        return Rejected("missing log time", f"{name} without a time")
    model = _text(a.get("model")) or "unknown"
    duration = _millis(a.get("duration_ms"))
    agent = _text(rec.resource.get("service.name")) or name.split(".", 1)[0]
    run = _text(a.get(run_key)) or _text(a.get("prompt.id")) or agent
    message = None
    if error is not None and reported is None and usage == Usage():
        # A failed request reports no tokens: its cost is not known, never a silent $0.
        cost, status, source = None, "unknown", None
        message = "the request failed; no usage was reported"
    else:
        cost, status, source = _priced(provider, model, usage, ts, None, reported)
    seq = a.get("event.sequence")
    eid = _digest_id(name, rec.time_ns, rec.observed_ns, run, seq, a.get("event.timestamp"),
                     a.get("prompt.id") or a.get("prompt_id"), model, usage.input_tokens,
                     usage.output_tokens, usage.cache_read_tokens, duration)
    speed = _text(a.get("speed"))
    return Event(
        v=1,
        ts=ts,
        kind=KIND_LLM_CALL,
        id=eid,
        run=run,
        agent=agent,
        provider=provider,
        route="direct",
        model=model,
        usage=usage,
        cost_usd=cost,
        cost_status=status,
        latency_ms=Latency(gen=duration, total=duration),
        error=error,
        price_source=source,
        speed=speed if speed and speed != "normal" else None,
        message=message,
    )


# --- flightdeck -> semantic conventions ----------------------------------------------


_PROVIDER_NAMES: Final = {  # flightdeck provider -> gen_ai.provider.name (semconv well-known values)
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "gcp.gemini",
    "bedrock": "aws.bedrock",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "mistral": "mistral_ai",
}


def provider_name(provider: str | None) -> str:
    """``gen_ai.provider.name`` for a flightdeck provider (unknown ones pass through)."""
    p = provider or "unknown"
    return _PROVIDER_NAMES.get(p, p)


def event_attributes(ev: Event) -> dict[str, str | int | float | bool]:
    """The GenAI client span attributes of SPEC 5.3 for one ``llm_call``.

    ``gen_ai.usage.input_tokens`` is the whole prompt (plain + cache reads +
    cache writes), as the semantic conventions define it; the cost goes out
    as a double (``gen_ai.usage.cost``) and exactly (``flightdeck.cost_usd``).
    ``span_to_event`` reads these back to the same event.
    """
    usage = ev.usage or Usage()
    attrs: dict[str, str | int | float | bool] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider_name(ev.provider),
        "gen_ai.request.model": ev.model or "unknown",
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": usage.cache_read_tokens,
        "gen_ai.usage.cache_creation.input_tokens": usage.cache_write_tokens,
        "gen_ai.usage.reasoning.output_tokens": usage.reasoning_tokens,
        ATTR_EVENT_ID: ev.id,
        ATTR_RUN: ev.run,
        "gen_ai.conversation.id": ev.run,
    }
    if ev.agent:
        attrs["gen_ai.agent.name"] = ev.agent
    if ev.route:
        attrs[ATTR_ROUTE] = ev.route
    if ev.name:
        attrs[ATTR_STEP_NAME] = ev.name
    if ev.stream is not None:
        attrs["gen_ai.request.stream"] = ev.stream
    if ev.cost_status:
        attrs[ATTR_COST_STATUS] = ev.cost_status
    if ev.cost_usd:
        attrs[ATTR_COST] = float(ev.cost_usd)
        attrs[ATTR_COST_EXACT] = ev.cost_usd
    if ev.price_source:
        attrs["flightdeck.price_source"] = ev.price_source
    if ev.service_tier:
        attrs["openai.response.service_tier"] = ev.service_tier
    lat = ev.latency_ms
    if lat is not None and lat.ttft is not None:
        attrs[ATTR_TTFT] = lat.ttft / 1000.0
    if ev.error:
        attrs["error.type"] = ev.error[:_MAX_TEXT]
    return attrs


def event_span_times(ev: Event) -> tuple[int, int]:
    """(start, end) in ns since the epoch: the event's ``ts`` is the end, the call's duration before it.

    The duration is ``call_seconds`` (0 when not measured).
    """
    # Through the decimal text of ts: float(ts) * 1e9 would be off by up to 256 ns, and a
    # span read back would not end at the event's ts.
    end = int(Decimal(repr(float(ev.ts))) * _NS)
    seconds = call_seconds(ev) or 0.0
    return end - round(seconds * 1e9), end


def call_seconds(ev: Event) -> float | None:
    """The call's own duration (request sent -> response done, ``ttft + gen``) in seconds,
    else the step's ``total``; None when neither was measured. Spans and histograms both use it."""
    lat = ev.latency_ms
    if lat is None:
        return None
    if lat.gen is not None:
        return (lat.gen + (lat.ttft or 0.0)) / 1000.0
    if lat.total is not None:
        return lat.total / 1000.0
    return None
