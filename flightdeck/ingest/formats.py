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
from typing import TYPE_CHECKING, Annotated, Any, Final, Protocol

import msgspec

from flightdeck.core.events import (
    KIND_LLM_CALL,
    MAX_LINE_BYTES,
    Event,
    Latency,
    Rejected,
    Usage,
    bounded,
    decode_line,
    format_usd,
    parse_ts,
)

if TYPE_CHECKING:
    from flightdeck.core.pricing import Rates

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

# The fast path's typed view of the same line. Counts are plain non-negative
# ints here: any other spelling (a digit string, a float, a negative, a
# non-object cache_creation) fails validation and the line takes the generic
# path above (``normalize_usage``), so both give the same Usage or the same error.
_Tokens = Annotated[int, msgspec.Meta(ge=0)]


class _CCCacheSplit(msgspec.Struct):
    ephemeral_5m_input_tokens: _Tokens | None = None
    ephemeral_1h_input_tokens: _Tokens | None = None


class _CCUsage(msgspec.Struct):
    input_tokens: _Tokens | None = None
    output_tokens: _Tokens | None = None
    cache_read_input_tokens: _Tokens | None = None
    cache_creation_input_tokens: _Tokens | None = None
    cache_creation: _CCCacheSplit | None = None
    # Keys that make normalize/anthropic.py look elsewhere for the counts; a
    # usage object carrying them goes to the generic path.
    type: Any = msgspec.UNSET
    usage: Any = msgspec.UNSET


class _CCFastMessage(msgspec.Struct):
    id: str | None = None
    model: str | None = None
    usage: _CCUsage | None = None


class _CCFastLine(msgspec.Struct):
    type: str | None = None
    message: _CCFastMessage | None = None
    requestId: str | None = None
    sessionId: str | None = None
    timestamp: str | None = None
    uuid: str | None = None
    costUSD: float | None = None
    isSidechain: bool | None = None
    isApiErrorMessage: bool | None = None


class _CCKind(msgspec.Struct):
    type: str | None = None


_cc_fast_decoder = msgspec.json.Decoder(_CCFastLine)
# Lines that cannot be assistant lines are still decoded whole (a malformed
# line is counted, never skipped), but into one field: no strings are built.
_cc_kind_decoder = msgspec.json.Decoder(_CCKind)


def _fast_usage(u: _CCUsage) -> Usage | None:
    """normalize/anthropic.py's ``read_usage`` for the typed shape; None: use the generic path."""
    plain = u.input_tokens
    if plain is None or u.type is not msgspec.UNSET or u.usage is not msgspec.UNSET:
        return None  # missing (an error there) or a shape only the generic reader resolves
    cc = u.cache_creation
    w5 = w1h = 0
    if cc is not None:
        w5 = cc.ephemeral_5m_input_tokens or 0
        w1h = cc.ephemeral_1h_input_tokens or 0
    written = u.cache_creation_input_tokens
    if written is None:  # only the split was sent: its parts are the whole
        written = w5 + w1h
    if w1h > written:
        return None  # the generic reader names this error
    return Usage(
        input_tokens=plain,
        output_tokens=u.output_tokens or 0,
        cache_read_tokens=u.cache_read_input_tokens or 0,
        cache_write_tokens=written,
        cache_write_1h_tokens=w1h,
    )


# 'YYYY-MM-DDTHH:MM' -> microseconds from the epoch to that UTC minute.
_MINUTE_US: dict[str, int | None] = {}
_UNSEEN: Final = object()


def _minute_us(prefix: str) -> int | None:
    """The minute's start, through parse_ts itself; None when it is not a time."""
    try:
        seconds = parse_ts(prefix + ":00Z")
    except (ValueError, OverflowError):
        us = None
    else:
        us = int(seconds) * 1_000_000  # whole seconds: exact
    if len(_MINUTE_US) >= 20_000:  # two weeks of minutes; a flood of them must not grow memory
        _MINUTE_US.clear()
    _MINUTE_US[prefix] = us
    return us


def cc_timestamp(text: str) -> float:
    """``parse_ts`` for Claude Code's ``2025-10-01T10:00:00.123Z``, without building a datetime.

    Same float as ``datetime.timestamp()``, which divides the exact count of
    microseconds by 10**6 (a correctly rounded int division, as here). The
    minute is resolved by ``parse_ts`` once and cached; any other spelling
    goes to ``parse_ts`` whole. ValueError when not a time.
    """
    base = _MINUTE_US.get(text[:16], _UNSEEN)
    if base is _UNSEEN and len(text) == 24 and text[13] == ":" and text[10] == "T":
        base = _minute_us(text[:16])
    if base is not None and base is not _UNSEEN and len(text) == 24 and text[16] == ":" and text[19] == "." \
            and text[23] == "Z":
        tail = text[17:19] + text[20:23]  # SSmmm
        if tail.isdigit() and tail.isascii() and tail < "60000":
            return (base + int(tail) * 1000) / 1_000_000  # type: ignore[operator]
    return parse_ts(text)


class ExactRates:
    """``format_usd(rates.cost(usage))`` in integer arithmetic, same digits.

    ``Rates.cost`` multiplies Decimal rates by token counts and divides by a
    million; it is exact, and the Decimal result's exponent (so the string's
    trailing zeros) follows from the rates' exponents. Here each rate is
    scaled to an integer once, the sum is an int, and the string is written
    with the digits Decimal would give. ``of`` returns None for rates this
    cannot mirror (a per-request fee, a negative or non-finite rate, a
    positive exponent); a sum too large for Decimal's 28 digits gives None
    from ``text`` and the caller uses Decimal.
    """

    __slots__ = ("inp", "k", "out", "read", "reasoning", "status", "tiers", "write", "write_1h")

    def __init__(self, rates: Rates, k: int, tiers: tuple[tuple[int, ExactRates], ...]) -> None:
        self.k = k
        self.inp = _scaled(rates.input, k)
        self.out = _scaled(rates.output, k)
        self.read = _scaled(rates.cache_read, k)
        self.write = _scaled(rates.cache_write, k)
        self.write_1h = _scaled(rates.cache_write_1h, k)
        self.reasoning = None if rates.reasoning is None else _scaled(rates.reasoning, k)
        self.tiers = tiers
        self.status = rates.status

    @classmethod
    def of(cls, rates: Rates) -> ExactRates | None:
        values = [rates.input, rates.output, rates.cache_read, rates.cache_write, rates.cache_write_1h]
        if rates.reasoning is not None:
            values.append(rates.reasoning)
        if rates.per_request or not all(v.is_finite() and v >= 0 and len(v.as_tuple().digits) <= 20 for v in values):
            return None  # (a rate of more digits could make Decimal round: leave it to Decimal)
        exponent = min(int(v.as_tuple().exponent) for v in values)
        if exponent > 0:
            return None
        tiers = []
        for threshold, tier in rates.tiers:
            exact = cls.of(tier)
            if exact is None:
                return None
            tiers.append((threshold, exact))
        return cls(rates, -exponent, tuple(tiers))

    def text(self, u: Usage) -> str | None:
        """The cost as ``format_usd`` writes it; None when Decimal must do it."""
        inp, read, write, out = u.input_tokens, u.cache_read_tokens, u.cache_write_tokens, u.output_tokens
        r = self
        if r.tiers and inp + read + write > r.tiers[0][0]:  # above the lowest threshold: find the tier
            prompt = inp + read + write
            for threshold, tier in reversed(r.tiers):
                if prompt > threshold:
                    r = tier
                    break
        w1h = u.cache_write_1h_tokens
        if w1h > write:
            w1h = write
        n = r.inp * inp + r.read * read + r.write * (write - w1h) + r.write_1h * w1h
        reasoning_rate = r.reasoning
        if reasoning_rate is None:
            n += r.out * out
        else:
            reasoning = min(u.reasoning_tokens, out)
            n += r.out * (out - reasoning) + reasoning_rate * reasoning
        # An int OR is negative iff one of them is: one test for all counts.
        if n >= _DECIMAL_LIMIT or (inp | read | write | out | u.cache_write_1h_tokens | u.reasoning_tokens) < 0:
            return None  # Decimal's precision would round; negatives: Rates.cost raises
        # value = n * 10**-(k+6). Decimal's quotient keeps trailing zeros down
        # to 10**-k (the division's ideal exponent) and format_usd writes at
        # least 6 places: so z = min(trailing zeros of n, k, 6) of them go.
        k = r.k
        if not n:
            return "0." + "0" * max(6, k)
        digits = str(n)
        places = 6
        if k:
            if digits[-1] == "0":
                z = min(len(digits) - len(digits.rstrip("0")), k, 6)
                digits = digits[:-z]
                places = k + 6 - z
            else:
                places = k + 6
        if len(digits) <= places:
            digits = "0" * (places + 1 - len(digits)) + digits
        return digits[:-places] + "." + digits[-places:]


def _scaled(rate: Decimal, k: int) -> int:
    """``rate * 10**k`` as an int, exactly (from the digits: no Decimal context rounding)."""
    _sign, digits, exponent = rate.as_tuple()
    return int("".join(map(str, digits)) or "0") * 10 ** (int(exponent) + k)


_DECIMAL_LIMIT: Final = 10**27  # below Decimal's 28 digits: every step of Rates.cost is exact
_EXACT: dict[int, tuple[Rates, ExactRates | None]] = {}  # id(rates) -> (rates kept alive, compiled)


def exact_cost(rates: Rates, usage: Usage) -> str:
    """``format_usd(rates.cost(usage))``, fast for the usual rates (see ExactRates)."""
    entry = _EXACT.get(id(rates))
    if entry is None or entry[0] is not rates:
        if len(_EXACT) >= 4096:
            _EXACT.clear()
        entry = _EXACT[id(rates)] = (rates, ExactRates.of(rates))
    exact = entry[1]
    text = exact.text(usage) if exact is not None else None
    return text if text is not None else format_usd(rates.cost(usage))


class ClaudeCode:
    """``~/.claude/projects/**/*.jsonl``.

    Only ``assistant`` lines with ``message.usage`` cost anything. Claude Code
    writes one line per content block of a response, each repeating the whole
    usage, so the event id is ``message.id:requestId`` and the aggregator's
    dedupe counts the response once (ccusage's rule). A line lacking either id
    cannot be matched with its twins and counts on its own, as ccusage does.
    ``<synthetic>`` messages are Claude Code's own placeholders, not API calls.

    The repeats of a response usually follow each other: the parser keeps
    the last few events and hands the same one out again, without decoding
    its usage or pricing it; the aggregator's dedupe counts it once (and
    shows it among the duplicates), as it does a response seen again further
    away (a resumed session copies history into a new file).

    Speed (a report reads millions of these lines): a typed decoder builds the
    Usage directly, timestamps of Claude Code's one spelling are parsed by
    hand, and rates are looked up once per (model, UTC day) and applied in
    integers. Every shortcut has a test showing it equals the generic path
    (``normalize_usage``, ``parse_ts``, ``price``); anything unusual takes
    that generic path.
    """

    name = "claude-code"
    RECENT = 8  # a response's repeated lines are adjacent: a few ids cover them (kept per file: keep it small)

    def __init__(self) -> None:
        # One parser per file: the events of the last few responses, oldest first.
        self._recent: dict[str, Event] = {}
        # (model, UTC day) -> rates (and their integer form), for rates that change at most daily.
        self._rates: dict[tuple[str, int], tuple[Rates | None, ExactRates | None]] = {}

    def parse(self, line: bytes) -> ParseResult:
        if b"assistant" not in line:
            # Not an assistant line unless "assistant" is spelt with escapes:
            # the one-field decode validates the JSON and settles that.
            try:
                kind = _cc_kind_decoder.decode(line).type
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                return Rejected("bad claude-code line", str(exc)[:200])
            if kind != "assistant":
                return []
        try:
            row = _cc_fast_decoder.decode(line)
        except msgspec.ValidationError:
            try:
                kind = _cc_kind_decoder.decode(line).type
            except msgspec.ValidationError as exc:  # "type" is not a string
                return Rejected("bad claude-code line", str(exc)[:200])
            if kind != "assistant":
                return []  # "assistant" was in its text: the shape of a line that costs nothing is no error
            return self._parse_generic(line)  # an unusual shape: the generic reader decides
        except msgspec.DecodeError as exc:
            return Rejected("bad claude-code line", str(exc)[:200])
        msg = row.message
        if row.type != "assistant" or msg is None or msg.usage is None:
            return []
        model = msg.model or "unknown"
        if model == "<synthetic>":
            return []
        key = f"{msg.id}:{row.requestId}" if msg.id and row.requestId else None
        if key is not None:
            seen = self._recent.get(key)
            if seen is not None:
                return [seen]  # another content block of the same response: the same event
        usage = _fast_usage(msg.usage)
        if usage is None:
            return self._parse_generic(line)
        if row.timestamp is None:
            return Rejected("missing timestamp", "claude-code assistant line without timestamp")
        try:
            ts = cc_timestamp(row.timestamp)
        except (ValueError, OverflowError):
            return Rejected("bad timestamp", f"timestamp {row.timestamp!r}")
        if row.costUSD is not None:
            cost, status = _priced("anthropic", model, usage, ts, route="direct",
                                   reported=Decimal(repr(row.costUSD)))
        else:
            cost, status = self._cost(model, usage, ts)
        event = Event(
            v=1,
            ts=ts,
            kind=KIND_LLM_CALL,
            id=key or row.uuid or "cc-" + hashlib.blake2b(line, digest_size=8).hexdigest(),
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
        if key is not None:
            recent = self._recent
            if len(recent) >= self.RECENT:
                del recent[next(iter(recent))]
            recent[key] = event
        return [event]

    def _cost(self, model: str, usage: Usage, ts: float) -> tuple[str | None, str]:
        """What ``_priced`` gives for a call without a reported cost, from cached rates."""
        cache_key = (model, int(ts // 86400))
        entry = self._rates.get(cache_key)
        if entry is None:
            from flightdeck.core.pricing import default_pricer

            rates = default_pricer().rates("anthropic", model, ts, route="direct")
            entry = (rates, ExactRates.of(rates) if rates is not None else None)
            # Rates with a schedule may change within a day (off-peak hours):
            # the pricer, which knows the windows, is asked every time.
            if rates is None or not rates.date_matters:
                if len(self._rates) >= 4096:
                    self._rates.clear()
                self._rates[cache_key] = entry
        rates, exact = entry
        if rates is None:
            return None, "unknown"
        text = exact.text(usage) if exact is not None else None
        if text is not None:
            return text, rates.status
        try:
            return format_usd(rates.cost(usage)), rates.status
        except (ValueError, ArithmeticError):  # as price(): pricing never breaks the monitor
            return None, "unknown"

    def _remember(self, key: str, event: Event) -> None:
        recent = self._recent
        if len(recent) >= self.RECENT:
            del recent[next(iter(recent))]
        recent[key] = event

    def _parse_generic(self, line: bytes) -> ParseResult:
        """Every line through ``normalize_usage`` and ``price``: what the fast path must equal."""
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
            self._remember(event.id, event)
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
        from flightdeck.core.normalize.litellm import payload_model, payload_provider

        try:
            usage = normalize_usage("litellm", payload)
        except ValueError as exc:
            return Rejected("bad litellm usage", str(exc))
        model = payload_model(payload) or payload.get("model_group") or "unknown"
        provider = payload_provider(payload) or "litellm"
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
    except (msgspec.DecodeError, RecursionError) as exc:  # deep nesting: RecursionError
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
            result = fmt.parse(line)
        except Exception as exc:  # a payload shape nobody foresaw: one rejected line, never a crash
            return Rejected(f"bad {fmt.name} line", f"{type(exc).__name__}: {exc}"[:300])
        # The line format's bounds hold for foreign formats too (v1 was checked decoding).
        return bounded(result) if fmt is not FLIGHTDECK_V1 and type(result) is list else result
