"""Money in integers: cost strings as units, and pricing ``Rates`` compiled to integer rates.

Every figure flightdeck shows is a sum of exact amounts. Summing ``Decimal``
values a million times is slow, so amounts are kept as integers:

* ``UNIT``: a money unit is 1e-12 USD. ``cost_units("0.011250")`` is
  ``11_250_000_000``; a cost string with more than 12 decimals (the line
  format allows 40) becomes a ``Fraction`` of units, so sums of such amounts
  stay exact (a ``Decimal`` sum rounds to 28 digits: 2 x 999999999.9...9 with
  40 nines came out as 2000000000). ``Money`` is ``int | Fraction``; int is
  the hot path.
* ``compile_rates(rates)`` turns a ``pricing.Rates`` (USD per million tokens,
  tiers included) into ``IntRates``: each rate scaled by ``10**k`` to an int,
  so a call's cost is one integer sum, in units of ``10**-(k+6)`` USD. From it:
  ``cost_text(usage)`` is ``format_usd(rates.cost(usage))`` digit for digit,
  ``cost_units(usage)`` the same amount in money units, and
  ``saving_units(usage)`` what the call's cache reads saved against the plain
  input rate of the call's tier. Tests pin each to ``Rates.cost``.

This module imports nothing heavy (no pricing database): it takes any object
with the attributes of ``pricing.Rates``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation, localcontext
from fractions import Fraction
from typing import Any, Final, Protocol

from flightdeck.core.events import Usage, format_usd

Money = int | Fraction  # units of 1e-12 USD; a Fraction only for amounts finer than that

UNIT: Final = 10**12
UNIT_PLACES: Final = 12
POW10: Final = tuple(10**i for i in range(UNIT_PLACES + 1))  # 10**i, looked up (hot paths)
_SIX_PLACES: Final = Decimal("0.000001")
# Below Decimal's default 28 digits every step of ``Rates.cost`` is exact, so
# the integer result has the same digits; above it the Decimal path answers.
_DECIMAL_LIMIT: Final = 10**27
_MAX_RATE_DIGITS: Final = 20


def cost_units(text: str) -> Money:
    """A decimal cost string as exact money units (a Fraction beyond 12 places).

    Args:
        text: a non-negative decimal such as ``"0.011250"``.

    Raises:
        ValueError: when ``text`` is not a non-negative finite decimal.
    """
    whole, _, frac = text.partition(".")
    n = len(frac)
    if n <= UNIT_PLACES and whole.isdigit() and (not frac or frac.isdigit()):
        return int(whole + frac) * POW10[UNIT_PLACES - n]
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"cost {text!r} is not a decimal") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"cost {text!r} is not a non-negative amount")
    return _units(Fraction(amount) * UNIT)


def units_to_usd(units: Money) -> Decimal:
    """Money units as USD: a Decimal with at least six places and no needless zeros beyond.

    Args:
        units: an amount in units of 1e-12 USD.
    """
    if isinstance(units, Fraction):
        # Sums of decimal amounts have a denominator dividing a power of ten, so
        # the quotient is a finite decimal: a context as wide as the digits makes it exact.
        with localcontext() as ctx:
            ctx.prec = len(str(units.numerator)) + len(str(units.denominator)) + UNIT_PLACES + 2
            amount = (Decimal(units.numerator) / Decimal(units.denominator)).scaleb(-UNIT_PLACES)
            short = amount.quantize(_SIX_PLACES)
            if short == amount:
                return short
            return Decimal(format(amount, "f").rstrip("0"))
    amount = Decimal(units).scaleb(-UNIT_PLACES)
    short = amount.quantize(_SIX_PLACES)
    if short == amount:
        return short
    return Decimal(format(amount, "f").rstrip("0"))


def scaled_to_units(n: int, places: int) -> Money:
    """``n * 10**-places`` USD as money units (int when ``places`` <= 12, else a Fraction).

    Args:
        n: the amount's integer digits.
        places: how many of them are decimals.
    """
    if places <= UNIT_PLACES:
        return n * POW10[UNIT_PLACES - places]
    return _units(Fraction(n, 10 ** (places - UNIT_PLACES)))


def _units(amount: Fraction) -> Money:
    """A whole number of units as an int (the hot path's type), else the exact Fraction."""
    return amount.numerator if amount.denominator == 1 else amount


class RatesLike(Protocol):
    """What ``compile_rates`` reads: the attributes of ``pricing.Rates``."""

    # Read-only (properties): a frozen dataclass such as pricing.Rates satisfies it.
    @property
    def input(self) -> Decimal: ...
    @property
    def output(self) -> Decimal: ...
    @property
    def cache_read(self) -> Decimal: ...
    @property
    def cache_write(self) -> Decimal: ...
    @property
    def cache_write_1h(self) -> Decimal: ...
    @property
    def reasoning(self) -> Decimal | None: ...
    @property
    def per_request(self) -> Decimal: ...
    @property
    def tiers(self) -> tuple[tuple[int, Any], ...]: ...


def _scaled(rate: Decimal, k: int) -> int:
    """``rate * 10**k`` as an int, exactly (from the digits: no Decimal context rounding)."""
    _sign, digits, exponent = rate.as_tuple()
    return int("".join(map(str, digits)) or "0") * 10 ** (int(exponent) + k)


class IntRates:
    """A ``Rates`` with every USD-per-million rate scaled to an integer by ``10**k``.

    A call's cost is then ``n = sum(rate_k * tokens)`` in units of
    ``10**-(k+6)`` USD. ``tiers`` are ``(threshold, IntRates)`` ascending, as in
    ``Rates``: a call whose whole prompt exceeds a threshold pays that tier on
    every token. Build with ``compile_rates``.
    """

    __slots__ = ("inp", "k", "out", "per_request", "rates", "read", "reasoning", "saving", "saving_per_token",
                 "tiers", "write", "write_1h")

    def __init__(self, rates: RatesLike, k: int, tiers: tuple[tuple[int, IntRates], ...]) -> None:
        self.rates = rates  # kept for the Decimal path (a sum too large, a per-request fee)
        self.k = k
        self.inp = _scaled(rates.input, k)
        self.out = _scaled(rates.output, k)
        self.read = _scaled(rates.cache_read, k)
        self.write = _scaled(rates.cache_write, k)
        self.write_1h = _scaled(rates.cache_write_1h, k)
        self.reasoning = None if rates.reasoning is None else _scaled(rates.reasoning, k)
        # A fee per call, in the same 10**-(k+6) USD units as a token sum.
        self.per_request = _scaled(rates.per_request, k + 6) if rates.per_request else 0
        # What one cache-read token saves against the plain input rate (0 if nothing).
        self.saving = max(0, self.inp - self.read)
        # The same in money units per token (the common case, k <= 6, is an int multiply per call).
        self.saving_per_token: Money = scaled_to_units(self.saving, k + 6)
        self.tiers = tiers

    def tier(self, prompt_tokens: int) -> IntRates:
        """The rates a call with this many prompt tokens pays (``Rates.for_prompt``'s rule).

        Args:
            prompt_tokens: input + cache_read + cache_write tokens of the call.
        """
        tiers = self.tiers
        if tiers and prompt_tokens > tiers[0][0]:
            for threshold, tier in reversed(tiers):
                if prompt_tokens > threshold:
                    return tier
        return self

    def scaled_cost(self, u: Usage) -> tuple[int, int]:
        """(n, k): the call's cost is ``n * 10**-(k+6)`` USD. Sub-buckets are clamped to their parents.

        Args:
            u: the call's canonical usage (counts >= 0).
        """
        inp, read, write, out = u.input_tokens, u.cache_read_tokens, u.cache_write_tokens, u.output_tokens
        r = self.tier(inp + read + write) if self.tiers else self
        w1h = u.cache_write_1h_tokens
        if w1h > write:
            w1h = write
        n = r.inp * inp + r.read * read + r.write * (write - w1h) + r.write_1h * w1h + r.per_request
        if r.reasoning is None:
            n += r.out * out
        else:
            reasoning = min(u.reasoning_tokens, out)
            n += r.out * (out - reasoning) + r.reasoning * reasoning
        return n, r.k

    def cost_units(self, u: Usage) -> Money:
        """The call's cost in money units (1e-12 USD), exactly ``Rates.cost(u)``.

        Args:
            u: the call's canonical usage.

        Raises:
            ValueError: for a negative token count (as ``Rates.cost``).
        """
        _check(u)
        n, k = self.scaled_cost(u)
        return scaled_to_units(n, k + 6)

    def cost_usd(self, u: Usage) -> Decimal:
        """The call's cost as a Decimal equal to ``Rates.cost(u)``.

        Args:
            u: the call's canonical usage.
        """
        _check(u)
        n, k = self.scaled_cost(u)
        return Decimal(n).scaleb(-(k + 6))

    def cost_text(self, u: Usage) -> str:
        """``format_usd(rates.cost(u))``, digit for digit, trailing zeros included.

        Args:
            u: the call's canonical usage.

        Raises:
            ValueError: for a negative token count (as ``Rates.cost``).
        """
        inp, read, write, out = u.input_tokens, u.cache_read_tokens, u.cache_write_tokens, u.output_tokens
        w1h, reasoning = u.cache_write_1h_tokens, u.reasoning_tokens
        # _check inlined (the recorder prices every call with this): one call fewer.
        if (inp | read | write | out | w1h | reasoning) < 0:
            raise ValueError("negative token count")
        if not self.tiers and not self.per_request:
            # scaled_cost inlined for untiered rates without a fee (the usual rates): 13.1k ->
            # 10.9k instructions a call (valgrind); pinned to scaled_cost by test_money's
            # hypothesis test (cost_text against Rates.cost, digit for digit).
            if w1h > write:
                w1h = write
            n = self.inp * inp + self.read * read + self.write * (write - w1h) + self.write_1h * w1h
            if self.reasoning is None:
                n += self.out * out
            else:
                if reasoning > out:
                    reasoning = out
                n += self.out * (out - reasoning) + self.reasoning * reasoning
            if n >= _DECIMAL_LIMIT:
                return format_usd(self.rates.cost(u))  # type: ignore[attr-defined]
            return _digits(n, self.k)
        n, k = self.scaled_cost(u)
        r = self.tier(inp + read + write) if self.tiers else self
        if n >= _DECIMAL_LIMIT or r.per_request:
            # Decimal would round (28 digits), or a fee changes the sum's exponent:
            # the Decimal arithmetic is the definition, so it answers.
            return format_usd(self.rates.cost(u))  # type: ignore[attr-defined]
        return _digits(n, k)

    def saving_units(self, u: Usage) -> Money:
        """What the call's cache reads saved, in money units: cache_read x (input - cache_read rate).

        The rates are those of the call's tier; 0 when reads cost no less than input.

        Args:
            u: the call's canonical usage.
        """
        read = u.cache_read_tokens
        if read <= 0:
            return 0
        r = self.tier(u.input_tokens + read + u.cache_write_tokens) if self.tiers else self
        return read * r.saving_per_token


def _check(u: Usage) -> None:
    # An int OR is negative iff one of them is (two's complement): cheaper than min() of six.
    if (u.input_tokens | u.cache_read_tokens | u.cache_write_tokens | u.output_tokens
            | u.cache_write_1h_tokens | u.reasoning_tokens) < 0:
        raise ValueError("negative token count")


def _digits(n: int, k: int) -> str:
    """``n * 10**-(k+6)`` written as ``format_usd`` writes the Decimal quotient ``Rates.cost`` makes.

    Decimal's quotient keeps trailing zeros down to ``10**-k`` (the division's
    ideal exponent) and format_usd writes at least 6 places: so
    ``min(trailing zeros of n, k, 6)`` of them go. The rest is one divmod and one
    %-format of the quotient and the zero-padded remainder: 5.8k instructions a
    cost (valgrind), where two ``str()`` and a slice took 6.9k; pinned to that
    sliced version in tests/core/test_money.py.
    """
    if not n:
        return "0." + "0" * max(6, k)
    places = k + 6
    z = k if k < 6 else 6
    while z and not n % 10:
        n //= 10
        places -= 1
        z -= 1
    form = _QUOTIENT_AND_PLACES[places] if places < len(_QUOTIENT_AND_PLACES) else f"%d.%0{places}d"
    return form % divmod(n, POW10[places] if places <= UNIT_PLACES else 10**places)


# "%d.%0<places>d", by places: the format ``_digits`` writes a quotient and remainder with.
_QUOTIENT_AND_PLACES: Final = tuple(f"%d.%0{p}d" for p in range(40))


def _compile(rates: RatesLike) -> IntRates | None:
    values = [rates.input, rates.output, rates.cache_read, rates.cache_write, rates.cache_write_1h]
    if rates.reasoning is not None:
        values.append(rates.reasoning)
    fee = rates.per_request
    if not all(v.is_finite() and v >= 0 and len(v.as_tuple().digits) <= _MAX_RATE_DIGITS for v in values):
        return None  # (a rate of more digits could make Decimal round: leave it to Decimal)
    if fee and not (fee.is_finite() and fee >= 0):
        return None
    exponent = min(int(v.as_tuple().exponent) for v in values)
    if fee:
        exponent = min(exponent, int(fee.as_tuple().exponent) + 6)
    k = max(0, -exponent)
    tiers = []
    for threshold, tier in rates.tiers:
        exact = _compile(tier)
        if exact is None:
            return None
        tiers.append((int(threshold), exact))
    return IntRates(rates, k, tuple(tiers))


# Pricers hand out the same Rates object for a (provider, model, period): the
# compiled form is kept by that object's identity (and the object with it, so
# its id cannot be reused while the entry lives).
_COMPILED: dict[int, tuple[RatesLike, IntRates | None]] = {}
_COMPILED_MAX: Final = 4096


def compile_rates(rates: RatesLike) -> IntRates | None:
    """``rates`` as integer rates, memoised by identity; None when they cannot be mirrored exactly.

    None for a negative or non-finite rate or one of more than 20 digits:
    callers then use ``Rates.cost`` (``cost_text`` below does so by itself).

    Args:
        rates: a ``pricing.Rates`` (or an object with its attributes).
    """
    entry = _COMPILED.get(id(rates))
    if entry is None or entry[0] is not rates:
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.clear()
        entry = _COMPILED[id(rates)] = (rates, _compile(rates))
    return entry[1]


def cost_text(rates: RatesLike, usage: Usage) -> str:
    """``format_usd(rates.cost(usage))``, in integers for the usual rates.

    What ``ingest.formats.exact_cost`` computes: the drop-in replacement.

    Args:
        rates: a ``pricing.Rates``.
        usage: the call's canonical usage.
    """
    exact = compile_rates(rates)
    if exact is None:
        return format_usd(rates.cost(usage))  # type: ignore[attr-defined]
    return exact.cost_text(usage)
