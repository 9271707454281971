"""The telemetry line format (SPEC section 1) and control commands (section 2).

Decoding is the hot path of everything that reads logs, so the records are
``msgspec.Struct``s decoded straight from bytes by one reusable decoder:
type checks (ints >= 0, a cost that is a decimal string) happen inside
msgspec's C code, and only the few checks msgspec cannot express run in
Python afterwards. One wide ``Event`` struct serves every kind, so an unknown
kind still decodes (and is counted, not rejected) and the format can grow.

``Usage``, ``Latency`` and ``Event`` are ``gc=False`` structs: the cyclic
collector never tracks them. A decoded event holds only strings, numbers and
dicts of them, so it can never be part of a reference cycle, and a report
makes and frees millions of them (3 tracked objects a line were 4 % of a
v1 report's instructions, valgrind). Do not make an Event refer to itself.
"""

from __future__ import annotations

import math
import os
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Final

import msgspec

FORMAT_VERSION: Final = 1
MAX_LINE_BYTES: Final = 1 << 20  # 1 MiB: longer lines are rejected without being buffered whole

KIND_LLM_CALL: Final = "llm_call"
KIND_SIGNAL_ACK: Final = "signal_ack"
KIND_ALERT: Final = "alert"
KIND_RUN_START: Final = "run_start"
KIND_RUN_END: Final = "run_end"
KNOWN_KINDS: Final = frozenset(
    {KIND_LLM_CALL, KIND_SIGNAL_ACK, KIND_ALERT, KIND_RUN_START, KIND_RUN_END}
)

ROUTES: Final = frozenset({"direct", "proxy", "local"})
COST_STATUSES: Final = frozenset({"priced", "override", "reported", "local", "unknown"})
STAGES: Final = ("pre", "ttft", "gen", "post", "total")
TOKEN_BUCKETS: Final = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
COMMANDS: Final = frozenset({"pause", "resume", "downgrade", "restore"})

# The bounds of a sane line, decided here once (issue 9): beyond them a value
# is a bug or an attack, and letting it through only moves the crash into a
# reader (a 5,000-digit cost trips Python's int-string limit, a year-1 ts
# breaks datetime, 2^63 tokens overflow a JSON encoder). Within them every
# sum a reader makes stays exact: 10^15 tokens per call leaves room for
# billions of calls in any 64-bit counter long before a report ends.
MAX_TOKENS: Final = 10**15  # per bucket per call, exclusive
MAX_COST_USD: Final = 10**9  # per call, exclusive: at most 9 digits before the point
# Digits after the point: pricing multiplies Decimals at 28 significant
# digits, so a tiny cost can carry ~40 places; more is not a price.
MAX_COST_DECIMALS: Final = 40
MAX_MILLIS: Final = 1e12  # ~31 years: a stage longer than that is not a measurement
TS_MIN: Final = 946_684_800.0  # 2000-01-01T00:00:00Z, inclusive
TS_MAX: Final = 7_258_118_400.0  # 2200-01-01T00:00:00Z, exclusive
# JSON nesting: msgspec guards its recursion with Python's limit and raises
# RecursionError (not a DecodeError) beyond it; caught where it is decoded.

Count = Annotated[int, msgspec.Meta(ge=0, lt=MAX_TOKENS)]
Millis = Annotated[float, msgspec.Meta(ge=0, lt=MAX_MILLIS)]
# A non-negative decimal string such as "0.011250" below MAX_COST_USD, with no
# leading zeros (a megabyte of them is still one digit to Decimal, but not to
# int()); exponents and floats are refused.
COST_PATTERN: Final = rf"^(0|[1-9][0-9]{{0,8}})(\.[0-9]{{1,{MAX_COST_DECIMALS}}})?$"
CostString = Annotated[str, msgspec.Meta(pattern=COST_PATTERN)]
_COST_RE: Final = re.compile(COST_PATTERN)
_COST_MATCH: Final = _COST_RE.match


class Usage(msgspec.Struct, kw_only=True, gc=False):
    """Canonical token buckets. input, cache_read and cache_write are disjoint."""

    input_tokens: Count = 0
    output_tokens: Count = 0
    cache_read_tokens: Count = 0
    cache_write_tokens: Count = 0
    reasoning_tokens: Count = 0
    cache_write_1h_tokens: Count = 0

    @property
    def prompt_tokens(self) -> int:
        """The whole prompt: plain input plus cache reads plus cache writes."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens + other.cache_write_1h_tokens,
        )


class Latency(msgspec.Struct, kw_only=True, gc=False):
    """Stage durations in milliseconds; None when a stage was not measured."""

    pre: Millis | None = None
    ttft: Millis | None = None
    gen: Millis | None = None
    post: Millis | None = None
    total: Millis | None = None


class Event(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """One telemetry line. Fields of every kind live here; each kind uses its own.

    ``ts`` is a float of Unix seconds after ``decode_line`` (an ISO 8601 string
    on the wire is converted there).
    """

    # 0 stands for "absent on the wire" (read as version 1); writers set 1, and
    # because it differs from the default it is always written.
    v: int = 0
    ts: float | str
    kind: str
    id: str
    run: str
    agent: str | None = None
    # llm_call
    provider: str | None = None
    route: str | None = None
    model: str | None = None
    name: str | None = None
    step: int | None = None
    stream: bool | None = None
    usage: Usage | None = None
    # UNSET (absent) and None (null) both mean "cost not known"; a writer sets
    # None so the line says so explicitly. Test it with truthiness.
    cost_usd: CostString | msgspec.UnsetType | None = msgspec.UNSET
    cost_status: str | None = None
    latency_ms: Latency | None = None
    prompt_hash: str | None = None
    error: str | None = None
    tags: dict[str, str] | None = None
    # SPEC 5.2: the tier the provider says it served (default, flex, priority,
    # batch, ...) and where the rate came from, so a cost can be audited later.
    service_tier: str | None = None
    price_source: str | None = None
    # Anthropic's usage.speed ("fast" for Opus fast mode), billed at a multiple.
    speed: str | None = None
    # signal_ack
    ref: str | None = None
    cmd: str | None = None
    state: dict[str, Any] | None = None
    # alert
    rule: str | None = None
    metric: str | None = None
    value: float | None = None
    threshold: float | None = None
    action: str | None = None
    # Free text on alerts and acks (e.g. why a command could not be applied).
    message: str | None = None
    # Telemetry the recorder lost (socket drops) since its previous event.
    dropped: Count | None = None

    @property
    def cost(self) -> Decimal | None:
        return Decimal(self.cost_usd) if self.cost_usd else None


class Command(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A control command, monitor -> agent (SPEC section 2)."""

    v: int = FORMAT_VERSION
    id: str
    ts: float
    cmd: str
    origin: str = "key"
    reason: str | None = None
    to: dict[str, str] | None = None
    target: dict[str, str] | None = None

    def applies_to(self, run: str, agent: str | None) -> bool:
        """Whether a command with this ``target`` is meant for (run, agent)."""
        if not self.target:
            return True
        want_run = self.target.get("run")
        want_agent = self.target.get("agent")
        if want_run is not None and want_run != run:
            return False
        return not (want_agent is not None and want_agent != agent)


class Rejected(msgspec.Struct, frozen=True):
    """A line that is not a valid event, with a short reason naming the field."""

    reason: str
    detail: str = ""


_event_decoder = msgspec.json.Decoder(Event)
_command_decoder = msgspec.json.Decoder(Command)
_encoder = msgspec.json.Encoder()


def _reason_from_validation(msg: str) -> Rejected:
    # msgspec says e.g. "Expected `int` >= 0, got `-5` - at `$.usage.input_tokens`".
    # The reason (used for counting) is the field; the detail keeps the whole text.
    field = msg.rsplit("- at `$.", 1)[1].rstrip("`") if "- at `$." in msg else ""
    if msg.startswith("Object missing required field"):
        missing = msg.split("`", 2)[1]
        field = f"{field}.{missing}" if field else missing
        return Rejected(f"missing {field}", msg)
    if msg.startswith("Expected `object`") and not field:
        return Rejected("not an object", msg)
    return Rejected(f"bad {field or 'line'}", msg)


def parse_ts(value: float | str) -> float:
    """Unix seconds from a number or an ISO 8601 string; ValueError otherwise.

    Args:
        value: epoch seconds, or an ISO 8601 string (a naive one is UTC).

    Any time is accepted here (``report --since`` may ask for 1970); the
    bounds of an event's ``ts`` are ``check_ts``'s.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:  # a naive time in a log is taken as UTC
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    if isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"ts {value!r} is not a time")
    return float(value)


def check_ts(ts: float) -> str | None:
    """Why an event time (epoch seconds) is out of bounds, or None when it is fine.

    Args:
        ts: the event's time in Unix seconds.

    The one rule for every reader: years 2000 to 2199, NaN and infinities refused.
    """
    if TS_MIN <= ts < TS_MAX:  # False for NaN too
        return None
    return f"ts {ts!r} is outside the years 2000-2199"


TOO_DEEP: Final = "too deeply nested"


def decode_json(line: bytes | str) -> Any:
    """Any JSON value from one line; ValueError (never RecursionError) on bad input.

    Args:
        line: the JSON text.

    For the format readers: msgspec raises RecursionError on a deeply nested
    document, which a reader catching ``DecodeError`` would let escape.
    """
    try:
        return msgspec.json.decode(line)
    except RecursionError:
        raise msgspec.DecodeError(TOO_DEEP) from None


def decode_line(line: bytes | str) -> Event | Rejected:
    """Decode and validate one line. Never raises: a bad line comes back as Rejected.

    Args:
        line: one line of the log, with or without its newline.
    """
    if len(line) > MAX_LINE_BYTES:
        return Rejected("line too long", f"{len(line)} bytes")
    try:
        event = _event_decoder.decode(line)
    except msgspec.ValidationError as exc:
        return _reason_from_validation(str(exc))
    except msgspec.DecodeError as exc:
        return Rejected("not json", str(exc)[:200])
    except RecursionError:
        return Rejected("not json", TOO_DEEP)
    return validate(event)


def decode_lines(block: bytes) -> list[Event | Rejected]:
    """Decode and validate a block of whole lines in one call; blank lines are skipped.

    Much cheaper per line than ``decode_line`` (one call into msgspec for
    the block), but all or nothing: raises ValueError (msgspec's DecodeError
    or ValidationError) if any line is not JSON or not an Event. The caller
    then decodes that block line by line with ``decode_line`` to keep the
    good lines and name the bad ones. Lines must be at most ``MAX_LINE_BYTES``.
    """
    return [validate(event) for event in decode_structs(block)]


def decode_structs(block: bytes) -> list[Event]:
    """``decode_lines`` without ``validate``: for a caller that validates as it
    goes (a fast path inlined in its own loop). Same errors as ``decode_lines``.

    Args:
        block: whole lines, each ended by a newline (the last may not be).
    """
    try:
        return _event_decoder.decode_lines(block)
    except RecursionError:  # a deep line: the caller redoes the block line by line
        raise msgspec.DecodeError(TOO_DEEP) from None


def decode_each(lines: list[bytes]) -> list[Event]:
    """Each line decoded alone, as ``decode_line`` decodes it, in one C-level ``map``; no ``validate``.

    Args:
        lines: lines with or without their newline (JSON whitespace), none
            longer than ``MAX_LINE_BYTES``.

    All or nothing, like ``decode_structs``: raises ValueError (msgspec's
    DecodeError or ValidationError) at the first line that is not exactly
    one Event; the caller then decodes those lines one by one with
    ``decode_line`` to name the bad ones. Unlike ``decode_lines``, which reads
    a stream of values, a line here is one value or an error, so no check
    that the values fell one per line is needed (that check was two passes
    over the bytes: as many instructions as a third of the decoding).
    """
    try:
        return list(map(_event_decoder.decode, lines))
    except RecursionError:  # a deep line: the caller redoes them line by line
        raise msgspec.DecodeError(TOO_DEEP) from None


def validate(event: Event) -> Event | Rejected:
    """The checks msgspec cannot express; converts an ISO ``ts`` to seconds."""
    ts = event.ts
    if type(ts) is not float:
        try:
            ts = event.ts = parse_ts(ts)
        except (ValueError, OverflowError, TypeError):
            return Rejected("bad ts", f"ts {str(ts)[:80]!r} is not a time")
    if (why := check_ts(ts)) is not None:
        return Rejected("bad ts", why)
    if event.kind == KIND_LLM_CALL:
        if event.usage is None:
            return Rejected("missing usage", "llm_call without usage")
        if event.model is None:
            return Rejected("missing model", "llm_call without model")
        if event.provider is None:
            return Rejected("missing provider", "llm_call without provider")
        status = event.cost_status
        if status is not None and status not in COST_STATUSES:
            return Rejected("bad cost_status", f"cost_status {status!r}")
        if event.route is not None and event.route not in ROUTES:
            return Rejected("bad route", f"route {event.route!r}")
        usage = event.usage
        if usage.reasoning_tokens > usage.output_tokens:
            return Rejected("bad usage.reasoning_tokens", "reasoning_tokens > output_tokens")
        if usage.cache_write_1h_tokens > usage.cache_write_tokens:
            return Rejected(
                "bad usage.cache_write_1h_tokens", "cache_write_1h_tokens > cache_write_tokens"
            )
    return event


def check_event(event: Event) -> Rejected | None:
    """The line format's bounds for an event built in Python (a foreign format's parser).

    Args:
        event: an event whose fields were not checked by the v1 decoder.

    Returns a Rejected naming the first field out of bounds, or None. The same
    bounds as ``decode_line``'s: ``MAX_TOKENS``, ``COST_PATTERN``, ``check_ts``,
    ``MAX_MILLIS``.
    """
    ts = event.ts
    u = event.usage
    cost = event.cost_usd
    lat = event.latency_ms
    # The common case in one expression (a report reads millions of these).
    if (
        type(ts) is float and TS_MIN <= ts < TS_MAX
        and (u is None or (0 <= u.input_tokens < MAX_TOKENS and 0 <= u.output_tokens < MAX_TOKENS
                           and 0 <= u.cache_read_tokens < MAX_TOKENS and 0 <= u.cache_write_tokens < MAX_TOKENS
                           and 0 <= u.reasoning_tokens < MAX_TOKENS and 0 <= u.cache_write_1h_tokens < MAX_TOKENS))
        and (type(cost) is not str or _COST_MATCH(cost) is not None)
        and (lat is None or _stages_ok(lat))
    ):
        return None
    return _out_of_bounds(event)


def _stages_ok(lat: Latency) -> bool:
    """Every measured stage within 0 and MAX_MILLIS (the recorder's events all carry stages)."""
    for ms in (lat.pre, lat.ttft, lat.gen, lat.post, lat.total):
        if ms is not None and not 0 <= ms < MAX_MILLIS:
            return False
    return True


def _out_of_bounds(event: Event) -> Rejected | None:
    """``check_event``'s slow path: which field is out of bounds, in words."""
    ts = event.ts
    if type(ts) is not float and type(ts) is not int:
        return Rejected("bad ts", f"ts {str(ts)[:80]!r} is not a time")
    if (why := check_ts(ts)) is not None:
        return Rejected("bad ts", why)
    usage = event.usage
    if usage is not None:
        for bucket in (*TOKEN_BUCKETS, "cache_write_1h_tokens"):
            n = getattr(usage, bucket)
            if not 0 <= n < MAX_TOKENS:
                return Rejected(f"bad usage.{bucket}", f"{bucket} {n} is not within 0 and {MAX_TOKENS:.0e}")
    cost = event.cost_usd
    if type(cost) is str and not _COST_RE.match(cost):
        return Rejected("bad cost_usd", f"cost_usd {cost[:40]!r} is not a decimal below {MAX_COST_USD:.0e}")
    latency = event.latency_ms
    if latency is not None:
        for stage in STAGES:
            ms = getattr(latency, stage)
            if ms is not None and not 0 <= ms < MAX_MILLIS:
                return Rejected(f"bad latency_ms.{stage}", f"{stage} {ms!r} ms is not a duration")
    return None


def bounded(events: list[Event]) -> list[Event] | Rejected:
    """``events`` (one line's), or a Rejected when one of them is out of bounds (``check_event``).

    Args:
        events: what a foreign format's parser made of one line.
    """
    for event in events:
        if (why := check_event(event)) is not None:
            return why
    return events


def encode_event(event: Event) -> bytes:
    """One line, newline included, ready for a single write()."""
    return _encoder.encode(event) + b"\n"


def encode_command(command: Command) -> bytes:
    return _encoder.encode(command) + b"\n"


def decode_command(line: bytes | str) -> Command:
    """Decode a control command; ValueError with the field on a bad one."""
    try:
        command = _command_decoder.decode(line)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ValueError(f"bad control command: {exc}") from None
    if command.cmd not in COMMANDS:
        raise ValueError(f"bad control command: cmd {command.cmd!r} is not one of {sorted(COMMANDS)}")
    return command


def format_usd(amount: Decimal) -> str:
    """A Decimal as the wire's decimal string: plain digits, at least six places, exact."""
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"cost {amount!r} is not a non-negative finite amount")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -6:
        amount = amount.quantize(Decimal("0.000001"))
    text = format(amount, "f")
    return text


class IdSource:
    """Event ids of the form ``<12 random hex>-<counter in hex>``.

    The random prefix makes ids unique across writers; the counter makes one
    writer's ids contiguous, which lets readers deduplicate them in memory that
    does not grow with the number of events (see ``core.dedupe``).
    """

    __slots__ = ("_next", "prefix")

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or os.urandom(6).hex()
        self._next = 0

    def __call__(self) -> str:
        n = self._next
        self._next = n + 1
        return f"{self.prefix}-{n:x}"
