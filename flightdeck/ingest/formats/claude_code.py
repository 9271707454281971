"""Claude Code session logs: ``~/.claude/projects/<project>/<session>.jsonl``."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Final

import msgspec

from flightdeck.core.events import (
    KIND_LLM_CALL,
    MAX_COST_USD,
    MAX_TOKENS,
    TS_MAX,
    TS_MIN,
    Event,
    Rejected,
    Usage,
    check_event,
    format_usd,
    parse_ts,
)
from flightdeck.core.money import IntRates, compile_rates
from flightdeck.ingest.formats.common import ParseResult, priced

if TYPE_CHECKING:
    from flightdeck.core.pricing import Rates

CLAUDE_CODE_AGENT: Final = "claude-code"


class _CCMessage(msgspec.Struct, gc=False):
    id: str | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None


class _CCLine(msgspec.Struct, gc=False):
    # Only the fields we need: msgspec skips the (large) message content
    # without building Python objects for it, which is what makes 1M lines fast.
    # gc=False (all the line structs here): decoded from JSON, they can hold no
    # reference cycle, so the cyclic collector need not track them; with it
    # running (the live engine) the typed decode of the bench's assistant lines
    # went 3.86 -> 2.39 us (min of 9, rows kept as the reader keeps them), with
    # it off (report) 2.33 -> 2.23.
    type: str | None = None
    message: _CCMessage | None = None
    requestId: str | None = None
    sessionId: str | None = None
    timestamp: str | None = None
    uuid: str | None = None
    costUSD: float | None = None
    isSidechain: bool | None = None
    isApiErrorMessage: bool | None = None
    agentId: str | None = None
    cwd: str | None = None


_cc_decoder = msgspec.json.Decoder(_CCLine)

# The fast path's typed view of the same line. Counts are plain non-negative
# ints here: any other spelling (a digit string, a float, a negative, a
# non-object cache_creation) fails validation and the line takes the generic
# path above (``normalize_usage``), so both give the same Usage or the same error.
_Tokens = Annotated[int, msgspec.Meta(ge=0)]


class _CCCacheSplit(msgspec.Struct, forbid_unknown_fields=True, gc=False):  # a new TTL: the generic path notes it
    ephemeral_5m_input_tokens: _Tokens | None = None
    ephemeral_1h_input_tokens: _Tokens | None = None


class _CCOutputDetails(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    thinking_tokens: _Tokens | None = None


class _CCUsage(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    # The fields of these fast-path structs are declared in the order Claude Code
    # writes the keys: msgspec tries the field after the last one matched first, so
    # a key in order is found at once (the typed decode of the bench's assistant
    # lines: 16.6k -> 15.5k instructions a line, valgrind). A Struct pickles its
    # fields by position: a new order is a new index VERSION (held copies are pickled).
    input_tokens: _Tokens | None = None
    cache_creation_input_tokens: _Tokens | None = None
    cache_read_input_tokens: _Tokens | None = None
    cache_creation: _CCCacheSplit | None = None
    output_tokens: _Tokens | None = None
    # Known keys that hold no count the buckets take (KNOWN_USAGE_KEYS): skipped
    # unparsed. Any other key fails this struct (forbid_unknown_fields), so the line
    # takes the generic path, which names the key in a note.
    service_tier: msgspec.Raw = msgspec.Raw()
    # "fast" for Opus fast mode (billed at a multiple); anything but a string: the generic path.
    speed: str | None = None
    # Keys that make normalize/anthropic.py look elsewhere for the counts; a
    # usage object carrying them goes to the generic path.
    type: Any = msgspec.UNSET
    usage: Any = msgspec.UNSET
    inference_geo: msgspec.Raw = msgspec.Raw()
    server_tool_use: msgspec.Raw = msgspec.Raw()
    # The thinking part of output_tokens (reasoning_tokens), as normalize/anthropic.py reads it.
    output_tokens_details: _CCOutputDetails | None = None
    # Compaction steps, whose tokens the counts above leave out: a non-empty list
    # takes the generic path, which notes it.
    iterations: Any = msgspec.UNSET


class _CCFastMessage(msgspec.Struct, gc=False):
    id: str | None = None
    model: str | None = None
    usage: _CCUsage | None = None


class _CCFastLine(msgspec.Struct, gc=False):  # fields in Claude Code's key order (see _CCUsage)
    isSidechain: bool | None = None
    cwd: str | None = None
    sessionId: str | None = None
    type: str | None = None
    uuid: str | None = None
    timestamp: str | None = None
    message: _CCFastMessage | None = None
    requestId: str | None = None
    costUSD: float | None = None
    isApiErrorMessage: bool | None = None
    agentId: str | None = None


class _CCKind(msgspec.Struct, gc=False):
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
    if u.iterations is not msgspec.UNSET and u.iterations:
        return None  # compaction iterations: the generic reader (and its note)
    output = u.output_tokens or 0
    details = u.output_tokens_details
    thinking = (details.thinking_tokens or 0) if details is not None else 0
    if thinking > output:
        return None  # the generic reader names this error
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
        output_tokens=output,
        cache_read_tokens=u.cache_read_input_tokens or 0,
        cache_write_tokens=written,
        reasoning_tokens=thinking,
        cache_write_1h_tokens=w1h,
    )


# 'YYYY-MM-DDTHH:MM' -> microseconds from the epoch to that UTC minute.
_MINUTE_US: dict[str, int | None] = {}
_UNSEEN: Final = object()
_UNSET: Final = msgspec.UNSET  # one global lookup, not two, in the per-copy checks
# ':SS' and '.mmmZ' (the rest of Claude Code's ``2025-10-01T10:00:00.123Z`` after the
# minute) -> microseconds. A key is valid by construction (two ASCII digits below 60;
# '.', three ASCII digits and the final Z, so the text is 24 characters long): one
# slice and one lookup each, where checking the characters one by one and int() of
# the digits cost 2.2k instructions more a copy (valgrind, the reader over 10k lines of
# bench_claude_code's logs: 40.2k -> 38.7k instructions a line).
_SECOND_US: Final = {f":{s:02d}": s * 1_000_000 for s in range(60)}
_MILLI_US: Final = {f".{m:03d}Z": m * 1000 for m in range(1000)}


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
    minute is resolved by ``parse_ts`` once and cached, the seconds and
    milliseconds are looked up (``_SECOND_US``, ``_MILLI_US``); any other
    spelling goes to ``parse_ts`` whole. ValueError when not a time.
    """
    base = _MINUTE_US.get(text[:16], _UNSEEN)
    if base is _UNSEEN and len(text) == 24 and text[13] == ":" and text[10] == "T":
        base = _minute_us(text[:16])
    if base is not None and base is not _UNSEEN:
        sec = _SECOND_US.get(text[16:19])
        milli = _MILLI_US.get(text[19:])
        if sec is not None and milli is not None:
            return (base + sec + milli) / 1_000_000  # type: ignore[operator]
    return parse_ts(text)


SKIPPED: Final = "claude-code skipped: "  # the reason prefix of lines counted but not turned into calls
NOTED: Final = "claude-code usage key not read: "  # the note prefix of lines accepted, but not read whole

# Every key of ``message.usage`` that flightdeck reads or knows holds no billed
# count, from anthropic-sdk-python ``types/usage.py`` (Usage: cache_creation,
# cache_creation_input_tokens, cache_read_input_tokens, inference_geo,
# input_tokens, output_tokens, output_tokens_details, server_tool_use,
# service_tier, speed) and what Claude Code 2.x writes beside them
# (``iterations``, an empty list unless compaction ran). ``type``/``usage``
# are the shapes normalize/anthropic.py resolves itself. Any other key is a
# field this reader would drop: the line counts, priced from the known
# buckets, and the key is named in a note (``Snapshot.notes``).
KNOWN_USAGE_KEYS: Final = frozenset({
    "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
    "cache_creation", "output_tokens_details", "server_tool_use", "service_tier", "speed",
    "inference_geo", "iterations", "type", "usage",
})
_NOTE_KEY_CHARS: Final = 60  # a hostile key is named, not copied whole
# The breakdowns whose parts are counts flightdeck prices (types/cache_creation.py,
# types/output_tokens_details.py): a part it does not know would be dropped.
_KNOWN_PARTS: Final = {
    "cache_creation": frozenset({"ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"}),
    "output_tokens_details": frozenset({"thinking_tokens"}),
}


def unread_usage(usage: dict[str, Any]) -> list[str]:
    """The note reasons for what of ``usage`` this reader does not count, sorted.

    Args:
        usage: a Claude Code line's ``message.usage`` object.

    A key not in KNOWN_USAGE_KEYS is named, and so is an unknown part of
    ``cache_creation`` or ``output_tokens_details``; a non-empty ``iterations`` (the
    API's compaction steps, whose tokens the top-level counts leave out) is
    noted too, since its extra tokens are not in the cost.
    """
    out = [NOTED + str(k)[:_NOTE_KEY_CHARS] for k in usage if k not in KNOWN_USAGE_KEYS]
    for name, known in _KNOWN_PARTS.items():  # a breakdown with a part it does not know (a new cache TTL)
        part = usage.get(name)
        if isinstance(part, dict):
            out.extend(f"{NOTED}{name}.{str(k)[:_NOTE_KEY_CHARS]}" for k in part if k not in known)
    if usage.get("iterations"):
        out.append(NOTED + "iterations (compaction steps: their tokens are not counted)")
    return sorted(out)


def usage_total(u: Usage) -> int:
    """All the tokens of a copy: the larger of two copies of one response is the more complete."""
    return u.input_tokens + u.output_tokens + u.cache_read_tokens + u.cache_write_tokens


class _Held:
    """A response whose copies are still being written: its most complete copy so far.

    ``event`` is that copy's Event, or None while it is ``pending``: the
    fast path keeps a copy's decoded line and builds (and prices) the Event
    only for the copy that is handed out (see ``ClaudeCode._lazy``).
    """

    __slots__ = ("event", "pending", "request", "total")

    def __init__(self, event: Event | None, request: str | None, total: int = 0,
                 pending: _Pending | None = None) -> None:
        self.event = event
        self.request = request
        self.total = total if event is None else usage_total(event.usage) if event.usage is not None else 0
        self.pending = pending

    def take(self) -> Event:
        """The held copy's Event (built now if it was pending)."""
        event = self.event
        if event is None:
            event = self.event = _materialize(self.pending)  # type: ignore[arg-type]
            self.pending = None
        return event


# A fast-path copy not yet built into an Event: (line, its decoded row, ts,
# model, speed, input, output, cache read, cache write, 1h write, thinking, rates entry).
_Pending = tuple["_CCFastLine", bytes, float, str, "str | None", int, int, int, int, int, int,
                 "tuple[Rates | None, IntRates | None, int]"]


def _materialize(p: _Pending) -> Event:
    """The Event of a pending copy: exactly what ``ClaudeCode._read`` builds from the same line."""
    row, line, ts, model, speed, plain, out, read, written, w1h, thinking, (rates, exact, _limit) = p
    usage = Usage(input_tokens=plain, output_tokens=out, cache_read_tokens=read, cache_write_tokens=written,
                  reasoning_tokens=thinking, cache_write_1h_tokens=w1h)
    cost, status = _cost_from(rates, exact, usage)
    return _call_event(row, row.message.id, line, ts, model, usage, cost, status, speed)  # type: ignore[union-attr]


def _cost_from(rates: Rates | None, exact: IntRates | None, usage: Usage) -> tuple[str | None, str]:
    """(cost_usd, cost_status) of a call from its cached rates: what ``priced`` gives without a reported cost."""
    if rates is None:
        return None, "unknown"
    try:
        # core.money: the one integer money arithmetic (Decimal for rates it cannot mirror).
        text = exact.cost_text(usage) if exact is not None else format_usd(rates.cost(usage))
    except (ValueError, ArithmeticError):  # as price(): pricing never breaks the monitor
        return None, "unknown"
    return text, rates.status


def _lazy_limit(exact: IntRates | None) -> int:
    """The largest token total whose cost is surely within the line format's bounds with these rates.

    A copy at or below it gives an Event that ``check_event`` accepts (tokens
    below ``MAX_TOKENS``, cost below ``MAX_COST_USD``), whatever the split of
    the total between buckets: such a copy can be priced later, only if it is
    the one handed out. -1: price every copy now (per-request fees, rates
    ``core.money`` cannot compile, or rates finer than ``_LAZY_MAX_K``).
    """
    limit = MAX_TOKENS - 1
    if exact is None:
        return -1
    for r in (exact, *(tier for _threshold, tier in exact.tiers)):
        if r.per_request or r.k > _LAZY_MAX_K:
            return -1
        top = max(r.inp, r.out, r.read, r.write, r.write_1h, r.reasoning or 0)
        if top:  # cost = n * 10**-(k+6) USD with n <= top * total, below 10**9 USD
            limit = min(limit, (MAX_COST_USD * 10 ** (r.k + 6) - 1) // top)
    return limit


# Rates with at most 12 decimals per million tokens: a cost below MAX_COST_USD
# then has n < 10**27 and at most 18 places, which core.money writes with its
# integer path (and within MAX_COST_DECIMALS). Real rates have 2 to 4.
_LAZY_MAX_K: Final = 12


class ClaudeCode:
    """``~/.claude/projects/<project>/<session>.jsonl`` (and ``<session>/subagents/agent-*.jsonl``).

    Only ``assistant`` lines with ``message.usage`` cost anything;
    ``<synthetic>`` messages are Claude Code's own placeholders, not API calls.

    How Claude Code 2.x writes a response (checked against real logs and the
    fixtures of ccusage ``apps/ccusage/src/adapter/claude/data-loader.ts``):

    - one line per content block while it streams (thinking, text, each
      tool_use), each repeating the message's usage, ``output_tokens``
      growing. The most complete copy (the largest token total, as ccusage
      keeps) is the response's cost: the FIRST copy under-counts output.
    - the response's identity is ``message.id`` (Anthropic's ``msg_...``,
      unique per response). ``requestId`` is missing on newer versions and
      behind gateways, so it is not part of the id. A sidechain (a sub-agent,
      ``/btw``) re-writes a parent message with the same ``message.id`` under
      a new ``requestId`` and a larger context: the event id stays
      ``message.id``, so the message counts once, as the parent (the copy seen
      first; in sorted order ``<session>.jsonl`` comes before
      ``<session>/subagents/``). Only copies under the same ``requestId`` as
      the first one are candidates for "more complete". The copies not kept
    are counted in ``copies``, which the callers add to the duplicates.
    - ``usage.speed: "fast"`` (Opus fast mode) goes to ``Event.speed`` and to
      the pricer's ``speed=``.

    Holding, exact and bounded: a response is held (its best copy so far)
    until it is complete, then handed out once. It is complete when the
    next response of the same thread starts (a thread makes one API call at
    a time; a thread is the main conversation or one sub-agent, keyed by
    ``isSidechain`` and ``agentId``; sub-agent lines without an ``agentId``
    interleave and wait for the end), or at ``flush()``: the end of the
    input (``report`` calls it at the end of each file; the live engine once
    a file has been quiet for a moment). At most ``HOLD`` responses are held
    (the oldest is released first), so memory stays bounded. A larger copy
    that arrives after its response was released (only possible live, after
    a quiet spell mid-response) cannot be re-counted: it is counted under the
    reason ``claude-code skipped: larger copy after release``, never silently.

    Lines counted but not turned into calls are returned as ``Rejected``
    with a reason starting ``claude-code skipped:`` (a line without a
    ``type``; a ``progress`` line carrying a sub-agent's usage, which its own
    transcript counts; an assistant line without usage), so they show in
    ``rejected_reasons`` and are never dropped without a trace. A line whose
    ``usage`` holds a key this reader does not know (``KNOWN_USAGE_KEYS``),
    or compaction ``iterations``, is accepted and priced from the known
    buckets, and counted as a note naming the key (``take_notes``; shown as
    ``Snapshot.notes``): it was counted, only not read whole.

    Speed (a report reads millions of these lines): a typed decoder builds the
    Usage directly, timestamps of Claude Code's one spelling are parsed by
    hand, and rates are looked up once per (model, UTC day, speed) and
    applied in integers. Every shortcut has a test showing it equals the
    generic path (``normalize_usage``, ``parse_ts``, ``price``); anything
    unusual takes that generic path.
    """

    name = "claude-code"
    HOLD = 64  # responses held at once (several threads of one file interleave at most a few)
    RELEASED = 256  # ids remembered after release, to recognise their late copies

    def __init__(self) -> None:
        # One parser per file. Held responses, oldest first, by event id.
        self._held: dict[str, _Held] = {}
        # thread -> the id of its response in flight.
        self._threads: dict[tuple[bool, str | None], str] = {}
        # id -> (the event handed out, its requestId, its token total), newest last.
        self._released: dict[str, tuple[Event, str | None, int]] = {}
        # (model, UTC day, speed) -> rates, their integer form and _lazy_limit, for rates that change at most daily.
        self._rates: dict[tuple[str, int, str | None], tuple[Rates | None, IntRates | None, int]] = {}
        # Lines that were another copy of a held response (counted as duplicates by the caller).
        self.copies = 0
        # Lines accepted but not read whole, by note reason (the caller takes them: take_notes).
        self.notes: dict[str, int] = {}
        self._unread: list[str] = []  # the notes of the line just read, kept once it is accepted
        # What the line just read said beyond its event: its requestId and thread.
        self._request: str | None = None
        self._thread: tuple[bool, str | None] | None = (False, None)

    # -- holding ------------------------------------------------------------------

    # Build and price only the copy of a response that is handed out (see _lazy); False: every copy at once.
    LAZY = True
    # Every event handed out meets check_event: checked before it is held, or
    # held lazily only when its figures are within bounds (scan skips bounded()).
    CHECKED: Final = True

    def parse(self, line: bytes) -> ParseResult:
        """The responses this line completes (often none); a Rejected for a bad or skipped line."""
        if self.LAZY:
            # One typed decode answers the usual line, an assistant copy or not: the
            # substring tests below cost 2.6k instructions each on an assistant line
            # (two of them) and 4k on another (valgrind, 1 KB lines), more than the typed
            # decode costs over the one-field one on a prompt or tool result (3.5k): the
            # reader 37.9k -> 34.1k instructions a line on the bench's logs.
            try:
                row = _cc_fast_decoder.decode(line)
            except (msgspec.ValidationError, msgspec.DecodeError):
                row = None  # an unusual shape, or not JSON: answered below, as the plain path answers it
            if row is not None:
                if row.type != "assistant":
                    return _costless(row.type, line)  # what the one-field decode below would say
                lazy = self._lazy(row, line)
                if lazy is not None:
                    return lazy
        if b"assistant" not in line:
            # Not an assistant line unless "assistant" is spelt with escapes: the one-field
            # decode validates the JSON and settles that. Here rather than in _read (a third
            # of the lines: prompts, tool results): 2.7 -> 2.0 us a line without its call.
            try:
                kind = _cc_kind_decoder.decode(line).type
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                return Rejected("bad claude-code line", str(exc)[:200])
            if kind != "assistant":
                return _costless(kind, line)
            # "assistant" spelt with escapes: _read decides, as for any other line.
        result = self._read(line)
        if type(result) is not list or not result:
            self._unread = []
            return result
        # The line format's bounds are checked before holding, so a held copy
        # can never be one that FileFormat would have rejected.
        if (why := check_event(result[0])) is not None:
            self._unread = []
            return why
        if self._unread:  # only the generic path fills it; the line is accepted, so its notes count
            notes = self.notes
            for reason in self._unread:
                notes[reason] = notes.get(reason, 0) + 1
            self._unread = []
        ev = result[0]
        return self._offer(ev.id, self._request, self._thread,
                           usage_total(ev.usage) if ev.usage is not None else 0, ev, None)

    def _lazy(self, row: _CCFastLine, line: bytes) -> ParseResult | None:
        """``parse`` for the usual assistant copy, without building its Event; None: ask ``_read``.

        Args:
            row: the line's typed decode (``_cc_fast_decoder``), of type "assistant".
            line: the line itself (its hash is the id of a response without one).

        Claude Code writes a response once per content block (2 lines on
        average in the benchmark's logs), and only the most complete copy is
        handed out, so an Event was built, priced and checked for copies that
        were then dropped. Here a copy is
        decoded and its figures checked, and the Event is made on release
        (``_Held.take``), from the same values ``_read`` would use. Whatever
        could make ``_read`` answer differently (a reported cost, a shape for
        the generic reader, a bad or out-of-bounds time, a token total whose
        cost could leave the line format's bounds, dated rates) returns None,
        so ``_read`` decides: the results are the same (a test pins it).

        Inlined here, as this runs for every copy (each pinned by that test and
        by the tests of the function it stands for): ``_fast_usage``,
        ``cc_timestamp``'s cached-minute case, ``_event_id``, ``_thread_of`` and
        ``_offer``'s case of a further copy of the held response. Measured on
        the benchmark's logs (87k lines in memory, CPU, contended 2-core
        machine, min of 5): the reader's time per line 8.6 -> 7.7 us (min), 13.1 -> 11.6 (median).
        """
        msg = row.message
        text = row.timestamp
        if msg is None or row.costUSD is not None or text is None:
            return None
        u = msg.usage
        if u is None:
            return None
        plain = u.input_tokens
        if plain is None or u.type is not _UNSET or u.usage is not _UNSET:
            return None
        model = msg.model or "unknown"
        if model == "<synthetic>":
            return []
        # _fast_usage, inlined.
        if u.iterations is not _UNSET and u.iterations:
            return None  # compaction iterations: the generic reader (and its note)
        out = u.output_tokens or 0
        details = u.output_tokens_details
        thinking = (details.thinking_tokens or 0) if details is not None else 0
        if thinking > out:
            return None  # the generic reader names this error
        cc = u.cache_creation
        w5 = w1h = 0
        if cc is not None:
            w5 = cc.ephemeral_5m_input_tokens or 0
            w1h = cc.ephemeral_1h_input_tokens or 0
        written = u.cache_creation_input_tokens
        if written is None:
            written = w5 + w1h
        if w1h > written:
            return None
        # cc_timestamp, inlined for a minute already seen (the usual case): same float.
        base = _MINUTE_US.get(text[:16])
        if (base is not None and (sec := _SECOND_US.get(text[16:19])) is not None
                and (milli := _MILLI_US.get(text[19:])) is not None):
            ts = (base + sec + milli) / 1_000_000
        else:
            try:
                ts = cc_timestamp(text)
            except (ValueError, OverflowError):
                return None
        if not TS_MIN <= ts < TS_MAX:
            return None
        speed = u.speed
        entry = self._rates.get((model, int(ts // 86400), speed))
        if entry is None:
            entry = self._rates_at(model, ts, speed)
        read = u.cache_read_input_tokens or 0
        total = plain + out + read + written
        if total > entry[2]:
            return None
        request = row.requestId
        key = msg.id or request or row.uuid or "cc-" + hashlib.blake2b(line, digest_size=8).hexdigest()  # _event_id
        held = self._held.get(key)
        if held is not None:  # _offer's first case: another copy of the held response
            self.copies += 1
            if request is not None and held.request is not None and request != held.request:
                return []  # a sidechain's re-write of a held message: the parent's copy counts
            if total > held.total:
                held.event = None
                held.pending = (row, line, ts, model, speed, plain, out, read, written, w1h, thinking, entry)
                held.total = total
            return []
        side, agent = row.isSidechain, row.agentId
        thread = None if side and not agent else (bool(side), agent)  # _thread_of
        pending = (row, line, ts, model, speed, plain, out, read, written, w1h, thinking, entry)
        return self._offer(key, request, thread, total, None, pending)

    def take_notes(self) -> dict[str, int]:
        """The notes counted since the last call (reason -> lines), and forget them."""
        notes, self.notes = self.notes, {}
        return notes

    def flush(self) -> list[Event]:
        """Every held response, as it stands: the input ended (or went quiet)."""
        out = [self._release(key) for key in list(self._held)]
        self._threads.clear()
        return out

    @property
    def holding(self) -> int:
        """How many responses are held, waiting for their last copy."""
        return len(self._held)

    def _offer(self, key: str, request: str | None, thread: tuple[bool, str | None] | None, total: int,
               ev: Event | None, pending: _Pending | None) -> ParseResult:
        """Hold a copy (its Event, or its ``pending`` figures) of response ``key``; what it completes."""
        held = self._held.get(key)
        if held is not None:
            self.copies += 1
            if request is not None and held.request is not None and request != held.request:
                return []  # a sidechain's re-write of a held message: the parent's copy counts
            if total > held.total:
                held.event, held.pending, held.total = ev, pending, total
            return []
        done = self._released.get(key)
        if done is not None:
            event, req, counted = done
            if (request is None or req is None or request == req) and total > counted:
                return Rejected(SKIPPED + "larger copy after release",
                                f"message {key}: a copy with {total} tokens after {counted} were counted")
            return [event]  # the same response again (a resumed session's copy): the aggregator's duplicate
        out: list[Event] = []
        if thread is not None:
            previous = self._threads.get(thread)
            if previous is not None and previous in self._held:
                out.append(self._release(previous))  # the thread moved on: its last response is complete
            self._threads[thread] = key
        if len(self._held) >= self.HOLD:
            out.append(self._release(next(iter(self._held))))
        self._held[key] = _Held(ev, request, total, pending)
        return out

    def _release(self, key: str) -> Event:
        held = self._held.pop(key)
        event = held.take()
        released = self._released
        if len(released) >= self.RELEASED:
            del released[next(iter(released))]
        released[key] = (event, held.request, held.total)
        return event

    # -- one line -------------------------------------------------------------------

    def _read(self, line: bytes) -> ParseResult:
        """The line's own event (priced), not held: the fast path, or the generic one for odd shapes.

        ``parse`` answers the lines without "assistant" in their text (a third of them)
        before calling this; any other costless line is answered below as well.
        """
        try:
            row = _cc_fast_decoder.decode(line)
        except msgspec.ValidationError:
            try:
                kind = _cc_kind_decoder.decode(line).type
            except msgspec.ValidationError as exc:  # "type" is not a string
                return Rejected("bad claude-code line", str(exc)[:200])
            if kind != "assistant":
                return _costless(kind, line)  # "assistant" was in its text: the shape of a costless line is no error
            return self._parse_generic(line)  # an unusual shape: the generic reader decides
        except msgspec.DecodeError as exc:
            return Rejected("bad claude-code line", str(exc)[:200])
        if row.type != "assistant":
            return _costless(row.type, line)
        msg = row.message
        if msg is None or msg.usage is None:
            return Rejected(SKIPPED + "assistant line without usage", "message.usage is missing")
        model = msg.model or "unknown"
        if model == "<synthetic>":
            return []
        usage = _fast_usage(msg.usage)
        if usage is None:
            return self._parse_generic(line)
        if row.timestamp is None:
            return Rejected("missing timestamp", "claude-code assistant line without timestamp")
        try:
            ts = cc_timestamp(row.timestamp)
        except (ValueError, OverflowError):
            return Rejected("bad timestamp", f"timestamp {row.timestamp!r}")
        speed = msg.usage.speed
        if row.costUSD is not None:
            cost, status = priced("anthropic", model, usage, ts, route="direct",
                                  reported=Decimal(repr(row.costUSD)), speed=speed)
        else:
            cost, status = self._cost(model, usage, ts, speed)
        self._request, self._thread = row.requestId, _thread_of(row.isSidechain, row.agentId)
        return [_call_event(row, msg.id, line, ts, model, usage, cost, status, speed)]

    def _cost(self, model: str, usage: Usage, ts: float, speed: str | None = None) -> tuple[str | None, str]:
        """What ``priced`` gives for a call without a reported cost, from cached rates."""
        rates, exact, _limit = self._rates_at(model, ts, speed)
        return _cost_from(rates, exact, usage)

    def _rates_at(self, model: str, ts: float, speed: str | None) -> tuple[Rates | None, IntRates | None, int]:
        """The rates of a call at ``ts`` (cached per UTC day when they change at most daily)."""
        cache_key = (model, int(ts // 86400), speed)
        entry = self._rates.get(cache_key)
        if entry is None:
            from flightdeck.core.pricing import default_pricer

            pricer = default_pricer()
            rates = pricer.rates("anthropic", model, ts, route="direct", speed=speed)
            exact = compile_rates(rates) if rates is not None else None
            # Rates with off-peak hours may change within a day: the pricer,
            # which knows the windows, is asked every time, and every copy is
            # priced at once (limit -1). Dated changes (claude-opus-4-6 and
            # claude-sonnet-4-6 have them) fall on UTC midnights: cached per day,
            # and lazy (those two took the eager path for every copy before).
            if rates is None or not rates.date_matters or pricer.rates_hold_all_day("anthropic", model, "direct"):
                entry = (rates, exact, _lazy_limit(exact) if rates is not None else MAX_TOKENS - 1)
                if len(self._rates) >= 4096:
                    self._rates.clear()
                self._rates[cache_key] = entry
            else:
                entry = (rates, exact, -1)
        return entry

    def _parse_generic(self, line: bytes) -> ParseResult:
        """Every line through ``normalize_usage`` and ``price``: what the fast path must equal."""
        try:
            row = _cc_decoder.decode(line)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return Rejected("bad claude-code line", str(exc)[:200])
        msg = row.message
        if row.type != "assistant":
            return _costless(row.type, line)
        if msg is None or msg.usage is None:
            return Rejected(SKIPPED + "assistant line without usage", "message.usage is missing")
        model = msg.model or "unknown"
        if model == "<synthetic>":
            return []
        event = self._event(row, msg, model, line)
        if isinstance(event, Rejected):
            return event
        self._request, self._thread = row.requestId, _thread_of(row.isSidechain, row.agentId)
        return [event]

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
        self._unread = unread_usage(msg.usage) if msg.usage is not None else []
        raw_speed = msg.usage.get("speed") if msg.usage is not None else None
        speed = raw_speed if isinstance(raw_speed, str) else None
        reported = Decimal(repr(row.costUSD)) if row.costUSD is not None else None
        cost, status = priced("anthropic", model, usage, ts, route="direct", reported=reported, speed=speed)
        return _call_event(row, msg.id, line, ts, model, usage, cost, status, speed)


def _call_event(row: _CCLine | _CCFastLine, message_id: str | None, line: bytes, ts: float, model: str,
                usage: Usage, cost: str | None, status: str, speed: str | None) -> Event:
    """The llm_call of one assistant line, the same from the fast and the generic decode."""
    ev = Event(
        v=1,
        ts=ts,
        kind=KIND_LLM_CALL,
        id=_event_id(message_id, row.requestId, row.uuid, line),
        run=row.sessionId or "claude-code",
        agent=CLAUDE_CODE_AGENT,
        provider="anthropic",
        route="direct",
        model=model,
        usage=usage,
        cost_usd=cost,  # None (unknown) is not the field's default (UNSET): always given
        cost_status=status,
    )
    # The optional fields are set only when they hold something: passing their default
    # (None) to Event() was the slow part (this function over the bench's assistant rows,
    # 9 interleaved rounds: 1.62 -> 0.73 us min); the Event is the same, field for field.
    if row.isSidechain:
        ev.name = "subagent"
    if row.isApiErrorMessage:
        ev.error = "api_error"
    if speed is not None:
        ev.speed = speed
    if row.cwd:
        ev.tags = {"project": row.cwd}
    return ev


def _thread_of(sidechain: bool | None, agent_id: str | None) -> tuple[bool, str | None] | None:
    """The conversation a line belongs to; None for sub-agent lines that do not say which sub-agent
    (older versions wrote parallel sub-agents into the main file, interleaved: no order to rely on)."""
    if sidechain and not agent_id:
        return None
    return bool(sidechain), agent_id


def _event_id(message_id: str | None, request_id: str | None, uuid: str | None, line: bytes) -> str:
    """``message.id``; without it the requestId, the line's uuid, or a hash of the line."""
    return message_id or request_id or uuid or "cc-" + hashlib.blake2b(line, digest_size=8).hexdigest()


def _costless(kind: str | None, line: bytes) -> ParseResult:
    """A line that is not an assistant response: nothing, or a counted skip when it looks like usage."""
    if kind is None:
        return Rejected(SKIPPED + "line without type", "a claude-code line without a type")
    if kind == "progress" and b'"usage"' in line:
        # A sub-agent's streaming echo (agent_progress): its own transcript
        # under subagents/ counts the call, so counting it here would double it.
        return Rejected(SKIPPED + "progress line with usage", "a sub-agent's echo; its transcript counts it")
    return []
