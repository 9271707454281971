"""Aggregation: events in, ``Snapshot`` out, each figure computed in one place.

* ``accumulator``: ``Acc``, the figures of one slice of calls, and
  ``add_call``, the one way a call is counted into one.
* ``windows``: the last hour by second of event time: sliding windows, burn
  rates, the minute series, the end-of-hour/day projections.
* ``ledger``: commands and acks, alerts, rejects (whatever the filter).
* ``aggregator``: the ``Aggregator`` that composes them.

Money units and compiled integer rates live in ``flightdeck.core.money``.
"""

from flightdeck.core.aggregate.accumulator import Acc, add_call
from flightdeck.core.aggregate.aggregator import FUTURE_SKEW, MAX_GROUPS, NONE_KEY, Aggregator, RatesFn
from flightdeck.core.aggregate.ledger import MAX_REASONS, OTHER, Ledger
from flightdeck.core.aggregate.windows import HORIZON, PROJECTION_BASIS, SERIES_MINUTES, Windows
from flightdeck.core.money import UNIT, Money, cost_units, units_to_usd

__all__ = [
    "FUTURE_SKEW",
    "HORIZON",
    "MAX_GROUPS",
    "MAX_REASONS",
    "NONE_KEY",
    "OTHER",
    "PROJECTION_BASIS",
    "SERIES_MINUTES",
    "UNIT",
    "Acc",
    "Aggregator",
    "Ledger",
    "Money",
    "RatesFn",
    "Windows",
    "add_call",
    "cost_units",
    "units_to_usd",
]
