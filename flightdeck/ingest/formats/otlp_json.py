"""OTLP JSON, as the OpenTelemetry Collector's file exporter writes it."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from flightdeck.core.events import KIND_LLM_CALL, Event, Latency, Rejected
from flightdeck.ingest.formats.common import ParseResult, priced, span_ms


def otlp_attributes(items: Any) -> dict[str, Any]:
    """OTLP's ``[{"key": k, "value": {"stringValue": v}}]`` as a plain dict.

    OTLP JSON writes 64-bit ints as strings (``"intValue": "42"``); they come
    back as ints.
    """
    out: dict[str, Any] = {}
    if not isinstance(items, list):
        return out
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            out[item["key"]] = _any_value(item.get("value"))
    return out


def _any_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError):
            return None
    if "doubleValue" in value:
        return value["doubleValue"]
    if "boolValue" in value:
        return value["boolValue"]
    if "arrayValue" in value:
        values = value["arrayValue"].get("values", []) if isinstance(value["arrayValue"], dict) else []
        return [_any_value(v) for v in values]
    return None


class OtlpJson:
    """``{"resourceSpans":[{"resource":..,"scopeSpans":[{"spans":[..]}]}]}`` per line.

    One line can hold many spans; only spans with ``gen_ai.usage.*`` token
    counts become ``llm_call`` events (agent and tool spans carry other
    ``gen_ai.*`` attributes and are skipped). The span's trace is the run, the resource's
    ``service.name`` the agent.
    """

    name = "otlp-json"

    def parse(self, line: bytes) -> ParseResult:
        try:
            doc = msgspec.json.decode(line)
        except msgspec.DecodeError as exc:
            return Rejected("not json", str(exc)[:200])
        if not isinstance(doc, dict) or not isinstance(doc.get("resourceSpans"), list):
            return Rejected("missing resourceSpans", "OTLP line without resourceSpans")
        events: list[Event] = []
        for rs in doc["resourceSpans"]:
            if not isinstance(rs, dict):
                continue
            resource = otlp_attributes((rs.get("resource") or {}).get("attributes"))
            service = resource.get("service.name")
            # instrumentationLibrarySpans: the name before OTLP 0.15, still in old exporters' files
            for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []:
                for span in (ss.get("spans") or []) if isinstance(ss, dict) else []:
                    ev = self._span(span, service)
                    if isinstance(ev, Rejected):
                        return ev
                    if ev is not None:
                        events.append(ev)
        return events

    def _span(self, span: Any, service: Any) -> Event | Rejected | None:
        if not isinstance(span, dict):
            return None
        attrs = otlp_attributes(span.get("attributes"))
        if not any(k.startswith("gen_ai.") for k in attrs):
            return None
        from flightdeck.core.normalize import normalize_usage
        from flightdeck.core.normalize.otel import otel_has_usage, otel_model, otel_provider

        if not otel_has_usage(attrs):
            # An agent or tool span (gen_ai.operation.name "invoke_agent",
            # "execute_tool"): gen_ai attributes but no model call to count.
            return None

        try:
            usage = normalize_usage("otel", attrs)
        except ValueError as exc:
            return Rejected("bad gen_ai usage", str(exc))
        start = _nanos(span.get("startTimeUnixNano"))
        end = _nanos(span.get("endTimeUnixNano"))
        ts = end if end is not None else start
        if ts is None:
            return Rejected("missing startTimeUnixNano", "span without times")
        provider = otel_provider(attrs) or "unknown"
        model = otel_model(attrs) or "unknown"
        cost, status = priced(provider, model, usage, ts)
        raw_status = span.get("status")
        status_obj: dict[str, Any] = raw_status if isinstance(raw_status, dict) else {}
        failed = status_obj.get("code") in (2, "STATUS_CODE_ERROR")
        error = attrs.get("error.type") or (status_obj.get("message") or "error" if failed else None)
        trace = str(span.get("traceId") or "otel")
        return Event(
            v=1,
            ts=ts,
            kind=KIND_LLM_CALL,
            id=f"{trace}:{span.get('spanId') or hashlib.blake2b(repr(span).encode(), digest_size=8).hexdigest()}",
            run=trace,
            agent=str(service) if service else None,
            provider=provider,
            model=model,
            name=str(attrs.get("gen_ai.operation.name") or span.get("name") or "") or None,
            stream=attrs.get("gen_ai.request.stream") if isinstance(attrs.get("gen_ai.request.stream"), bool) else None,
            usage=usage,
            cost_usd=cost,
            cost_status=status,
            latency_ms=Latency(gen=span_ms(start, end), total=span_ms(start, end)),
            error=str(error) if error else None,
        )


def _nanos(value: Any) -> float | None:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return None
    return n / 1e9 if n > 0 else None
