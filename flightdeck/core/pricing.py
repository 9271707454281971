"""What a model call cost, and where the rate came from.

Layers, first match wins: a local model (cost 0), the amount the provider or
proxy reported, the user's own rates (``core.price_overrides``), flightdeck's
shipped corrections (``price_corrections.toml``, same format, each entry with
its source), the genai-prices database, else "unknown" (tokens still count;
never an error).

Service tiers and speed: a call served at a tier other than the standard one
(``service_tier`` "flex", "priority", "batch"...; Anthropic ``speed`` "fast")
is priced at that tier's own rates. The first layer that prices the model
decides: its entry with that ``service_tier``/``speed`` (overrides,
corrections) or genai-prices' price variant for it (its price context:
``service_tier``, ``processing: batch``, ``speed``); failing that, batch is
half that layer's standard rate where the provider says so
(``BATCH_DISCOUNT``), and any other tier is unknown, never the standard
price silently.

genai-prices is the source of rates but not of arithmetic: its ``calc_price``
costs well over 100 us a call and does not cache misses, which the recorder
(inside the agent) and the monitor (millions of log lines) cannot afford. So
(provider, model) is resolved to a genai ``ModelInfo`` once, the price set in
force is turned into a flat ``Rates`` once per UTC day (and per time-of-day
window for off-peak prices), and each call is then a handful of Decimal
multiplications over our canonical buckets. The result is checked against
``calc_price`` in the tests.
"""

from __future__ import annotations

import bisect
import hashlib
import importlib.util
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import msgspec

from flightdeck.core.events import Usage, format_usd, parse_ts
from flightdeck.core.fsopen import open_regular, private_dir, replace_file
from flightdeck.core.money import IntRates, compile_rates
from flightdeck.core.price_overrides import (
    OverrideError,
    OverrideRate,
    Overrides,
    default_overrides_path,
    shipped_corrections,
    tier_key,
)

if TYPE_CHECKING:
    from genai_prices.types import ModelInfo, ModelPrice, Provider

__all__ = [
    "BATCH_DISCOUNT",
    "CORRECTION_PREFIX",
    "OverrideError",
    "Price",
    "Pricer",
    "Rates",
    "TextQuote",
    "default_pricer",
    "price",
    "price_text",
    "set_default_pricer",
]

ZERO: Final = Decimal(0)
MTOK: Final = 1_000_000
_DAY: Final = 86400
_FAR: Final = 1e15  # seconds: beyond it a float time goes through _epoch's checks
_MAX_CACHED_MODELS: Final = 4096  # a flood of distinct model strings must not grow memory forever

# SPEC / SDK provider names -> genai-prices provider ids, where genai's own
# matching would not find them (or would find the wrong one).
PROVIDER_ALIASES: Final = {
    "bedrock": "aws",
    "aws_bedrock": "aws",
    "amazon": "aws",
    "gemini": "google",
    "vertex": "google",
    "vertex_ai": "google",
    "google_vertex": "google",
    "google-vertex": "google",
    "xai": "x-ai",
    "grok": "x-ai",
    "together_ai": "together",
    "azure_openai": "azure",
    "azure_ai": "azure",
    "moonshot": "moonshotai",
    "fireworks_ai": "fireworks",
    "mistralai": "mistral",
}
# Batch with no batch rate of its own: half the standard rates, where the
# provider publishes exactly that (genai-prices provider id -> the page saying so).
BATCH_DISCOUNT: Final = {
    "anthropic": "Message Batches cost 50% of standard prices: "
                 "https://platform.claude.com/docs/en/build-with-claude/batch-processing",
    "openai": "Batch API: 50% discount: https://platform.openai.com/docs/guides/batch",
    "google": "Gemini Batch Mode: 50% of the standard cost: https://ai.google.dev/gemini-api/docs/batch-mode",
    "aws": "Bedrock batch inference: 50% of on-demand pricing: https://aws.amazon.com/bedrock/pricing/",
    "mistral": "Mistral Batch API: 50% discount: https://docs.mistral.ai/capabilities/batch/",
}
HALF: Final = Decimal("0.5")
# Providers that serve models on your own hardware: no route given means local.
LOCAL_PROVIDERS: Final = frozenset({"ollama", "lmstudio", "llamacpp", "llama.cpp", "local"})

# genai-prices price keys we map onto canonical buckets; anything else a model
# prices (web searches, audio, images, pages) is listed as untracked.
_TRACKED_KEYS: Final = frozenset(
    {
        "input_mtok",
        "output_mtok",
        "cache_read_mtok",
        "cache_write_mtok",
        "cache_write_1h_mtok",
        "output_reasoning_mtok",
        "requests_kcount",
    }
)


@dataclass(frozen=True, slots=True)
class Price:
    usd: Decimal | None  # None when unknown
    status: str  # "priced" | "override" | "reported" | "local" | "unknown" (SPEC cost_status)
    source: str  # human text: where the rate came from


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens for each canonical bucket, fallbacks already applied.

    ``reasoning`` is None when reasoning tokens cost the output rate. ``tiers``
    are ``(threshold, Rates)``, ascending: a call whose whole prompt
    (input + cache_read + cache_write) exceeds a threshold pays that tier's rates
    on every token (the "cliff" rule genai-prices uses).
    """

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    cache_write_1h: Decimal
    reasoning: Decimal | None = None
    per_request: Decimal = ZERO  # USD per call, on top of tokens
    tiers: tuple[tuple[int, Rates], ...] = ()
    source: str = ""
    status: str = "priced"  # "priced" | "override" | "local"
    notes: tuple[str, ...] = ()  # fallbacks used, e.g. "cache writes at the input rate"
    untracked: tuple[str, ...] = ()  # genai price keys with no canonical bucket (web searches...)
    date_matters: bool = False  # the rate depends on the call's date or time of day
    schedule: tuple[str, ...] = ()  # when the rates change, human text

    def for_prompt(self, prompt_tokens: int) -> Rates:
        """The rates a call with this many prompt tokens pays (its tier)."""
        for threshold, tier in reversed(self.tiers):
            if prompt_tokens > threshold:
                return tier
        return self

    def cost(self, usage: Usage) -> Decimal:
        """Exact USD for one call. Sub-buckets are clamped to their parents."""
        inp = usage.input_tokens
        cr = usage.cache_read_tokens
        cw = usage.cache_write_tokens
        out = usage.output_tokens
        if min(inp, cr, cw, out, usage.cache_write_1h_tokens, usage.reasoning_tokens) < 0:
            # A Usage built in code skips the decoder's >= 0 checks.
            raise ValueError("negative token count")
        r = self.for_prompt(inp + cr + cw) if self.tiers else self
        cw1h = min(usage.cache_write_1h_tokens, cw)
        total = r.input * inp + r.cache_read * cr + r.cache_write * (cw - cw1h) + r.cache_write_1h * cw1h
        reasoning_rate = r.reasoning
        if reasoning_rate is None:
            total += r.output * out
        else:
            reasoning = min(usage.reasoning_tokens, out)
            total += r.output * (out - reasoning) + reasoning_rate * reasoning
        usd = total / MTOK
        if r.per_request:
            usd += r.per_request
        return usd


_LOCAL_RATES: Final = Rates(ZERO, ZERO, ZERO, ZERO, ZERO, source="local model: no charge", status="local")
_LOCAL_PRICE: Final = Price(ZERO, "local", "local model: no charge")
_MISSING: Final = object()


class _Resolved:
    """Everything known about one (provider, model, route): what can price it."""

    __slots__ = ("by_key", "corr", "genai", "group", "local", "model", "priceable", "provider",
                 "unknown", "windows")

    def __init__(self, provider: str = "", model: str = "") -> None:
        self.provider = provider  # stripped, lower-cased
        self.model = model  # stripped
        self.local = False
        self.priceable = False  # some layer has a rate for it, at some tier
        self.group: tuple[OverrideRate, ...] | None = None  # the user's standard-tier group
        self.corr: tuple[OverrideRate, ...] | None = None  # the shipped correction's
        self.genai: tuple[Provider, ModelInfo, str] | None = None  # provider, model, how matched
        # Time-of-day windows (start, end seconds of the UTC day) of off-peak prices.
        self.windows: tuple[tuple[float, float], ...] = ()
        self.by_key: dict[Any, Rates | Price] = {}  # a Price: the unknown answer for that key
        self.unknown: Price = Price(None, "unknown", "")

    def key_for(self, ts: float) -> Any:
        day = int(ts // _DAY)
        if not self.windows:
            return day
        sod = ts - day * _DAY
        return (day, *(_in_window(sod, w) for w in self.windows))

    def span(self, ts: float) -> tuple[float, float]:
        """[since, until): the times around ``ts`` with the same ``key_for`` (its UTC day, cut at window edges)."""
        start = int(ts // _DAY) * _DAY
        since, until = 0.0, float(_DAY)
        sod = ts - start
        for window in self.windows:
            for edge in window:
                if edge <= sod:
                    since = max(since, edge)
                else:
                    until = min(until, edge)
        return start + since, start + until


class _Quote:
    """The answer for one (provider, model, route, service_tier, speed) while it cannot change.

    ``answer`` is a final Price (local, unknown) or the Rates in force, with
    ``exact`` their integer form (``compile_rates``); it holds for calls at
    ``since <= ts < until`` (a UTC day, or the part of it between two off-peak
    edges), for every call when ``timeless`` (local, or no rate at any time).
    """

    __slots__ = ("answer", "exact", "since", "timeless", "until")

    def __init__(self, answer: Rates | Price, since: float = -math.inf, until: float = math.inf,
                 timeless: bool = False) -> None:
        self.answer = answer
        self.exact = compile_rates(answer) if isinstance(answer, Rates) else None
        self.since, self.until, self.timeless = since, until, timeless


class TextQuote:
    """``Pricer.price_text`` for a run of calls with the same names, while its answer cannot change.

    For a caller that prices every call it makes (the recorder): ``cost(usage)``
    is the cost string ``price_text`` gives a call at ``since <= ts < until``
    with no reported amount, ``status`` and ``source`` are its other two
    answers (``source`` "" when there is none). ``pricer`` is the Pricer that
    answered, so a caller can see that ``set_default_pricer`` replaced it.
    ``cost`` raises where ``price_text`` would have answered "pricing failed"
    (a negative count): the caller then asks ``price_text``, which says why.
    Pinned to ``price_text`` in tests/core/test_pricing_quote.py.
    """

    __slots__ = ("cost", "pricer", "since", "source", "status", "until")

    def __init__(self, pricer: Pricer, quote: _Quote) -> None:
        found = quote.answer
        self.pricer = pricer
        self.since, self.until = (-math.inf, math.inf) if quote.timeless else (quote.since, quote.until)
        self.status, self.source = found.status, found.source
        if isinstance(found, Price):  # local, unknown: one answer whatever the usage
            text = None if found.usd is None else format_usd(found.usd)
            self.cost: Callable[[Usage], str | None] = lambda _usage: text
        elif quote.exact is not None:
            self.cost = quote.exact.cost_text  # the integer arithmetic of core.money
        else:
            self.cost = lambda usage: format_usd(found.cost(usage))


def _in_window(sod: float, window: tuple[float, float]) -> bool:
    start, end = window
    if end < start:
        return sod >= start or sod < end
    return start <= sod < end


class Pricer:
    """Prices calls; caches model resolution and per-day rates."""

    def __init__(self, overrides: str | os.PathLike[str] | None = None) -> None:
        """``overrides``: a TOML file of your own rates (errors raise OverrideError).

        None: the user's config file (``$XDG_CONFIG_HOME/flightdeck/prices.toml``)
        if it exists; a broken one is reported once on stderr and skipped, so
        a typo there never stops an agent.
        """
        self.overrides: Overrides | None
        if overrides is not None:
            self.overrides = Overrides.load(overrides)
        else:
            self.overrides = _auto_overrides()
        self.corrections: Overrides | None = _corrections()
        self._resolved: dict[tuple[str, str, str | None], _Resolved] = {}
        self._quotes: dict[tuple[str, str, str | None, str | None, str | None], _Quote] = {}
        self._kept: _KeptRates | None = None  # rates() answers kept across runs (keep_rates)

    # -- public -------------------------------------------------------------

    def price(
        self,
        provider: str,
        model: str,
        usage: Usage,
        when: float | datetime | None = None,
        *,
        route: str | None = None,
        reported_usd: Decimal | None = None,
        service_tier: str | None = None,
        speed: str | None = None,
    ) -> Price:
        """The cost of one call. Never raises.

        ``provider``, ``model``: as the call named them; ``usage``: its canonical
        buckets; ``when``: the call's time (default now), so dated prices apply;
        ``route``: "local" prices 0; ``reported_usd``: what the provider or proxy
        said it charged, used as is. ``service_tier`` (as reported: ``default``,
        ``flex``, ``priority``, ``batch``...) and ``speed`` (Anthropic's ``fast``)
        select the rates of that tier or mode (see the module docstring).
        """
        try:
            found, _ = self._lookup(provider, model, when, route, reported_usd, service_tier, speed)
            if isinstance(found, Price):
                return found
            return Price(found.cost(usage), found.status, found.source)
        except Exception as exc:  # pricing must never break the agent or the monitor
            return Price(None, "unknown", f"pricing failed: {type(exc).__name__}: {exc}")

    def price_text(
        self,
        provider: str,
        model: str,
        usage: Usage,
        when: float | datetime | None = None,
        *,
        route: str | None = None,
        reported_usd: Decimal | None = None,
        service_tier: str | None = None,
        speed: str | None = None,
    ) -> tuple[str | None, str, str]:
        """``price()`` as the line writes it: (``format_usd`` of the cost or None, status, source).

        Arguments as in ``price``. Never raises. The cost is computed with the
        rates compiled to integers (``core.money.compile_rates``): a few int
        multiplies instead of Decimal arithmetic and formatting, the same
        digits (pinned to ``format_usd(price(...).usd)`` in the tests). What the
        recorder writes on every call inside the agent.
        """
        try:
            # The recorder's case inline (measured: ~1 us a layer on the shared machine): a model
            # priced again within the span of its cached answer, with no reported amount.
            quote = self._quotes.get((provider, model, route, service_tier, speed))
            if (reported_usd is None and quote is not None
                    and (quote.timeless or (type(when) is float and quote.since <= when < quote.until))):
                found, exact = quote.answer, quote.exact
            else:
                found, exact = self._lookup(provider, model, when, route, reported_usd, service_tier, speed)
            if isinstance(found, Price):
                return (None if found.usd is None else format_usd(found.usd)), found.status, found.source
            text = exact.cost_text(usage) if exact is not None else format_usd(found.cost(usage))
            return text, found.status, found.source
        except Exception as exc:  # pricing must never break the agent or the monitor
            return None, "unknown", f"pricing failed: {type(exc).__name__}: {exc}"

    def text_quote(self, provider: str, model: str, when: float | datetime | None = None, *,
                   route: str | None = None, service_tier: str | None = None,
                   speed: str | None = None) -> TextQuote:
        """What ``price_text`` answers for these names at ``when``, and for how long it holds (``TextQuote``).

        Arguments as in ``price``, without a reported amount (``price_text``
        answers those). Raises as ``_epoch`` for a ``when`` that is not a time.
        """
        return TextQuote(self, self._quote(provider, model, when, route, service_tier, speed))

    def _lookup(self, provider: str, model: str, when: float | datetime | None, route: str | None,
                reported_usd: Decimal | None, service_tier: str | None,
                speed: str | None) -> tuple[Rates | Price, IntRates | None]:
        """The answer before any arithmetic: a final Price (local, reported, unknown) or the Rates
        to apply, with their integer form. The one place of the layers' order."""
        quote = self._quote(provider, model, when, route, service_tier, speed)
        found = quote.answer
        if reported_usd is not None and found is not _LOCAL_PRICE and _valid_amount(reported_usd):
            return Price(reported_usd, "reported", "reported by the provider or proxy"), None
        return found, quote.exact

    def _quote(self, provider: str, model: str, when: float | datetime | None, route: str | None,
               service_tier: str | None, speed: str | None) -> _Quote:
        """The cached answer for these names at ``when``: one dict lookup for a model priced
        again on the same day (the recorder prices every call)."""
        key = (provider, model, route, service_tier, speed)
        quote = self._quotes.get(key)
        if quote is not None and quote.timeless:
            return quote
        # A float within any sane range is already the epoch (the recorder's case): no _epoch call.
        ts = when if type(when) is float and -_FAR < when < _FAR else _epoch(when)
        if quote is not None and quote.since <= ts < quote.until:
            return quote
        res = self._resolved.get((provider, model, route)) or self._resolve(provider, model, route)
        if res.local:
            quote = _Quote(_LOCAL_PRICE, timeless=True)
        elif not res.priceable:
            quote = _Quote(res.unknown, timeless=True)
        else:
            quote = _Quote(self._rates_at(res, ts, service_tier, speed), *res.span(ts))
        if len(self._quotes) >= _MAX_CACHED_MODELS:
            self._quotes.clear()
        self._quotes[key] = quote
        return quote

    def rates(
        self,
        provider: str,
        model: str,
        when: float | datetime | None = None,
        route: str | None = None,
        *,
        service_tier: str | None = None,
        speed: str | None = None,
    ) -> Rates | None:
        """The rates in force for a call at ``when`` (default now); None when unknown.

        Arguments as in ``price``. With ``keep_rates``, an answer stored by an
        earlier run with the same pricing inputs is returned without loading
        genai-prices.
        """
        try:
            kept = self._kept
            ts: float | None = None
            if kept is not None:
                try:
                    ts = _epoch(when)  # once: the answer looked up and the one stored are for the same time
                except (ValueError, OverflowError, TypeError):
                    ts = None  # what the lookup below makes of it (a local model needs no time)
                else:
                    found = kept.get(provider, model, route, service_tier, speed, ts)
                    if found is not _MISSING:
                        return found  # type: ignore[return-value]
            res = self._resolved.get((provider, model, route)) or self._resolve(provider, model, route)
            if res.local:
                return _LOCAL_RATES
            if not res.priceable:
                answer: Rates | None = None
            else:
                at = ts if ts is not None else _epoch(when)
                rates = self._rates_at(res, at, service_tier, speed)
                answer = None if isinstance(rates, Price) else rates
            if kept is not None and ts is not None:
                kept.put(provider, model, route, service_tier, speed, ts, answer, self._change_days(res))
            return answer
        except Exception:
            return None

    def rates_hold_all_day(self, provider: str, model: str, route: str | None = None) -> bool:
        """Whether ``rates()`` gives one answer for all calls of a UTC day (at each tier and speed).

        Arguments as in ``price``. True unless the model has off-peak hours:
        dated changes (genai-prices' start dates, dated overrides) fall on UTC
        midnights, which is also how answers are cached here. A model whose
        answers are kept (``keep_rates``) has none, so this loads nothing.
        """
        kept = self._kept
        if kept is not None and (provider, model, route) in kept.models:
            return True  # only models without off-peak hours are kept (_change_days)
        try:
            res = self._resolved.get((provider, model, route)) or self._resolve(provider, model, route)
        except Exception:
            return False  # as rates(): never raises; the caller then asks for every call
        return not res.windows

    def keep_rates(self, folder: str | os.PathLike[str]) -> None:
        """Keep ``rates()`` answers in ``folder`` across runs (``flightdeck report``'s start-up).

        Args:
            folder: a folder of the user's cache (``$XDG_CACHE_HOME/flightdeck``):
                made 0700 if missing, never followed through a link.

        Loading genai-prices (its package imports httpx, asyncio and pydantic)
        is most of a small report's start-up; the rates a history needs are a
        few (model, tier, period) answers. They are stored in
        ``rates.msgpack`` there, with a fingerprint of every input they come
        from (``pricing_inputs``): any change there (a new genai-prices, a
        changed correction or override file, another flightdeck) discards the
        file. An answer is stored for the span of days between two dates where
        the model's prices may change (genai-prices' start dates, dated
        overrides and corrections), so a new day needs no new lookup; a model
        with off-peak hours is never stored. A missing, foreign or damaged
        file is ignored and rewritten; the cache never makes a lookup fail.
        """
        path = Path(folder) / _KEPT_NAME
        self._kept = _KeptRates(path, self.pricing_inputs())

    def pricing_inputs(self) -> str:
        """A hash of everything this pricer's answers come from (see ``keep_rates``)."""
        h = hashlib.sha256(b"flightdeck rates 1\n")
        from flightdeck import __version__
        from flightdeck.core import price_overrides

        h.update(__version__.encode() + b"\n")
        for module_file in (__file__, price_overrides.__file__):  # this code: a changed rule changes answers
            h.update(_file_state(module_file))
        h.update(package_state("genai_prices"))
        for table in (self.corrections, self.overrides):
            if table is None:
                h.update(b"none\n")
                continue
            h.update(os.fsencode(table.path) + b"\n")
            try:
                h.update(Path(table.path).read_bytes())
            except OSError:
                h.update(b"unreadable")
            h.update(b"\n--\n")
        return h.hexdigest()

    def _change_days(self, res: _Resolved) -> list[int] | None:
        """Epoch days (UTC) on which this model's answers may change, ascending; None: they may
        change within a day (off-peak windows) or by a rule not known here, so nothing is kept."""
        if res.local or res.windows:
            return None
        days: set[date] = set()
        for table in (self.overrides, self.corrections):  # every dated entry (more spans than needed is safe)
            if table is not None:
                days.update(e.since for group in table.groups for e in group if e.since is not None)
        if res.genai is not None:
            from genai_prices.types import StartDateConstraint

            model = res.genai[1]
            constraints = [c.constraint for c in model.prices] if isinstance(model.prices, list) else []
            constraints += [v.constraint for v in model.price_variants or ()]
            for constraint in constraints:
                if constraint is None:
                    continue
                if type(constraint) is not StartDateConstraint or type(constraint.start_date) is not date:
                    return None
                days.add(constraint.start_date)
        epoch = date(1970, 1, 1).toordinal()
        return sorted(d.toordinal() - epoch for d in days)

    def unknown_reason(self, provider: str, model: str, route: str | None = None, *,
                       when: float | datetime | None = None, service_tier: str | None = None,
                       speed: str | None = None) -> str:
        """Why a model has no rate (the ``source`` of its unknown Price); arguments as in ``price``."""
        res = self._resolved.get((provider, model, route)) or self._resolve(provider, model, route)
        if res.priceable and not res.local:
            rates = self._rates_at(res, _epoch(when), service_tier, speed)
            if isinstance(rates, Price):
                return rates.source
        return res.unknown.source

    def _rates_at(self, res: _Resolved, ts: float, service_tier: str | None,
                  speed: str | None) -> Rates | Price:
        """The cached rates (or unknown answer) for a resolved model at ``ts`` and tier."""
        key = res.key_for(ts) if res.windows else int(ts // _DAY)  # key_for's no-window case, inline
        tier: tuple[str | None, str | None] = (None, None)
        if service_tier is not None or speed is not None:
            tier = tier_key(service_tier, speed)
            if tier != (None, None):
                key = (key, tier)
        rates = res.by_key.get(key, _MISSING)
        if rates is _MISSING:
            rates = self._build(res, ts, key, tier)
        return rates  # type: ignore[return-value]

    # -- resolution (once per provider, model, route) --------------------------

    def _resolve(self, provider: str, model: str, route: str | None) -> _Resolved:
        provider_s = provider.strip().lower() if isinstance(provider, str) else ""
        model_s = model.strip() if isinstance(model, str) else ""
        res = _Resolved(provider_s, model_s)
        if route == "local" or (route is None and provider_s in LOCAL_PROVIDERS):
            res.local = True
        elif not model_s:
            res.unknown = Price(None, "unknown", "no model name")
        else:
            if self.overrides is not None:
                res.group = self.overrides.lookup(provider_s, model_s)
            if self.corrections is not None:
                res.corr = self.corrections.lookup(provider_s, model_s)
            res.genai = _find_genai(provider_s, model_s)
            if res.genai is not None:
                res.windows = _time_windows(res.genai[1])
            res.priceable = (res.genai is not None or res.group is not None or res.corr is not None
                             or any(layer is not None and layer.matches(provider_s, model_s)
                                    for layer in (self.overrides, self.corrections)))
            res.unknown = Price(None, "unknown", self._unknown_text(provider_s, model_s, res))
        if len(self._resolved) >= _MAX_CACHED_MODELS:
            self._resolved.clear()
        self._resolved[(provider, model, route)] = res
        return res

    def _unknown_text(self, provider: str, model: str, res: _Resolved) -> str:
        where = f"genai-prices {_genai_version()}"
        if self.overrides is not None:
            where += f" or {self.overrides.path}"
        if (res.group is not None or res.corr is not None) and res.genai is None:
            return f"no rate for {provider}/{model} at that date in {where}"
        if res.genai is not None:
            return f"genai-prices {_genai_version()}: {res.genai[0].id}/{res.genai[1].id} has no token rates"
        asked = f"{provider}/{model}" if provider else f"model {model!r}"
        return f"no rate for {asked} in {where}"

    # -- rates (once per resolved model and UTC day / time window) -------------

    def _build(self, res: _Resolved, ts: float, key: Any,
               tier: tuple[str | None, str | None] = (None, None)) -> Rates | Price:
        when = datetime.fromtimestamp(ts, UTC)
        found = self._layers(res, when, tier)
        result = res.unknown if found is None else found
        res.by_key[key] = result
        return result

    def _layers(self, res: _Resolved, when: datetime,
                tier: tuple[str | None, str | None]) -> Rates | Price | None:
        """The rates of the first layer that prices the model: overrides, corrections, genai-prices.

        At a tier, the layer that owns the model decides: its entry (or genai
        variant) for that tier, else its standard rates through
        ``_tier_fallback``. So a correction's long-context tiers stay in force
        for a batch call, and your own standard rate is what batch halves.
        """
        day = when.date()
        for table, group, status in ((self.overrides, res.group, "override"),
                                     (self.corrections, res.corr, "priced")):
            if table is None:
                continue
            base = None if group is None else Overrides.in_force(group, day)
            if tier != (None, None):
                tier_group = table.lookup(res.provider, res.model, *tier)
                entry = None if tier_group is None else Overrides.in_force(tier_group, day)
                if entry is not None and tier_group is not None:
                    return self._entry_rates(entry, tier_group, table, status)
            if base is not None and group is not None:
                standard = self._entry_rates(base, group, table, status)
                return standard if tier == (None, None) else self._tier_fallback(res, standard, tier)
        if res.genai is None:
            return None
        if tier == (None, None):
            return _rates_from_genai(*res.genai, when)
        variant = _rates_from_genai(*res.genai, when, _genai_context(*tier))
        if variant is not None:
            return variant
        standard_genai = _rates_from_genai(*res.genai, when)
        return None if standard_genai is None else self._tier_fallback(res, standard_genai, tier)

    def _entry_rates(self, entry: OverrideRate, group: tuple[OverrideRate, ...], table: Overrides,
                     status: str) -> Rates:
        label = entry.label(table.path) if status == "override" else _correction_label(entry, table)
        return _rates_from_override(entry, group, label, status)

    def _tier_fallback(self, res: _Resolved, standard: Rates,
                       tier: tuple[str | None, str | None]) -> Rates | Price:
        """A tier the owning layer has no rate for: batch at half where the provider says so, else unknown."""
        service_tier, speed = tier
        provider_id = res.genai[0].id if res.genai is not None else PROVIDER_ALIASES.get(res.provider, res.provider)
        discount = BATCH_DISCOUNT.get(provider_id)
        if service_tier == "batch" and speed is None and discount is not None:
            return _scaled(standard, HALF, f"; batch: half the standard rates ({discount})")
        asked = [(name, value) for name, value in (("service_tier", service_tier), ("speed", speed))
                 if value is not None]
        what = " and ".join(f"{name} {value!r}" for name, value in asked)
        fields = ", ".join(f'{name} = "{value}"' for name, value in asked)
        model = f"{res.provider}/{res.model}" if res.provider else res.model
        return Price(None, "unknown",
                     f"no rate for {model} at {what} in your overrides, flightdeck's corrections or "
                     f"genai-prices {_genai_version()} (standard: {standard.source}): add a [[model]] "
                     f"entry with {fields} to your prices.toml")


# -- rates kept across runs (Pricer.keep_rates) -----------------------------------

_KEPT_NAME: Final = "rates.msgpack"
_KEPT_MAX: Final = 4096  # answers kept; beyond it the file is not grown (a flood of model names)


class _KeptFile(msgspec.Struct, array_like=True):
    """``rates.msgpack``: the answers of earlier runs, valid while ``inputs`` is unchanged."""

    inputs: str
    # (provider, model, route) -> the epoch days its answers may change on (see Pricer._change_days).
    models: list[tuple[str, str, str | None, list[int]]]
    # (provider, model, route, service_tier, speed, span between change days) -> the answer.
    answers: list[tuple[str, str, str | None, str | None, str | None, int, Rates | None]]


_kept_decoder = msgspec.msgpack.Decoder(_KeptFile)


class _KeptRates:
    """The answers of ``rates.msgpack`` in memory; a new answer is written through at once.

    Misses are few (one per model, tier and span of days), so each is written
    when it is found: a forked report worker's answers are kept too. Two
    processes writing at once each replace the file whole (temporary file,
    rename): one's new answers may be lost, and found again next time.
    """

    def __init__(self, path: Path, inputs: str) -> None:
        self.path = path
        self.inputs = inputs
        self.models: dict[tuple[str, str, str | None], list[int]] = {}
        self.answers: dict[tuple[str, str, str | None, str | None, str | None, int], Rates | None] = {}
        # The cockpit prices on its engine thread and on the UI's (a call's audit): a put
        # while another thread writes the file would change the dicts under its iteration.
        self._lock = threading.Lock()
        try:
            fd = open_regular(path, os.O_RDONLY, follow=False)
            with os.fdopen(fd, "rb") as f:
                doc = _kept_decoder.decode(f.read(8 << 20))
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            return  # none yet, or damaged: answers are looked up and the file rewritten
        if doc.inputs != inputs:
            return  # made from other price data: none of it holds
        self.models = {(p, m, r): days for p, m, r, days in doc.models}
        self.answers = {(p, m, r, t, s, i): a for p, m, r, t, s, i, a in doc.answers}

    def get(self, provider: str, model: str, route: str | None, service_tier: str | None,
            speed: str | None, ts: float) -> object:
        """The stored answer for a call at ``ts``; ``_MISSING`` when none is."""
        days = self.models.get((provider, model, route))
        if days is None or not math.isfinite(ts):
            return _MISSING
        span = bisect.bisect_right(days, ts // _DAY) if days else 0
        return self.answers.get((provider, model, route, service_tier, speed, span), _MISSING)

    def put(self, provider: str, model: str, route: str | None, service_tier: str | None, speed: str | None,
            ts: float, answer: Rates | None, days: list[int] | None) -> None:
        """Store a looked-up answer (``days`` None: this model's answers are not kept) and write the file."""
        if days is None or not math.isfinite(ts) or len(self.answers) >= _KEPT_MAX:
            return
        if not all(type(x) is str or x is None for x in (provider, model, route, service_tier, speed)):
            return
        span = bisect.bisect_right(days, ts // _DAY) if days else 0
        with self._lock:
            self.models[(provider, model, route)] = days
            self.answers[(provider, model, route, service_tier, speed, span)] = answer
            self._write()

    def _write(self) -> None:
        doc = _KeptFile(self.inputs, [(p, m, r, d) for (p, m, r), d in self.models.items()],
                        [(*key, a) for key, a in self.answers.items()])
        folder = self.path.parent
        try:
            body = msgspec.msgpack.encode(doc)
            os.makedirs(folder.parent, 0o700, exist_ok=True)
            private_dir(folder)  # core.fsopen: the one rule for a folder of ours
            replace_file(self.path, body, suffix=".rates")  # and the one way to replace a file of ours
        except (OSError, TypeError, ValueError):  # a cache: lookups go on without it
            pass


def _file_state(path: str) -> bytes:
    """A file's name, size and mtime: changes when it is rewritten."""
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}: none\n".encode("utf-8", "surrogateescape")
    return f"{path}:{st.st_size}:{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape")


def package_state(name: str) -> bytes:
    """The names, sizes and mtimes of an installed package's files, without importing it.

    Args:
        name: the package's import name (``genai_prices``).

    Any upgrade or reinstall of genai-prices (its price data is a module of
    it) changes these; ``importlib.metadata`` would say the version too, but
    costs more to import than a warm report takes.
    """
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return f"{name} none\n".encode()
    out = []
    for folder in spec.submodule_search_locations:
        try:
            with os.scandir(folder) as it:
                for e in it:
                    if e.is_file():
                        st = e.stat()
                        out.append(f"{e.name}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            out.append(f"{folder}: unreadable")
    return "\n".join(sorted(out)).encode("utf-8", "surrogateescape")


# -- genai-prices --------------------------------------------------------------


def _genai_version() -> str:
    global _GENAI_VERSION
    if _GENAI_VERSION is None:
        try:
            from importlib.metadata import version

            _GENAI_VERSION = version("genai-prices")
        except Exception:
            _GENAI_VERSION = "?"
    return _GENAI_VERSION


_GENAI_VERSION: str | None = None


def _snapshot() -> Any:
    from genai_prices import data_snapshot

    return data_snapshot.get_snapshot()


def _genai_provider_id(snapshot: Any, name: str) -> str | None:
    """A genai-prices provider id for a SPEC/SDK provider name, or None."""
    from genai_prices.data_snapshot import find_provider_by_id

    if not name:
        return None
    if name == "litellm":  # genai splits "openai/gpt-4o" itself for this id
        return name
    name = PROVIDER_ALIASES.get(name, name)
    found = find_provider_by_id(snapshot.providers, name)
    return found.id if found is not None else None


def _find_genai(provider: str, model: str) -> tuple[Provider, ModelInfo, str] | None:
    """Resolve once: the asked-for provider first, then a "prefix/" in the model, then the model alone."""
    snapshot = _snapshot()
    pid = _genai_provider_id(snapshot, provider)
    attempts: list[tuple[str | None, str, str]] = []
    if pid is not None:
        attempts.append((pid, model, ""))
    prefix, slash, rest = model.partition("/")
    if slash and rest:
        ppid = _genai_provider_id(snapshot, prefix.lower())
        if ppid is not None and ppid != "litellm":
            attempts.append((ppid, rest, " (provider from the model prefix)"))
    attempts.append((None, model, " (matched by model name)" if provider else ""))
    if slash and rest:
        attempts.append((None, rest, " (matched by model name)"))
    for attempt_pid, ref, how in attempts:
        try:
            found_provider, found_model = snapshot.find_provider_model(ref, None, attempt_pid, None)
        except LookupError:
            continue
        if pid is not None and attempt_pid == pid:
            how = ""
        return found_provider, found_model, how
    return None


def _time_windows(model: ModelInfo) -> tuple[tuple[float, float], ...]:
    from genai_prices.types import TimeOfDateConstraint

    if not isinstance(model.prices, list):
        return ()
    windows = []
    for conditional in model.prices:
        constraint = conditional.constraint
        if isinstance(constraint, TimeOfDateConstraint):
            windows.append((_utc_seconds(constraint.start_time), _utc_seconds(constraint.end_time)))
    return tuple(windows)


def _utc_seconds(value: Any) -> float:
    moment = datetime.combine(date(1970, 1, 2), value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return (moment.hour * 3600 + moment.minute * 60 + moment.second) + moment.microsecond / 1e6


def _select_price(model: ModelInfo, when: datetime) -> tuple[ModelPrice, date | None]:
    """genai's rule: the last conditional price in force, else the first one."""
    from genai_prices.types import ModelPrice as GenaiModelPrice
    from genai_prices.types import StartDateConstraint

    if isinstance(model.prices, GenaiModelPrice):
        return model.prices, None
    for conditional in reversed(model.prices):
        constraint = conditional.constraint
        if constraint is None or constraint.active(when):
            start = constraint.start_date if isinstance(constraint, StartDateConstraint) else None
            return conditional.prices, start
    return model.prices[0].prices, None


def _schedule(model: ModelInfo) -> tuple[str, ...]:
    from genai_prices.types import StartDateConstraint, TimeOfDateConstraint

    if not isinstance(model.prices, list):
        return ()
    lines = []
    for conditional in model.prices:
        constraint = conditional.constraint
        if isinstance(constraint, StartDateConstraint):
            lines.append(f"from {constraint.start_date}: {conditional.prices}")
        elif isinstance(constraint, TimeOfDateConstraint):
            start = constraint.start_time.strftime("%H:%M")
            end = constraint.end_time.strftime("%H:%M")
            lines.append(f"daily {start}-{end} UTC: {conditional.prices}")
        elif any(isinstance(c.constraint, TimeOfDateConstraint) for c in model.prices):
            lines.append(f"other times: {conditional.prices}")
        else:
            lines.append(f"initially: {conditional.prices}")
    return tuple(lines)


def _genai_context(service_tier: str | None, speed: str | None) -> dict[str, str]:
    """genai-prices' price context for a tier: its variants key on these exact values."""
    context: dict[str, str] = {}
    if service_tier == "batch":
        context["processing"] = "batch"
    elif service_tier is not None:
        context["service_tier"] = service_tier
    if speed is not None:
        context["speed"] = speed
    return context


def _variant_applies(model: ModelInfo, when: datetime, context: dict[str, str]) -> bool:
    """Whether genai-prices has a price variant for exactly this context at ``when``."""
    for variant in model.price_variants or ():
        if variant.constraint is not None and not variant.constraint.active(when):
            continue
        if variant.when.keys() <= context.keys() and all(context[k] == v for k, v in variant.when.items()):
            return True
    return False


def _rates_from_genai(provider: Provider, model: ModelInfo, how: str, when: datetime,
                      context: dict[str, str] | None = None) -> Rates | None:
    """Flat Rates from genai-prices at ``when``; with ``context``, that price variant's (None if it has none)."""
    from genai_prices.types import TieredPrices

    model_price, start = _select_price(model, when)
    if context:
        if not _variant_applies(model, when, context):
            return None
        model_price = model.get_prices(when, context)  # genai's own rule overlays the variant
    values = {
        key: value
        for key, value in model_price.__dict__.items()
        if value is not None and not key.startswith("_")
    }
    if "input_mtok" not in values and "output_mtok" not in values:
        return None  # not priced per token (audio, images, rerank...): say unknown, not $0
    thresholds = sorted(
        {tier.start for value in values.values() if isinstance(value, TieredPrices) for tier in value.tiers}
    )
    flat: dict[int | None, dict[str, Decimal]] = {
        threshold: _flat_prices(values, threshold) for threshold in [None, *thresholds]
    }
    source = f"genai-prices {_genai_version()}: {provider.id}/{model.id}{how}"
    if start is not None:
        source += f" (price from {start})"
    if context:
        source += " at " + ", ".join(f"{k}={v}" for k, v in sorted(context.items()))
    schedule = _schedule(model)
    untracked = tuple(sorted(_unit_name(key) for key in values if key not in _TRACKED_KEYS))
    base, notes = _rates_from_prices(flat[None])
    if notes:
        source += "; " + "; ".join(notes)
    common: dict[str, Any] = {
        "source": source, "status": "priced", "notes": notes, "untracked": untracked,
        "date_matters": bool(schedule), "schedule": schedule,
    }
    tiers = tuple((t, replace(_rates_from_prices(flat[t])[0], **common)) for t in thresholds)
    return replace(base, tiers=tiers, **common)


_UNIT_SUFFIXES: Final = (
    ("_mtok", " tokens (per MTok)"),
    ("_kcount", " (per 1K)"),
    ("_kpages", " pages (per 1K)"),
    ("_mchars", " characters (per M)"),
    ("_gpixels", " pixels (per G)"),
    ("_hours", " (per hour)"),
)


def _unit_name(price_key: str) -> str:
    """``web_searches_kcount`` -> ``web searches (per 1K)``, for people."""
    for suffix, text in _UNIT_SUFFIXES:
        if price_key.endswith(suffix):
            return price_key[: -len(suffix)].replace("_", " ") + text
    return price_key.replace("_", " ")


def _flat_prices(values: dict[str, Any], threshold: int | None) -> dict[str, Decimal]:
    """Each price key's rate for prompts above ``threshold`` (None: the base rates)."""
    from genai_prices.types import TieredPrices

    flat = {}
    for key, value in values.items():
        if isinstance(value, TieredPrices):
            rate = value.base
            if threshold is not None:
                for tier in value.tiers:
                    if tier.start <= threshold:
                        rate = tier.price
            flat[key] = rate
        elif isinstance(value, Decimal):
            flat[key] = value
    return flat


def _rates_from_prices(prices: dict[str, Decimal]) -> tuple[Rates, tuple[str, ...]]:
    """Canonical Rates from genai price keys; a missing cache rate falls back as genai does."""
    notes = []
    inp = prices.get("input_mtok")
    if inp is None:
        notes.append("input tokens not priced")
        inp = ZERO
    out = prices.get("output_mtok")
    if out is None:
        notes.append("output tokens not priced")
        out = ZERO
    cache_read = prices.get("cache_read_mtok")
    if cache_read is None:
        notes.append("cache reads at the input rate")
        cache_read = inp
    cache_write = prices.get("cache_write_mtok")
    if cache_write is None:
        notes.append("cache writes at the input rate")
        cache_write = inp
    cache_write_1h = prices.get("cache_write_1h_mtok")
    if cache_write_1h is None:
        cache_write_1h = cache_write  # the 5 minute rate: the usual case, no note
    per_request = prices.get("requests_kcount")
    rates = Rates(
        input=inp,
        output=out,
        cache_read=cache_read,
        cache_write=cache_write,
        cache_write_1h=cache_write_1h,
        reasoning=prices.get("output_reasoning_mtok"),
        per_request=per_request / 1000 if per_request is not None else ZERO,
    )
    return rates, tuple(notes)


# -- overrides -------------------------------------------------------------------


def _rates_from_override(entry: OverrideRate, group: tuple[OverrideRate, ...], source: str,
                         status: str) -> Rates:
    """Rates of an override or correction entry; ``source`` and ``status`` as Price has them."""
    schedule = tuple(f"from {e.since}: line {e.line}" for e in group if e.since is not None)
    base = _override_rates(entry.rates)
    tiers = tuple(
        (tier.above, replace(_override_rates({**entry.rates, **tier.rates}), source=source, status=status))
        for tier in entry.tiers
    )
    return replace(base, tiers=tiers, source=source, status=status, date_matters=bool(schedule), schedule=schedule)


CORRECTION_PREFIX: Final = "flightdeck correction"


def _correction_label(entry: OverrideRate, table: Overrides) -> str:
    """``Price.source`` of a shipped correction: says it is one, and where its rate comes from."""
    return f"{CORRECTION_PREFIX} ({table.path.name} line {entry.line}): {entry.source}"


def _scaled(rates: Rates, factor: Decimal, note: str) -> Rates:
    """Every token rate times ``factor`` (tiers included); ``note`` is added to the source."""
    def scale(r: Rates) -> Rates:
        return replace(r, input=r.input * factor, output=r.output * factor,
                       cache_read=r.cache_read * factor, cache_write=r.cache_write * factor,
                       cache_write_1h=r.cache_write_1h * factor,
                       reasoning=None if r.reasoning is None else r.reasoning * factor,
                       source=r.source + note)
    return replace(scale(rates), tiers=tuple((t, scale(r)) for t, r in rates.tiers))


def _corrections() -> Overrides | None:
    """The shipped corrections; a broken table (a packaging bug) is reported once and skipped."""
    try:
        return shipped_corrections()
    except (OverrideError, OSError) as exc:
        _warn_once(f"flightdeck: ignoring the shipped price corrections: {exc}")
        return None


def _override_rates(values: dict[str, Decimal]) -> Rates:
    inp = values["input"]
    cache_write = values.get("cache_write", inp)
    return Rates(
        input=inp,
        output=values["output"],
        cache_read=values.get("cache_read", inp),
        cache_write=cache_write,
        cache_write_1h=values.get("cache_write_1h", cache_write),
        reasoning=values.get("reasoning"),
        per_request=values.get("per_request", ZERO),
    )


def _auto_overrides() -> Overrides | None:
    path = default_overrides_path()
    try:
        if not path.is_file():
            return None
        return Overrides.load(path)
    except OverrideError as exc:
        _warn_once(f"flightdeck: ignoring your price overrides: {exc}")
    except OSError as exc:
        _warn_once(f"flightdeck: ignoring your price overrides: {path}: {exc}")
    return None


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        print(message, file=sys.stderr)


# -- helpers ---------------------------------------------------------------------


def _epoch(when: float | datetime | str | None) -> float:
    if when is None:
        return time.time()
    if isinstance(when, datetime):
        if when.tzinfo is None:  # a naive time is taken as UTC, as in the logs
            when = when.replace(tzinfo=UTC)
        return when.timestamp()
    if isinstance(when, str):
        return parse_ts(when)
    ts = float(when)
    if not math.isfinite(ts):
        raise ValueError(f"time {when!r} is not a time")
    return ts


def _valid_amount(amount: object) -> bool:
    return isinstance(amount, Decimal) and amount.is_finite() and amount >= 0


# -- the default pricer (what flightdeck.price uses) --------------------------------

_default: Pricer | None = None


def default_pricer() -> Pricer:
    global _default
    if _default is None:
        _default = Pricer()
    return _default


def set_default_pricer(pricer: Pricer) -> None:
    """Make ``pricer`` the one ``price()`` uses (the CLI's --prices flag)."""
    global _default
    _default = pricer


def price(
    provider: str,
    model: str,
    usage: Usage,
    when: float | datetime | None = None,
    *,
    route: str | None = None,
    reported_usd: Decimal | None = None,
    service_tier: str | None = None,
    speed: str | None = None,
) -> Price:
    """The cost of one call with the default pricer. Never raises (see Pricer.price)."""
    pricer = _default if _default is not None else default_pricer()
    return pricer.price(provider, model, usage, when, route=route, reported_usd=reported_usd,
                        service_tier=service_tier, speed=speed)


def price_text(
    provider: str,
    model: str,
    usage: Usage,
    when: float | datetime | None = None,
    *,
    route: str | None = None,
    reported_usd: Decimal | None = None,
    service_tier: str | None = None,
    speed: str | None = None,
) -> tuple[str | None, str, str]:
    """``Pricer.price_text`` with the default pricer: (cost string or None, status, source). Never raises."""
    pricer = _default if _default is not None else default_pricer()
    return pricer.price_text(provider, model, usage, when, route=route, reported_usd=reported_usd,
                             service_tier=service_tier, speed=speed)
