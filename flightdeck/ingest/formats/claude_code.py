"""Claude Code session logs: ``~/.claude/projects/<project>/<session>.jsonl``."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Final

import msgspec

from flightdeck.core.events import (
    KIND_LLM_CALL,
    Event,
    Rejected,
    Usage,
    format_usd,
    parse_ts,
)
from flightdeck.ingest.formats.common import ParseResult, priced

if TYPE_CHECKING:
    from flightdeck.core.pricing import Rates

CLAUDE_CODE_AGENT: Final = "claude-code"


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
            cost, status = priced("anthropic", model, usage, ts, route="direct",
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
        cost, status = priced("anthropic", model, usage, ts, route="direct", reported=reported)
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
