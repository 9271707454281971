"""The Recorder: what an agent holds to record its model calls and obey its monitor.

A complete streamed call::

    from flightdeck import Recorder, Paused

    rec = Recorder("run.jsonl", run="r-42", agent="researcher",
                   downgrades={"claude-sonnet-4-5": "claude-haiku-4-5"},
                   rules="rules.toml")                 # optional guardrails, enforced in-process
    model = rec.model("claude-sonnet-4-5")             # after any downgrade the monitor asked for
    with rec.call(provider="anthropic", model=model, name="reflect", step=7, stream=True) as call:
        messages = build_prompt(memory.lookup(task))    # "pre": counted until sent()
        call.set_prompt(messages)                      # prompt_hash (a hash, never the text)
        call.sent()                                    # pre ends, ttft starts
        with client.messages.stream(model=model, messages=messages, max_tokens=1024) as stream:
            for i, text in enumerate(stream.text_stream):
                if i == 0:
                    call.first_token()                  # ttft ends, gen starts
            final = stream.get_final_message()
        call.received()                                # gen ends, post starts
        call.set_usage(final.usage)                    # the SDK's own usage object, as is
        memory.write(final.content)                    # "post": tools, parsing, memory writes
    # the llm_call event is written here; an exception inside is recorded and re-raised
    rec.close()

``async with rec.call(...)`` works the same (waiting for a resume without
blocking the event loop). ``Recorder(socket="/run/user/1000/flightdeck.sock")``
streams to a monitor (``flightdeck tail --socket``) instead of a file.

Control: before a call the recorder checks its control channel (the
``.control`` sidecar beside its file: one ``os.stat`` when nothing changed,
at most once per ``poll_interval``; or the commands its socket received). ``pause`` makes entering ``rec.call``
wait until ``resume`` (``on_pause="raise"`` raises ``Paused`` instead;
``pause_timeout=S`` raises ``Paused`` after S seconds of waiting).
``downgrade`` steps every model one rung down ``downgrades`` (a chain a -> b
-> c is a ladder), or applies the mapping the command carries (as one step,
from the models in use before it, at most 1,000 of them); ``restore``
goes back. Each applied command is answered with a ``signal_ack`` event
carrying the new state; one that cannot be applied is acknowledged with a
``message``. Commands with a ``target`` naming another run or agent are
ignored, and commands this agent already acknowledged in its file (before a
restart) are not applied again.

Never blocks or crashes the agent: write errors and socket drops are counted,
warned about once on stderr, and reported in the ``dropped`` field of the
next event that is delivered; a usage payload that cannot be read gives an
event with the tokens that could be read and a ``message`` saying what was
wrong. Errors on the control and sink paths (an unreadable or odd sidecar, a
vanished folder) are counted in ``rec.faults`` and warned about once, never
raised. After ``os.fork()`` the child gets fresh ids and its own socket
sender (``recorder.forks``). A pause and a resume each print one line on
stderr saying who asked and how to resume.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import mmap
import os
import shlex
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import SimpleNamespace, TracebackType
from typing import Any, Final

import msgspec

from flightdeck.core.control import SidecarReader, command_problem, sidecar_path
from flightdeck.core.events import (
    FORMAT_VERSION,
    KIND_ALERT,
    KIND_LLM_CALL,
    KIND_RUN_END,
    KIND_RUN_START,
    KIND_SIGNAL_ACK,
    MAX_MILLIS,
    MAX_TOKENS,
    TS_MAX,
    TS_MIN,
    Command,
    Event,
    IdSource,
    Latency,
    Rejected,
    Usage,
    check_event,
    decode_line,
    encode_event,
)
from flightdeck.core.fsopen import open_regular
from flightdeck.core.rules import Firing, RuleEngine, RuleSet
from flightdeck.core.sanitize import clean
from flightdeck.recorder import forks
from flightdeck.recorder.safety import Faults, describe_exception, say
from flightdeck.recorder.sinks import FileSink, Sink, SocketSink, warn_once

__all__ = ["Call", "Paused", "Recorder", "Stats", "ms_between", "stage_latency"]

_LOCAL_PROVIDERS = frozenset({"ollama", "lmstudio", "llamacpp", "llama.cpp", "vllm", "local"})
_PROXY_PROVIDERS = frozenset({"openrouter", "litellm"})
# Unacknowledged commands older than this when the recorder starts are history,
# not instructions: a fresh agent should not obey last week's pause.
_STALE_COMMAND_S = 300.0
_FOLD_EVERY = 64  # calls folded into rec.stats()'s aggregator at a time (Recorder._fold)


class Paused(RuntimeError):
    """Raised on entering ``rec.call`` while paused, with ``on_pause="raise"`` or after ``pause_timeout``."""


@dataclass(frozen=True, slots=True)
class Stats:
    """``rec.stats(window)``: the monitor's rolling figures, for the agent's own use.

    ``figures`` is the full ``WindowFigures`` (from the monitor's aggregation
    code); the attributes here are the ones an agent usually decides on.
    """

    seconds: float
    calls: int
    errors: int
    spend_usd: Decimal
    p90_total_ms: float | None
    p90_ttft_ms: float | None
    cache_hit_rate: float | None
    mean_prompt_tokens: float | None
    figures: Any = None


def prompt_hash(messages: Any) -> str:
    """blake2b (16 bytes, hex) of the canonical JSON of ``messages`` (sorted keys).

    A hash, never the text: repeated hashes reveal loops without logging prompts.
    """
    try:
        data = msgspec.json.encode(messages, order="sorted")
    except Exception:  # not JSON-able (or its encoder hook raised): fall back on repr
        try:
            data = repr(messages).encode("utf-8", "replace")
        except Exception:  # a __repr__ that raises: the type is all that is left to hash
            data = type(messages).__qualname__.encode()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _settles_drops(sink: Any) -> bool:
    """Whether ``sink.write`` takes the ``drops`` its line carries (and settles them on delivery)."""
    try:
        params = inspect.signature(sink.write).parameters
    except (TypeError, ValueError):
        return False
    return "drops" in params or any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params.values())


def _default_route(provider: str) -> str:
    p = provider.lower()
    if p in _LOCAL_PROVIDERS:
        return "local"
    if p in _PROXY_PROVIDERS:
        return "proxy"
    return "direct"


_ROUTE_OF: dict[str, str] = {}  # provider name -> _default_route, looked up once per name


def _route_for(provider: str) -> str:
    """``_default_route(provider)``, cached (a call names its provider every time)."""
    route = _ROUTE_OF.get(provider)
    if route is None:
        route = _default_route(provider)
        if len(_ROUTE_OF) >= 1024:  # a flood of distinct names must not grow it forever
            _ROUTE_OF.clear()
        _ROUTE_OF[provider] = route
    return route


# The normaliser and the pricer are imported on the first call that needs them (``import
# flightdeck.recorder`` stays light) and then kept: an ``import`` statement run on every
# call cost 1-2 us each (timeit, shared 2-core machine), three of them per call.
_NORMALIZE: Any = None
_PRICING: Any = None


def _normalizer() -> Any:
    """``flightdeck.core.normalize``, imported once. May raise ImportError (callers catch it)."""
    global _NORMALIZE, _QUICK, _UsageReading, _CANONICAL_OF
    if _NORMALIZE is None:
        import flightdeck.core.normalize as normalize

        _UsageReading = normalize.UsageReading
        _QUICK = normalize.quick_reading
        _CANONICAL_OF = normalize.CANONICAL_SEEN
        _NORMALIZE = normalize
    return _NORMALIZE


# ``Call.set_usage``'s quick reading, set with the normaliser, and the normaliser's own cache of
# canonical provider names (``read_call_usage`` fills it on a provider's first reading).
_QUICK: Any = None
_UsageReading: Any = None
_CANONICAL_OF: dict[str, str] = {}


def _pricer() -> Any:
    """``flightdeck.core.pricing``, imported once. May raise ImportError (callers catch it)."""
    global _PRICING
    if _PRICING is None:
        import flightdeck.core.pricing as pricing

        _PRICING = pricing
    return _PRICING


def _read_usage(provider: str, raw: Any, api: str | None) -> Any:
    """The normaliser's ``UsageReading`` (usage None when none was seen). Never raises."""
    try:
        normalize = _NORMALIZE or _normalizer()
    except Exception as exc:  # the package is no longer importable (a dropped privilege, a removed install)
        return SimpleNamespace(usage=raw if isinstance(raw, Usage) else None, notes=(), service_tier=None,
                               speed=None, problems=(f"usage not read: {type(exc).__name__}: {exc}",))
    if isinstance(raw, Usage):
        return normalize.UsageReading(raw)
    try:
        return normalize.read_call_usage(provider, raw, api)
    except Exception as exc:  # read_call_usage never raises; a bug there must not reach the agent
        return normalize.UsageReading(Usage(), (f"usage not read: {type(exc).__name__}: {exc}",))


def _upstream(provider: str, raw: Any) -> str | None:
    """The provider a LiteLLM call was routed to (``custom_llm_provider``), as the log reader says."""
    if raw is None or provider.lower() not in ("litellm", "litellm_proxy"):
        return None
    try:
        from flightdeck.core.normalize.litellm import payload_provider

        return payload_provider(raw)
    except Exception:  # attribution is best effort: keep the name the agent gave
        return None


# Per provider name: whether its payloads can carry a reported cost or a routed-to provider
# (OpenRouter, LiteLLM). Most calls name a provider that never does: both readers are skipped.
_PROXIED: dict[str, bool] = {}


def _proxied(provider: str) -> bool:
    known = _PROXIED.get(provider)
    if known is None:
        try:
            known = (_NORMALIZE or _normalizer()).canonical_provider(provider) in ("openrouter", "litellm")
        except Exception:  # unreadable name or no normaliser: ask the readers, which never raise
            known = True
        if len(_PROXIED) >= 1024:  # a flood of distinct names must not grow it forever
            _PROXIED.clear()
        _PROXIED[provider] = known
    return known


def _reported_cost(provider: str, raw: Any) -> Decimal | None:
    try:
        return (_NORMALIZE or _normalizer()).reported_cost(provider, raw)
    except Exception:
        return None


def _price(provider: str, model: str, usage: Usage, when: float, route: str,
           reported: Decimal | None, service_tier: str | None = None,
           speed: str | None = None) -> tuple[str | None, str, str | None, str | None]:
    """(cost string or None, cost_status, problem, price_source). Never raises.

    ``pricing.price_text``: the integer rates' digits, no Decimal arithmetic per call.
    """
    try:
        pricing = _PRICING or _pricer()
    except ImportError as exc:  # pragma: no cover
        return None, "unknown", f"pricing unavailable: {exc}", None
    try:
        usd, status, source = pricing.default_pricer().price_text(
            provider, model, usage, when, route=route, reported_usd=reported, service_tier=service_tier, speed=speed)
        return usd, status, None, source or None
    except Exception as exc:
        return None, "unknown", f"not priced: {exc}", None


_UNPRICED: Final = object()  # _record_call: no quick price, ask _price


# msgspec's Struct.__copy__ (a shallow copy in C; not in the type stubs).
_copy_event: Callable[[Event], Event] = getattr(Event, "__copy__")  # noqa: B009


def _call_template(run: str, agent: str | None) -> Event:
    """The fields every llm_call of a recorder shares; ``_record_call`` copies it and fills the rest."""
    return Event(v=FORMAT_VERSION, ts=0.0, kind=KIND_LLM_CALL, id="", run=run, agent=agent)


# A token count below 2**49 (< MAX_TOKENS, 10**15) ORed with five others stays below it.
_TOKENS_SHIFT: Final = 49
assert 1 << _TOKENS_SHIFT < MAX_TOKENS


def _surely_bounded(ts: float, u: Usage, cost: str | None, lat: Latency) -> bool:
    """A quick accept of ``check_event``'s bounds for the fields of a recorder's llm_call.

    True only when ``check_event`` would surely pass: a float ``ts`` in range,
    every token count a non-negative int below 2**49 (one OR of the six: a
    negative one makes it negative), a cost as pricing writes it (plain
    digits, so at most 9 before the point when it is at most 16 long), every
    stage in ``[0, MAX_MILLIS)``. False leaves the answer to ``check_event``
    (a provider's absurd usage, a foreign Usage of floats, a broken clock).
    0.5 us where check_event takes 1.1-1.6 (timeit, shared 2-core machine);
    pinned to check_event in tests/recorder/test_recorder_speed.py.

    Args:
        ts, u, cost, lat: the event's ``ts``, ``usage``, ``cost_usd``, ``latency_ms``.
    """
    if type(ts) is not float or not TS_MIN <= ts < TS_MAX:
        return False
    try:
        if (u.input_tokens | u.output_tokens | u.cache_read_tokens | u.cache_write_tokens
                | u.reasoning_tokens | u.cache_write_1h_tokens) >> _TOKENS_SHIFT:
            return False
    except TypeError:  # a count that is not an int
        return False
    if cost is not None and (type(cost) is not str or len(cost) > 16):
        return False
    for ms in (lat.pre, lat.ttft, lat.gen, lat.post, lat.total):
        if ms is not None and not (type(ms) is float and 0.0 <= ms < MAX_MILLIS):
            return False
    return True


class Call:
    """One model call in progress; the ``with`` body of ``rec.call(...)``.

    Stage marks (all optional, each may be called once; later calls win):
    ``sent()``, ``first_token()``, ``received()``. Data: ``set_usage(raw)``,
    ``set_prompt(messages)``, ``set_cost(usd)``, ``tag(key, value)``,
    ``set_model(name)`` (when the response names a different model).
    """

    __slots__ = (
        "_cost",
        "_entered",
        "_problems",
        "_prompt_hash",
        "_raw",
        "_reading",
        "_rec",
        "_t0",
        "_t_first",
        "_t_recv",
        "_t_sent",
        "_tags",
        "_usage",
        "api",
        "model",
        "name",
        "provider",
        "route",
        "step",
        "stream",
    )

    def __init__(self, rec: Recorder, provider: str, model: str, name: str | None, step: int | None,
                 stream: bool, route: str | None, api: str | None, tags: Mapping[str, str] | None) -> None:
        self._rec = rec
        self.provider = provider
        self.model = model
        self.name = name
        self.step = step
        self.stream = stream
        self.route = route or _ROUTE_OF.get(provider) or _route_for(provider)
        self.api = api
        self._t0 = 0.0
        self._t_sent: float | None = None
        self._t_first: float | None = None
        self._t_recv: float | None = None
        self._usage: Usage | None = None
        self._raw: Any = None
        self._reading: Any = None  # the normaliser's UsageReading of the last set_usage
        self._problems: list[str] = []
        self._prompt_hash: str | None = None
        self._cost: Decimal | None = None
        self._tags: dict[str, str] | None = dict(tags) if tags else None
        self._entered = False

    # -- stage marks --------------------------------------------------------
    def sent(self) -> None:
        """The request goes out: ends ``pre``."""
        self._t_sent = self._rec._mono()

    def first_token(self) -> None:
        """The first streamed token arrived: ends ``ttft``. Later calls are ignored."""
        if self._t_first is None:
            self._t_first = self._rec._mono()

    def received(self) -> None:
        """The response is complete: ends ``gen``, starts ``post``."""
        self._t_recv = self._rec._mono()

    # -- data -----------------------------------------------------------------
    def set_usage(self, raw: Any, api: str | None = None) -> None:
        """The provider's usage: its usage object, the whole response, a stream's final
        chunk or list of events, or a ``Usage``. Read now; never raises."""
        quick = _QUICK
        if quick is not None:
            # The usual payload (a clean usage dict or SDK object of a provider read before):
            # ``fast.quick_reading`` with no layer between, what ``read_call_usage`` answers first
            # for it. 14.7k -> 10.3k instructions a call (valgrind). Anything else: _read_usage.
            name = _CANONICAL_OF.get(self.provider)
            if name is not None:
                got = quick(name, raw, api or self.api)
                if got is not None:
                    self._reading = _UsageReading(got[0], (), (), got[1], got[2])
                    self._usage = got[0]
                    self._raw = raw
                    self._problems = []
                    return
        reading = _read_usage(self.provider, raw, api or self.api)
        self._reading = reading
        self._usage = reading.usage
        self._raw = raw
        self._problems = [*reading.problems, *reading.notes]

    def set_prompt(self, messages: Any) -> None:
        """Hash the request's messages for ``prompt_hash`` (the text is never stored).

        Pass what identifies the request: if your context grows on every retry of
        the same step, hashing the stable part lets the loop rule see the repeat.
        """
        self._prompt_hash = prompt_hash(messages)

    def set_cost(self, usd: Decimal | str | int) -> None:
        """What the provider or proxy said it charged (``cost_status: reported``)."""
        try:
            cost = Decimal(str(usd))
            if not cost.is_finite() or cost < 0:
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            self._problems.append(f"reported cost {usd!r} is not an amount; ignored")
            return
        self._cost = cost

    def tag(self, key: str, value: Any) -> None:
        """A free-form label on this call's event (shown, filtered on; values are text)."""
        if self._tags is None:
            self._tags = {}
        try:
            self._tags[str(key)] = str(value)
        except Exception as exc:  # a __str__ that raises must not reach the agent
            warn_once("tag-str", f"a tag value could not be turned into text; tag not recorded: "
                      f"{describe_exception(exc)}")

    def set_model(self, model: str) -> None:
        self.model = model

    # -- context manager --------------------------------------------------------
    def __enter__(self) -> Call:
        rec = self._rec
        # _gate_sync's test inline: a file recorder between two sidecar checks, not paused, has
        # nothing to do (one frame fewer per call); any other case runs the gate.
        if rec._sidecar is None or rec._paused or rec._poll_clock() >= rec._next_gate_poll:
            rec._gate_sync()
        self._entered = True  # _start, inlined: entered once per call
        self._t0 = rec._mono()
        return self

    async def __aenter__(self) -> Call:
        rec = self._rec
        # As __enter__: the gate's coroutine is made only when it has something to do.
        if rec._sidecar is None or rec._paused or rec._poll_clock() >= rec._next_gate_poll:
            await rec._gate_async()
        self._start()
        return self

    def _start(self) -> None:
        self._entered = True
        self._t0 = self._rec._mono()

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:  # _finish, inlined: one frame fewer on every call
            self._rec._record_call(self, exc)
        except Exception:  # a bug of ours must not become the agent's exception
            self._rec._faults.note("record", "record-bug",
                                   "internal error while recording a call:\n" + traceback.format_exc())

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._finish(exc)

    def _finish(self, exc: BaseException | None) -> None:
        try:
            self._rec._record_call(self, exc)
        except Exception:  # a bug of ours must not become the agent's exception
            self._rec._faults.note("record", "record-bug",
                                   "internal error while recording a call:\n" + traceback.format_exc())

    def _latency(self, t_end: float) -> Latency:
        """``stage_latency(t0, sent, first, recv, t_end, t0, t_end, stream)``: the with block's stages.

        Its usual case inlined (every mark set, each span within 0 and 11 days):
        8.2k -> 5.6k instructions a call (valgrind); anything else asks
        stage_latency. Pinned to it in tests/recorder/test_recorder_speed.py.
        """
        t0, sent, first, recv = self._t0, self._t_sent, self._t_first, self._t_recv
        if sent is not None and recv is not None and (first is not None or not self.stream):
            a = sent - t0
            c = t_end - recv
            e = t_end - t0
            if self.stream:
                b = first - sent  # type: ignore[operator]
                d = recv - first  # type: ignore[operator]
                if 0.0 < a < 1e6 and 0.0 < b < 1e6 and 0.0 < c < 1e6 and 0.0 < d < 1e6 and 0.0 < e < 1e6:
                    return Latency(pre=int(a * 1e6 + 0.5) / 1000.0, ttft=int(b * 1e6 + 0.5) / 1000.0,
                                   gen=int(d * 1e6 + 0.5) / 1000.0, post=int(c * 1e6 + 0.5) / 1000.0,
                                   total=int(e * 1e6 + 0.5) / 1000.0)
            else:
                d = recv - sent
                if 0.0 < a < 1e6 and 0.0 < c < 1e6 and 0.0 < d < 1e6 and 0.0 < e < 1e6:
                    return Latency(pre=int(a * 1e6 + 0.5) / 1000.0, gen=int(d * 1e6 + 0.5) / 1000.0,
                                   post=int(c * 1e6 + 0.5) / 1000.0, total=int(e * 1e6 + 0.5) / 1000.0)
        return stage_latency(t0, sent, first, recv, t_end, t0, t_end, self.stream)


def stage_latency(pre_from: float | None, sent: float | None, first: float | None, recv: float | None,
                  post_to: float | None, total_from: float | None, total_to: float | None,
                  stream: bool) -> Latency:
    """A call's five stages from its marks (stage-clock seconds), each as ``ms_between`` gives it.

    ``pre`` = pre_from -> sent, ``ttft`` = sent -> first (a streamed call with a
    first token; else None), ``gen`` = first -> recv (or sent -> recv when there
    is no ttft), ``post`` = recv -> post_to, ``total`` = total_from -> total_to.
    A missing mark makes its stages None.

    ``ms_between``'s integer rounding is inlined here for the usual span
    (0 to 11 days; anything else goes through it): the five calls cost 3.2 us
    a call, this 1.4 (timeit, shared 2-core machine). Pinned to
    ``ms_between`` in tests/recorder/test_recorder_speed.py.

    Args:
        pre_from, sent, first, recv, post_to, total_from, total_to: the marks.
        stream: whether the call was streamed (only a streamed call has a ttft).
    """
    pre = ttft = gen = post = total = None
    if pre_from is not None and sent is not None:
        d = sent - pre_from
        pre = int(d * 1e6 + 0.5) / 1000.0 if 0.0 < d < 1e6 else ms_between(pre_from, sent)
    gen_from = sent
    if stream and first is not None:
        gen_from = first
        if sent is not None:
            d = first - sent
            ttft = int(d * 1e6 + 0.5) / 1000.0 if 0.0 < d < 1e6 else ms_between(sent, first)
    if gen_from is not None and recv is not None:
        d = recv - gen_from
        gen = int(d * 1e6 + 0.5) / 1000.0 if 0.0 < d < 1e6 else ms_between(gen_from, recv)
    if recv is not None and post_to is not None:
        d = post_to - recv
        post = int(d * 1e6 + 0.5) / 1000.0 if 0.0 < d < 1e6 else ms_between(recv, post_to)
    if total_from is not None and total_to is not None:
        d = total_to - total_from
        total = int(d * 1e6 + 0.5) / 1000.0 if 0.0 < d < 1e6 else ms_between(total_from, total_to)
    return Latency(pre=pre, ttft=ttft, gen=gen, post=post, total=total)


def ms_between(a: float | None, b: float | None) -> float | None:
    """Milliseconds from ``a`` to ``b`` (seconds) to the microsecond, never negative; None if either is missing.

    The usual span (0 to 11 days) is rounded in integers: ``round(x, 3)``
    makes a correctly rounded decimal conversion, and five of them cost a
    call about 2 us (timeit, shared 2-core machine). Both give the double
    nearest to a whole number of microseconds; they can differ by that one
    microsecond only on an exact half (pinned in the tests).
    """
    if a is None or b is None:
        return None
    d = b - a
    if 0.0 < d < 1e6:
        return int(d * 1e6 + 0.5) / 1000.0
    return round(max(0.0, d * 1000.0), 3)  # NaN, infinities, 0 and below: as before


class Recorder:
    """Records an agent's model calls and obeys its monitor. See the module docstring.

    Parameters beyond SPEC section 4:
      ``rules``: a rules file path, a ``RuleSet`` or a dict (see ``core.rules``);
      checked on every call inside the agent, so limits hold with no monitor.
      ``on_pause``: ``"wait"`` (default) or ``"raise"`` (raise ``Paused``).
      ``pause_timeout``: seconds to wait while paused before raising ``Paused``.
      ``on_token_spike(firing)``: called when a token_spike rule fires (truncate context).
      ``on_alert(firing)``: called on every rule firing.
      ``route``: default route for every call (else guessed from the provider).
      ``stats``: keep rolling figures for ``rec.stats()`` (default True).
      ``clock`` / ``monotonic``: wall and stage clocks (tests inject them).
      ``poll_interval``: seconds between control checks while paused, and the
      least time between two sidecar checks on entering calls (``_gate_poll``).
      ``otel``: True to also emit each call on the global OpenTelemetry tracer and
      meter providers (``recorder.otel_emit``; needs ``flightdeck[otel]``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        run: str | None = None,
        agent: str | None = None,
        socket: str | os.PathLike[str] | None = None,
        downgrades: Mapping[str, str] | None = None,
        rules: Any = None,
        on_pause: str = "wait",
        pause_timeout: float | None = None,
        on_token_spike: Callable[[Firing], None] | None = None,
        on_alert: Callable[[Firing], None] | None = None,
        route: str | None = None,
        stats: bool = True,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.perf_counter,
        poll_interval: float = 0.05,
        sink: Sink | None = None,
        otel: Any = False,
    ) -> None:
        if on_pause not in ("wait", "raise"):
            raise ValueError(f"on_pause must be 'wait' or 'raise', not {on_pause!r}")
        if (path is None) == (socket is None) and sink is None:
            raise ValueError("Recorder needs exactly one of a file path or socket=PATH")
        self.run = run or f"r-{os.urandom(4).hex()}"
        self.agent = agent
        self.path = Path(path) if path is not None else None
        self.socket_path = str(socket) if socket is not None else None
        self.on_pause = on_pause
        self.pause_timeout = pause_timeout
        self.on_token_spike = on_token_spike
        self.on_alert = on_alert
        self.route = route
        self.poll_interval = poll_interval
        self._clock = clock
        self._mono = monotonic
        self._lock = threading.RLock()
        self._ids = IdSource()
        self._ladder: dict[str, str] = dict(downgrades or {})
        self._asked: dict[str, None] = {}  # models asked for, in order (an ordered set)
        self._using: dict[str, str] = {}  # asked-for -> now-used, only where they differ
        self._paused = False
        self._pause_reason: str | None = None
        self._seen: set[str] = set()
        self._closed = False
        self._closing = False
        self.events_written = 0
        self._faults = Faults()
        self._paused_at: float | None = None
        self.alerts: list[Firing] = []  # every firing of the in-process rules, newest last
        self.rules = RuleEngine(RuleSet.coerce(rules), clock=clock)
        self._agg = self._make_aggregator(clock) if stats else None
        self._agg_pending: list[Event] = []  # calls written, not yet folded into _agg (see _fold)
        self._quotes: dict[tuple[str, str, str, str | None, str | None], Any] = {}  # TextQuotes (_record_call)
        self._otel = None
        if otel:  # imported only when asked for; OtelMissing names the extra to install
            from flightdeck.recorder.otel_emit import OtelEmitter

            self._otel = otel if isinstance(otel, OtelEmitter) else OtelEmitter()
        if sink is not None:
            self._sink: Sink = sink
        elif self.socket_path is not None:
            # Commands are applied (and acknowledged) as soon as they arrive, from the
            # sink's thread, so an idle agent still answers; calls check again anyway.
            self._sink = SocketSink(self.socket_path, on_command=self._on_socket_command)
        else:
            assert self.path is not None
            self._sink = FileSink(self.path)
        self._protocol_of: tuple[Any, bool] = (None, False)  # (sink, whether its write takes drops)
        self._call_template = _call_template(self.run, self.agent)  # copied for each llm_call (_record_call)
        forks.track(self)
        self._sidecar: SidecarReader | None = None
        # The gate's sidecar check is throttled (``_gate_poll``); a clock of its own so tests can step it.
        self._poll_clock: Callable[[], float] = time.monotonic
        self._next_gate_poll = 0.0
        replay: list[Command] = []
        if self.path is not None:
            self._sidecar, replay = self._open_sidecar(self.path)
        self._write(self._event(KIND_RUN_START))
        with self._lock:
            for cmd in replay:  # commands written while the agent was down, not yet acknowledged
                self._apply(cmd)

    # -- public surface ---------------------------------------------------------
    def call(self, *, provider: str, model: str, name: str | None = None, stream: bool = False,
             step: int | None = None, route: str | None = None, api: str | None = None,
             tags: Mapping[str, str] | None = None) -> Call:
        """A context manager (``with`` or ``async with``) around one model call."""
        return Call(self, provider, model, name, step, stream, route or self.route, api, tags)

    def instrument(self, client: Any, *, provider: str | None = None, route: str | None = None) -> Any:
        """Record every call ``client`` (an OpenAI or Anthropic SDK client) makes; returns ``client``.

        See ``flightdeck.recorder.instrument``. Args: ``provider``/``route`` override
        what is inferred from the client's ``base_url``.
        """
        from flightdeck.recorder.instrument import instrument

        return instrument(self, client, provider=provider, route=route)

    def step(self, name: str, number: int | None = None) -> Any:
        """A ``with`` / ``async with`` block naming an agent step; times ``pre`` and ``post``
        of the instrumented calls inside (see ``flightdeck.recorder.steps``).

        Args: ``name`` (the events' ``name``), ``number`` (their ``step``, the loop's iteration).
        """
        from flightdeck.recorder.steps import Step

        return Step(self, name, number)

    def record(self, *, provider: str, model: str, usage: Any = None, started: Any = None,
               first_token: Any = None, ended: Any = None, name: str | None = None,
               step: int | None = None, stream: bool | None = None, route: str | None = None,
               api: str | None = None, cost_usd: Any = None, error: BaseException | str | None = None,
               prompt: Any = None, tags: Mapping[str, Any] | None = None) -> None:
        """Write a call timed elsewhere (epoch or monotonic seconds); never raises.

        Arguments as ``flightdeck.recorder.instrument.record.record``.
        """
        from flightdeck.recorder.instrument.record import record

        record(self, provider=provider, model=model, usage=usage, started=started,
               first_token=first_token, ended=ended, name=name, step=step, stream=stream,
               route=route, api=api, cost_usd=cost_usd, error=error, prompt=prompt, tags=tags)

    def model(self, name: str) -> str:
        """The model to use now for ``name``: ``name`` unless a downgrade is in force.

        Checks the control channel first (one stat), so a downgrade applies to
        the very next call.
        """
        self.poll()
        if name not in self._asked:
            with self._lock:
                self._asked[name] = None
        return self._using.get(name, name)

    @property
    def paused(self) -> bool:
        """True while a pause is in force (checks the control channel first)."""
        self.poll()
        return self._paused

    @property
    def state(self) -> dict[str, Any]:
        """What a signal_ack reports: ``{"paused": bool, "models": {asked-for: now-used}}``."""
        with self._lock:
            models = {m: self._using.get(m, m) for m in self._known_models()}
            return {"paused": self._paused, "models": models}

    @property
    def dropped(self) -> int:
        """Telemetry lines lost so far (write errors, socket queue full)."""
        return int(getattr(self._sink, "total_dropped", 0))

    @property
    def faults(self) -> dict[str, int]:
        """Errors met and survived so far, by path: ``control`` (the sidecar or socket
        commands), ``sink`` (opening or writing the telemetry file, a failing sink),
        ``record`` (a bug of ours while recording a call). Kinds with none are left
        out. Each kind is warned about once; the lines lost are in ``dropped``."""
        counts = dict(self._faults.counts)
        sink_faults = getattr(self._sink, "faults", 0)
        if isinstance(sink_faults, int) and sink_faults:
            counts["sink"] = counts.get("sink", 0) + sink_faults
        return counts

    def poll(self) -> list[Command]:
        """Read and apply pending control commands now; returns those applied.

        Called before every call; call it yourself when the agent idles long.
        Never raises: an error reading the channel is counted in ``faults``.
        """
        if self._closed:
            return []
        try:
            commands = self._read_commands()
        except Exception as exc:
            self._faults.note("control", "control-read", f"cannot read control commands: {exc!r}")
            return []
        if not commands:
            return []
        applied = []
        with self._lock:
            if self._closed:
                return []
            for cmd in commands:
                try:
                    if self._apply(cmd):
                        applied.append(cmd)
                except Exception:  # a bug of ours must not become the agent's exception
                    self._faults.note("control", "control-apply",
                                      "internal error applying a control command:\n" + traceback.format_exc())
        return applied

    def _read_commands(self) -> list[Command]:
        commands = self._sink.poll_commands()
        side = self._sidecar
        if side is not None:
            commands = commands + side.poll() if commands else side.poll()
            if side.errors:  # a bad line, an unsafe or odd sidecar: say so once, never raise
                for error in side.errors:
                    self._faults.note("control", f"sidecar:{side.path}", f"control channel: {error}")
                side.errors.clear()
        errors = getattr(self._sink, "command_errors", None)
        while errors:
            try:
                error = errors.popleft()
            except IndexError:  # emptied meanwhile
                break
            self._faults.note("control", f"socket-commands:{self.socket_path}", f"control channel: {error}")
        return commands

    def _on_socket_command(self) -> None:
        try:
            self.poll()
        except Exception:
            warn_once("socket-poll", "error applying a control command:\n" + traceback.format_exc())

    def stats(self, window: float = 300) -> Stats:
        """Rolling figures over the last ``window`` seconds of this recorder's calls."""
        if self._agg is None:
            raise RuntimeError("this Recorder was made with stats=False")
        with self._lock:
            self._fold()
            fig = self._agg.window(int(window), now=self._clock())
        stages = fig.stages
        total = stages.get("total")
        ttft = stages.get("ttft")
        return Stats(
            seconds=window,
            calls=fig.calls,
            errors=fig.errors,
            spend_usd=fig.cost_usd,
            p90_total_ms=total.p90 if total else None,
            p90_ttft_ms=ttft.p90 if ttft else None,
            cache_hit_rate=fig.cache_hit_rate,
            mean_prompt_tokens=fig.mean_prompt_tokens,
            figures=fig,
        )

    def pause(self, reason: str | None = None) -> None:
        """Pause this agent from its own code (recorded as a local command with an ack)."""
        self._apply_local("pause", origin="agent", reason=reason)

    def resume(self) -> None:
        self._apply_local("resume", origin="agent")

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until every line so far was delivered (socket: handed to the monitor).

        Args:
          timeout: the most to wait, in seconds.

        Returns whether everything was delivered; never raises. A forked
        worker that leaves with ``os._exit`` (multiprocessing does) should call
        this first, or ``close()``: lines still queued in it are lost with it.
        """
        flush = getattr(self._sink, "flush", None)
        if flush is None:
            return True  # a file sink writes synchronously
        try:
            return bool(flush(timeout))
        except Exception as exc:
            self._faults.note("sink", "flush", f"error while flushing the telemetry sink: {exc!r}")
            return False

    def close(self, timeout: float = 2.0) -> None:
        """Write ``run_end`` and flush (socket: for up to ``timeout`` seconds). Idempotent.

        A socket sink is drained first (for half of ``timeout``), so that
        ``run_end`` finds room in the queue and carries the count of every
        line dropped until then: the monitor learns the final count.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._closed or self._closing:
                return
            self._closing = True
        self.flush(timeout / 2)
        with self._lock:
            self._write(self._event(KIND_RUN_END))
            self._closed = True
        try:
            self._sink.close(max(0.0, deadline - time.monotonic()))
        except Exception:
            warn_once("close", "error while closing the telemetry sink:\n" + traceback.format_exc())

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Recorder:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # -- pause gate ---------------------------------------------------------------
    def _gate_poll(self) -> None:
        """The control check on entering a call: the sidecar at most once per ``poll_interval``.

        An agent making hundreds of calls a second paid one ``os.stat`` per
        call for it (7 % of the recorder's per-call time in a profile). A
        command is still obeyed at the first call entered at least
        ``poll_interval`` seconds (default 50 ms) after the previous check:
        the monitor cannot time its command against the agent's calls anyway,
        so this is as if it were sent that much later. ``rec.poll()``,
        ``rec.paused`` and ``rec.model()`` always look, and a socket's commands
        are applied the moment they arrive (by the sink's thread).
        """
        if self._sidecar is not None:
            now = self._poll_clock()
            if now < self._next_gate_poll:
                return
            self._next_gate_poll = now + self.poll_interval
        self.poll()

    def _gate_sync(self) -> None:
        # _gate_poll's throttle inline: most calls are entered between two sidecar checks.
        if self._sidecar is None or self._poll_clock() >= self._next_gate_poll:
            self._gate_poll()
        if not self._paused:
            return
        deadline = self._gate_deadline()
        while True:
            time.sleep(self.poll_interval)
            self.poll()
            if not self._paused:
                return
            self._check_deadline(deadline)

    async def _gate_async(self) -> None:
        self._gate_poll()
        if not self._paused:
            return
        deadline = self._gate_deadline()
        while True:
            await asyncio.sleep(self.poll_interval)
            self.poll()
            if not self._paused:
                return
            self._check_deadline(deadline)

    def _gate_deadline(self) -> float | None:
        if self.on_pause == "raise":
            raise Paused(self._pause_message())
        if self.pause_timeout is None:
            return None
        return time.monotonic() + self.pause_timeout

    def _check_deadline(self, deadline: float | None) -> None:
        if deadline is not None and time.monotonic() >= deadline:
            raise Paused(f"{self._pause_message()}; gave up after {self.pause_timeout:g} s")

    def _pause_message(self) -> str:
        return "agent paused" + (f": {self._pause_reason}" if self._pause_reason else "")

    # -- control ----------------------------------------------------------------------
    def _open_sidecar(self, path: Path) -> tuple[SidecarReader, list[Command]]:
        """Start reading the sidecar after the commands already handled.

        A restarted agent must not apply a command twice: commands this agent
        already acknowledged in its own file are skipped, and so are stale
        ones (older than 5 minutes) that were never acknowledged.
        """
        side = sidecar_path(path)
        reader = SidecarReader(side)
        try:
            old = reader.poll()
        except Exception:
            old = []
        if not old:
            return reader, []
        acked = self._acked_refs(path, [c.id for c in old])
        horizon = self._clock() - _STALE_COMMAND_S
        for cmd in old:
            if cmd.id in acked or cmd.ts < horizon:
                self._seen.add(cmd.id)
        return reader, [c for c in old if c.id not in self._seen]

    def _acked_refs(self, path: Path, ids: list[str]) -> set[str]:
        """Which of ``ids`` this (run, agent) acknowledged in ``path``: a C-speed byte search."""
        found: set[str] = set()
        try:
            # open_regular: a FIFO planted at the log path must not hang the constructor.
            with open(open_regular(path, os.O_RDONLY), "rb") as f:
                if os.fstat(f.fileno()).st_size == 0:
                    return found
                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                    for cid in ids:
                        needle = b'"ref":"' + cid.encode() + b'"'
                        pos = mm.find(needle)
                        while pos != -1:
                            start = mm.rfind(b"\n", 0, pos) + 1
                            end = mm.find(b"\n", pos)
                            ev = decode_line(mm[start:end if end != -1 else len(mm)])
                            if isinstance(ev, Event) and ev.kind == KIND_SIGNAL_ACK and ev.agent == self.agent:
                                found.add(cid)
                                break
                            pos = mm.find(needle, pos + 1)
        except (OSError, ValueError):
            pass
        return found

    def _apply(self, cmd: Command) -> bool:
        """Apply one command (lock held); ack it. False when ignored (seen, or not ours)."""
        if cmd.id in self._seen or not cmd.applies_to(self.run, self.agent):
            return False
        self._seen.add(cmd.id)
        problem = command_problem(cmd)  # bounded, so one command cannot keep the agent busy
        message = f"not applied: {problem}" if problem else self._change_state(cmd)
        ack = self._event(KIND_SIGNAL_ACK)
        ack.ref, ack.cmd, ack.state = cmd.id, cmd.cmd, self._state_locked()
        ack.message = message
        self._write(ack)
        return message is None

    def _change_state(self, cmd: Command) -> str | None:
        """Change state for ``cmd``; a message when it could not be (fully) applied."""
        if cmd.cmd == "pause":
            if not self._paused:
                self._announce_pause(cmd)
            self._paused = True
            self._pause_reason = cmd.reason or cmd.origin
            return None
        if cmd.cmd == "resume":
            if self._paused:
                self._announce_resume(cmd)
            self._paused = False
            self._pause_reason = None
            return None
        if cmd.cmd == "restore":
            self._using.clear()
            return None
        if cmd.cmd == "downgrade":
            return self._downgrade(cmd.to)
        return f"unknown command {cmd.cmd!r}"

    def _whom(self) -> str:
        if self.agent:
            return f"agent {clean(self.agent)} (run {clean(self.run)})"
        return f"run {clean(self.run)}"

    def _resume_hint(self) -> str:
        if self.socket_path is not None:
            return f"flightdeck resume --socket {shlex.quote(self.socket_path)}"
        return f"flightdeck resume {shlex.quote(str(self.path))}" if self.path is not None else "rec.resume()"

    def _announce_pause(self, cmd: Command) -> None:
        """The one stderr line of a pause: by whom, why, and how to undo it."""
        self._paused_at = time.monotonic()
        why = f": {clean(cmd.reason)}" if cmd.reason else ""
        say(f"{self._whom()} paused by {clean(cmd.origin)}{why}; waiting before its next model call. "
            f"Resume with: {self._resume_hint()}")

    def _announce_resume(self, cmd: Command) -> None:
        since = "" if self._paused_at is None else f" after {time.monotonic() - self._paused_at:.1f} s"
        self._paused_at = None
        say(f"{self._whom()} resumed by {clean(cmd.origin)}{since}")

    def _downgrade(self, to: Mapping[str, str] | None) -> str | None:
        if to:
            # One pass over the models, one over the mapping (linear): the mapping applies
            # to the state before the command, so {a: b, b: c} moves a to b, not on to c.
            # ``old`` may name a model asked for, or one now used after an earlier step.
            using_now: dict[str, list[str]] = {}
            for asked in self._known_models():
                now = self._using.get(asked)
                if now is not None:
                    using_now.setdefault(now, []).append(asked)
            changes: dict[str, str] = {}
            for old, new in to.items():
                changes[old] = new
                for asked in using_now.get(old, ()):
                    changes[asked] = new
            for asked, new in changes.items():
                self._set_using(asked, new)
            return None
        stepped, stuck = [], []
        for asked in sorted(self._known_models()):
            now = self._using.get(asked, asked)
            lower = self._ladder.get(now)
            if lower is None or lower == now:
                stuck.append(asked)
                continue
            self._set_using(asked, lower)
            stepped.append(asked)
        if stepped:
            return None
        if not self._ladder:
            return "no downgrade ladder: pass Recorder(downgrades={...}) or send a mapping"
        return "already at the lowest rung for " + (", ".join(stuck) or "every model")

    def _set_using(self, asked: str, now: str) -> None:
        self._asked.setdefault(asked, None)
        if now == asked:
            self._using.pop(asked, None)
        else:
            self._using[asked] = now

    def _known_models(self) -> set[str]:
        # The ladder's top rungs count as known before the agent first asks for them.
        lower = set(self._ladder.values())
        return set(self._asked) | {m for m in self._ladder if m not in lower}

    def _state_locked(self) -> dict[str, Any]:
        return {"paused": self._paused,
                "models": {m: self._using.get(m, m) for m in sorted(self._known_models())}}

    def _apply_local(self, cmd: str, *, origin: str, reason: str | None = None,
                     to: Mapping[str, str] | None = None) -> None:
        command = Command(v=FORMAT_VERSION, id=f"l-{self._ids()}", ts=self._clock(), cmd=cmd,
                          origin=origin, reason=reason, to=dict(to) if to else None)
        with self._lock:
            self._apply(command)

    # -- events --------------------------------------------------------------------------
    def _event(self, kind: str) -> Event:
        with self._lock:  # IdSource's counter is not atomic; agents may call from many threads
            eid = self._ids()
        return Event(v=FORMAT_VERSION, ts=self._clock(), kind=kind, id=eid, run=self.run, agent=self.agent)

    def _within_bounds(self, ev: Event, why: Rejected) -> None:
        """Bring an event the readers would reject (SPEC bounds, ``core.events.check_event``) back in.

        A provider that reports 10**400 tokens, or a cost or stage beyond the
        line format's bounds, must not cost the whole line: the offending part
        is left out, said in ``message``, counted as a fault, and the line is
        written. (A ``ts`` out of bounds means the machine's clock is wrong:
        the line is written as it is, and the fault says so.)
        """
        self._faults.note("record", f"bounds:{why.reason}", f"an event out of the line format's bounds: {why.detail}")
        parts: list[str] = []
        if why.reason.startswith("bad usage"):
            ev.usage, ev.cost_usd, ev.cost_status = Usage(), None, "unknown"
            parts.append(f"usage out of bounds, not counted ({why.detail})")
        elif why.reason == "bad cost_usd":
            ev.cost_usd, ev.cost_status = None, "unknown"
            parts.append(f"cost out of bounds, not counted ({why.detail})")
        elif why.reason.startswith("bad latency_ms"):
            ev.latency_ms = None
            parts.append(f"stage time out of bounds, not kept ({why.detail})")
        else:
            return
        ev.message = "; ".join([ev.message, *parts] if ev.message else parts)
        if (again := check_event(ev)) is not None:  # another field may be out of bounds too
            self._within_bounds(ev, again)

    def _write(self, ev: Event) -> None:
        """Encode and write one event, reporting earlier drops in it. Never raises.

        The sink settles the count once the line is delivered; if the line is
        lost, the count rides on a later one.
        """
        if (why := check_event(ev)) is not None:
            self._within_bounds(ev, why)
        self._deliver(ev)

    def _deliver(self, ev: Event) -> None:
        """``_write`` once ``ev`` is known to be within the line format's bounds. Never raises."""
        sink = self._sink
        drops = sink.pending_drops()
        if drops:
            ev.dropped = drops
        try:
            line = encode_event(ev)
        except Exception as exc:
            self._faults.note("record", "encode", f"cannot encode an event: {exc!r}")
            lost = getattr(sink, "lost", None)
            if lost is not None:
                lost()  # a line lost is counted like any other, and reported in the next one
            return
        try:
            if self._protocol_of[0] is not sink:  # looked up once per sink, even one swapped in later
                self._protocol_of = (sink, _settles_drops(sink))
            settles = self._protocol_of[1]
            written = sink.write(line, drops) if settles else sink.write(line)
            if written and drops and not settles:
                sink.ack_drops(drops)  # a sink of the older protocol: delivered is as good as written
        except Exception as exc:  # a sink of the user's, or an OSError we did not foresee
            self._faults.note("sink", f"sink-write:{type(exc).__name__}", f"telemetry sink failed: {exc!r}")
            return
        if written:
            self.events_written += 1

    def _record_call(self, call: Call, exc: BaseException | None) -> None:
        if not call._entered:
            return
        t_end = self._mono()
        ts = self._clock()
        provider, raw, reading, usage = call.provider, call._raw, call._reading, call._usage
        problems = list(call._problems)
        if reading is None:
            tier = speed = None
            problems.append("no usage: call.set_usage(...) was never called, so the cost is unknown; "
                            "pass the response's usage (or use rec.instrument)" if exc is None else
                            "no usage: the call failed before its usage arrived, so the cost is unknown")
        else:
            tier, speed = reading.service_tier, reading.speed
        reported = call._cost
        proxied = _PROXIED.get(provider) if raw is not None else False
        if proxied is None:
            proxied = _proxied(provider)
        if proxied:
            if reported is None:
                reported = _reported_cost(provider, raw)
            # As the LiteLLM log reader attributes it; the route stays "proxy".
            provider = _upstream(provider, raw) or provider
        priced = True
        if usage is None:
            usage = Usage()
            # Usage never seen: unknown, never a priced zero (SPEC 5.1). A local model costs 0 anyway.
            priced = reported is not None or call.route == "local"
        if priced:
            # The recorder's usual call (no reported amount, names priced before today): the
            # Pricer's answer for these names, kept here while it holds (``TextQuote``), applied
            # with no layer between: 18.6k -> 14k instructions a call (valgrind). Anything else,
            # or a usage ``cost`` refuses, asks ``_price``, which says why.
            quote: Any = None
            if reported is None and type(ts) is float:
                key = (provider, call.model, call.route, tier, speed)
                quote = self._quotes.get(key)
                if quote is None or not (quote.since <= ts < quote.until and quote.pricer is _PRICING._default):
                    quote = self._quote(key, ts)
            found: Any = _UNPRICED
            if quote is not None:
                try:
                    found = quote.cost(usage)
                except Exception:  # a usage the integer rates refuse: _price says why
                    pass
            if found is not _UNPRICED:
                cost, status, source = found, quote.status, quote.source or None
            else:
                cost, status, problem, source = _price(provider, call.model, usage, ts, call.route, reported,
                                                       tier, speed)
                if problem:
                    problems.append(problem)
        else:
            cost, status, source = None, "unknown", None
        message = None
        if problems:
            message = "; ".join(problems)[:500]
            for p in problems:
                warn_once(f"usage:{call.provider}:{p[:60]}", f"{call.provider}/{call.model}: {p}")
        latency = call._latency(t_end)
        error = None if exc is None else describe_exception(exc)
        tmpl = self._call_template
        if tmpl.run is not self.run or tmpl.agent is not self.agent:
            tmpl = self._call_template = _call_template(self.run, self.agent)
        # A copy of the template with this call's fields set: 0.9 us where the 22-keyword
        # constructor took 2.2 (timeit, shared 2-core machine); the same Event (pinned in
        # tests/recorder/test_recorder_speed.py).
        ev = _copy_event(tmpl)
        ev.ts = ts
        ev.provider = provider
        ev.route = call.route
        ev.model = call.model
        ev.stream = call.stream
        ev.usage = usage
        ev.cost_usd = cost
        ev.cost_status = status
        ev.latency_ms = latency
        if call.name is not None:
            ev.name = call.name
        if call.step is not None:
            ev.step = call.step
        if call._prompt_hash is not None:
            ev.prompt_hash = call._prompt_hash
        if error is not None:
            ev.error = error
        if call._tags is not None:
            ev.tags = call._tags
        if tier is not None:
            ev.service_tier = tier
        if source is not None:
            ev.price_source = source
        if speed is not None:
            ev.speed = speed
        if message is not None:
            ev.message = message
        with self._lock:
            # The id is taken under the lock that writes it (ids stay in file order across threads).
            ev.id = self._ids()
            if not _surely_bounded(ts, usage, cost, latency) and (why := check_event(ev)) is not None:
                self._within_bounds(ev, why)
            self._deliver(ev)
            if self._agg is not None:
                pending = self._agg_pending
                pending.append(ev)
                if len(pending) >= _FOLD_EVERY:
                    self._fold()
            firings = self.rules.observe(ev) if self.rules._states else ()  # no rules: no call
            for firing in firings:
                self._fire(firing)
        for firing in firings:
            self._callbacks(firing)
        if self._otel is not None:
            self._otel.emit_safely(ev)

    def _quote(self, key: tuple[str, str, str, str | None, str | None], ts: float) -> Any:
        """The default Pricer's ``TextQuote`` for ``key`` at ``ts``, kept in ``_quotes``; None if it cannot say."""
        try:
            pricing = _PRICING or _pricer()
            provider, model, route, tier, speed = key
            quote = pricing.default_pricer().text_quote(provider, model, ts, route=route, service_tier=tier,
                                                        speed=speed)
        except Exception:  # _price answers (and says why)
            return None
        quotes = self._quotes
        if len(quotes) >= 256:  # a flood of distinct model names must not grow it forever
            quotes.clear()
        quotes[key] = quote
        return quote

    def _fold(self) -> None:
        """Count the calls not yet in ``rec.stats()``'s aggregator (lock held).

        Folded ``_FOLD_EVERY`` at a time, and whenever ``stats()`` is read, so the
        figures are the same as folding each call at once: the aggregator keys
        everything by the event's own ``ts``, and the recorder's events are never
        ahead of its clock. In batches its code stays warm: folded one call at a
        time, between the rest of each call's work, it took 16-30 us a call;
        batched, 8-16 (bench_recorder's loop, shared 2-core machine, noisy).
        Only the sliding windows are kept (``Aggregator.add_window_calls``):
        ``stats()`` reads nothing else.
        """
        pending, self._agg_pending = self._agg_pending, []
        if not pending or self._agg is None:
            return
        try:
            self._agg.add_window_calls(pending)  # the windows stats() reads, nothing else
        except Exception:
            warn_once("stats", "rolling stats failed:\n" + traceback.format_exc())

    def _fire(self, firing: Firing) -> None:
        """An in-process rule fired (lock held): record an alert, then act on it."""
        self.alerts.append(firing)
        del self.alerts[:-100]
        alert = self._event(KIND_ALERT)
        alert.rule, alert.metric, alert.value = firing.rule, firing.metric, firing.value
        alert.threshold, alert.action, alert.message = firing.threshold, firing.action, firing.message
        self._write(alert)
        if firing.action in ("pause", "downgrade"):
            command = Command(v=FORMAT_VERSION, id=f"l-{self._ids()}", ts=self._clock(),
                              cmd=firing.action, origin=f"rule:{firing.rule}", reason=firing.message,
                              to=firing.to)
            self._apply(command)

    def _callbacks(self, firing: Firing) -> None:
        hooks = [self.on_alert]
        if firing.metric == "token_spike":
            hooks.append(self.on_token_spike)
        for hook in hooks:
            if hook is None:
                continue
            try:
                hook(firing)
            except Exception:
                warn_once(f"hook:{firing.rule}", f"callback for rule {firing.rule!r} raised:\n"
                          + traceback.format_exc())

    def _after_fork(self) -> None:
        """In a forked child (``recorder.forks``): own ids, a fresh lock, a live sender."""
        self._lock = threading.RLock()
        self._ids = IdSource()  # a new random prefix: the parent's ids stay the parent's
        self._faults.after_fork()
        hook = getattr(self._sink, "_after_fork", None)
        if hook is not None:
            hook()

    @staticmethod
    def _make_aggregator(clock: Callable[[], float]) -> Any:
        try:
            from flightdeck.core.aggregate import Aggregator
        except ImportError:
            return None
        return Aggregator(clock=clock, breakdowns=(), recent=0)


__all__ += ["prompt_hash"]
