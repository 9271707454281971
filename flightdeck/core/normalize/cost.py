"""Provider-reported charges as exact Decimals.

A reported cost arrives as a JSON number (a Python float) or a string.
``Decimal(repr(x))`` keeps the shortest decimal that round-trips the float,
i.e. exactly the digits the provider wrote, where ``Decimal(x)`` would expose
binary noise (0.1 -> 0.1000000000000000055...). No float arithmetic happens.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any


def to_decimal(value: Any, field: str) -> Decimal | None:
    """None when absent; ValueError naming ``field`` when not a non-negative amount."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected a non-negative number, got {value!r}")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{field}: expected a decimal number, got {value[:40]!r}") from None
    else:
        raise ValueError(f"{field}: expected a number, got {type(value).__name__}")
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{field}: expected a non-negative finite amount, got {value!r}")
    return amount
