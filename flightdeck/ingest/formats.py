"""Per-file format detection, and the foreign formats turned into v1 events.

A followed file may be flightdeck's own JSON Lines, a Claude Code session
log, LiteLLM StandardLoggingPayload lines, or the OTLP JSON the OpenTelemetry
Collector's file exporter writes. The first line that is valid JSON decides
the file's format; a garbage first line is rejected and detection is tried
again on the next one. Every foreign format goes through the same
``normalize_usage`` and ``price`` as the recorder, so a cost here means the
same thing as a cost the recorder wrote.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any, Final, Protocol

import msgspec

from flightdeck.core.events import (
    KIND_LLM_CALL,
    MAX_LINE_BYTES,
    Event,
    Latency,
    Rejected,
    Usage,
    decode_line,
    format_usd,
    parse_ts,
)

CLAUDE_CODE_AGENT: Final = "claude-code"

ParseResult = list[Event] | Rejected


class LineFormat(Protocol):
    """One file format: ``parse`` turns a line into zero or more events."""

    name: str

    def parse(self, line: bytes) -> ParseResult: ...


# --- pricing glue ------------------------------------------------------------


def _priced(
    provider: str,
    model: str,
    usage: Usage,
    ts: float,
    *,
    route: str | None = None,
    reported: Decimal | None = None,
) -> tuple[str | None, str]:
    """(cost_usd string or None, cost_status), as the recorder would write them."""
    from flightdeck.core.pricing import price  # imported late: the module is large

    result = price(provider, model, usage, ts, route=route, reported_usd=reported)
    cost = format_usd(result.usd) if result.usd is not None else None
    return cost, result.status


# --- flightdeck v1 -------------------------------------------------------------


class FlightdeckV1:
    name = "flightdeck-v1"

    def parse(self, line: bytes) -> ParseResult:
        result = decode_line(line)
        if isinstance(result, Rejected):
            return result
        return [result]


# --- Claude Code session logs -------------------------------------------------


class _CCMessage(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None


class _CCLine(msgspec.Struct):
    # Only the fields we need: msgspec skips the (large) message content
    # without building Python objects for it, which is what makes 1M lines fast.
    type: str | None = None
    message: _CCMessage | None = None
    requestId: str | None = None
    sessionId: str | None = None
    timestamp: str | None = None
    uuid: str | None = None
    costUSD: float | None = None
    isSidechain: bool | None = None
    isApiErrorMessage: bool | None = None


_cc_decoder = msgspec.json.Decoder(_CCLine)


class ClaudeCode:
    """``~/.claude/projects/**/*.jsonl``.

    Only ``assistant`` lines with ``message.usage`` cost anything. Claude Code
    writes one line per content block of a response, each repeating the whole
    usage, so the event id is ``message.id:requestId`` and the aggregator's
    dedupe counts the response once (ccusage's rule). A line lacking either id
    cannot be matched with its twins and counts on its own, as ccusage does.
    ``<synthetic>`` messages are Claude Code's own placeholders, not API calls.
    """

    name = "claude-code"
    RECENT = 8  # a response's repeated lines are adjacent: a few ids cover them (kept per file: keep it small)

    def __init__(self) -> None:
        # One parser per file: the repeats of a response usually follow each
        # other, so the event built for the first is handed out again (the
        # aggregator counts it as the duplicate it is) without re-pricing.
        self._recent: dict[str, Event] = {}

    def parse(self, line: bytes) -> ParseResult:
        try:
            row = _cc_decoder.decode(line)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return Rejected("bad claude-code line", str(exc)[:200])
        msg = row.message
        if row.type != "assistant" or msg is None or msg.usage is None:
            return []
        model = msg.model or "unknown"
        if model == "<synthetic>":
            return []
        if msg.id and row.requestId:
            seen = self._recent.get(f"{msg.id}:{row.requestId}")
            if seen is not None:
                return [seen]
        event = self._event(row, msg, model, line)
        if isinstance(event, Event) and msg.id and row.requestId:
            recent = self._recent
            if len(recent) >= self.RECENT:
                del recent[next(iter(recent))]
            recent[event.id] = event
        return event if isinstance(event, Rejected) else [event]

    def _event(self, row: _CCLine, msg: _CCMessage, model: str, line: bytes) -> Event | Rejected:
        if row.timestamp is None:
            return Rejected("missing timestamp", "claude-code assistant line without timestamp")
        try:
            ts = parse_ts(row.timestamp)
        except (ValueError, OverflowError):
            return Rejected("bad timestamp", f"timestamp {row.timestamp!r}")
        from flightdeck.core.normalize import normalize_usage

        try:
            usage = normalize_usage("anthropic", msg.usage)
        except ValueError as exc:
            return Rejected("bad message.usage", str(exc))
        if msg.id and row.requestId:
            event_id = f"{msg.id}:{row.requestId}"
        else:
            event_id = row.uuid or "cc-" + hashlib.blake2b(line, digest_size=8).hexdigest()
        reported = Decimal(repr(row.costUSD)) if row.costUSD is not None else None
        cost, status = _priced("anthropic", model, usage, ts, route="direct", reported=reported)
        return Event(
            v=1,
            ts=ts,
            kind=KIND_LLM_CALL,
            id=event_id,
            run=row.sessionId or "claude-code",
            agent=CLAUDE_CODE_AGENT,
            provider="anthropic",
            route="direct",
            model=model,
            name="subagent" if row.isSidechain else None,
            usage=usage,
            cost_usd=cost,
            cost_status=status,
            error="api_error" if row.isApiErrorMessage else None,
        )


# --- LiteLLM StandardLoggingPayload --------------------------------------------


class LiteLLM:
    """One StandardLoggingPayload per line (LiteLLM's logging callbacks, proxy logs).

    Usage through ``normalize_usage("litellm", payload)``; the cost LiteLLM
    computed (``response_cost``) is what the proxy charged, so it is passed to
    ``price`` as the reported cost.
    """

    name = "litellm"

    def parse(self, line: bytes) -> ParseResult:
        try:
            payload = msgspec.json.decode(line)
        except msgspec.DecodeError as exc:
            return Rejected("not json", str(exc)[:200])
        if not isinstance(payload, dict):
            return Rejected("not an object", "litellm line is not an object")
        from flightdeck.core.normalize import normalize_usage, reported_cost

        try:
            usage = normalize_usage("litellm", payload)
        except ValueError as exc:
            return Rejected("bad litellm usage", str(exc))
        model = payload.get("model") or payload.get("model_group") or "unknown"
        provider = payload.get("custom_llm_provider") or "litellm"
        start = _num(payload.get("startTime"))
        end = _num(payload.get("endTime"))
        first = _num(payload.get("completionStartTime"))
        ts = end if end is not None else start
        if ts is None:
            return Rejected("missing startTime", "litellm payload without startTime/endTime")
        try:
            reported = reported_cost("litellm", payload)
        except ValueError:
            reported = None
        cost, status = _priced(str(provider), str(model), usage, ts, route="proxy", reported=reported)
        stream = bool(payload.get("stream"))
        latency = _litellm_latency(start, first, end, stream)
        meta = payload.get("metadata") if isinstance(payload.get("metadata"), dict) else {}
        run = payload.get("trace_id") or meta.get("session_id") or "litellm"
        agent = payload.get("end_user") or meta.get("user_api_key_alias") or "litellm"
        error = payload.get("error_str") if payload.get("status") == "failure" else None
        event_id = payload.get("id") or "ll-" + hashlib.blake2b(line, digest_size=8).hexdigest()
        return [
            Event(
                v=1,
                ts=ts,
                kind=KIND_LLM_CALL,
                id=str(event_id),
                run=str(run),
                agent=str(agent),
                provider=str(provider),
                route="proxy",
                model=str(model),
                stream=stream,
                usage=usage,
                cost_usd=cost,
                cost_status=status,
                latency_ms=latency,
                error=str(error) if error else None,
            )
        ]


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _ms(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b < a:
        return None
    return (b - a) * 1000.0


def _litellm_latency(start: float | None, first: float | None, end: float | None, stream: bool) -> Latency:
    if stream and first is not None and first != end:
        return Latency(ttft=_ms(start, first), gen=_ms(first, end), total=_ms(start, end))
    return Latency(gen=_ms(start, end), total=_ms(start, end))


# --- OTLP JSON (OpenTelemetry Collector file exporter) ---------------------------


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

    One line can hold many spans; only spans with ``gen_ai.*`` attributes
    become ``llm_call`` events. The span's trace is the run, the resource's
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
        from flightdeck.core.normalize.otel import otel_model, otel_provider

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
        cost, status = _priced(provider, model, usage, ts)
        status_obj = span.get("status") if isinstance(span.get("status"), dict) else {}
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
            latency_ms=Latency(gen=_ms(start, end), total=_ms(start, end)),
            error=str(error) if error else None,
        )


def _nanos(value: Any) -> float | None:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return None
    return n / 1e9 if n > 0 else None


# --- detection ---------------------------------------------------------------

_CLAUDE_CODE_TYPES: Final = frozenset({"user", "assistant", "summary", "system", "file-history-snapshot"})
_LITELLM_KEYS: Final = frozenset({"response_cost", "call_type", "model_group", "hidden_params"})

FLIGHTDECK_V1: Final = FlightdeckV1()
FORMATS: Final[dict[str, LineFormat]] = {
    f.name: f for f in (FLIGHTDECK_V1, ClaudeCode(), LiteLLM(), OtlpJson())
}


def detect_format(first_line: bytes) -> LineFormat | Rejected:
    """The format a file is in, judged from one line; Rejected if the line tells nothing."""
    if len(first_line) > MAX_LINE_BYTES:
        return Rejected("line too long", f"{len(first_line)} bytes")
    try:
        doc = msgspec.json.decode(first_line)
    except msgspec.DecodeError as exc:
        return Rejected("not json", str(exc)[:200])
    if not isinstance(doc, dict):
        return Rejected("not an object", "line is not a JSON object")
    if "kind" in doc and ("v" in doc or "run" in doc):
        return FORMATS["flightdeck-v1"]
    if "resourceSpans" in doc:
        return FORMATS["otlp-json"]
    if "sessionId" in doc or doc.get("type") in _CLAUDE_CODE_TYPES:
        return FORMATS["claude-code"]
    if len(_LITELLM_KEYS.intersection(doc)) >= 2:
        return FORMATS["litellm"]
    return Rejected("unknown format", "line matches no known log format: " + ",".join(sorted(doc)[:8]))


class FileFormat:
    """A file's format, decided by its first line that says something.

    Until then each line is offered to ``detect_format``; the one that decides
    is parsed too, so no line is lost.
    """

    __slots__ = ("format",)

    def __init__(self, fixed: LineFormat | None = None) -> None:
        self.format: LineFormat | None = fixed

    @property
    def name(self) -> str | None:
        return self.format.name if self.format is not None else None

    def parse(self, line: bytes) -> ParseResult:
        fmt = self.format
        if fmt is None:
            detected = detect_format(line)
            if isinstance(detected, Rejected):
                return detected
            # A fresh instance per file: a parser may keep per-file state.
            self.format = fmt = type(detected)() if detected is not FLIGHTDECK_V1 else detected
        try:
            return fmt.parse(line)
        except Exception as exc:  # a payload shape nobody foresaw: one rejected line, never a crash
            return Rejected(f"bad {fmt.name} line", f"{type(exc).__name__}: {exc}"[:300])
