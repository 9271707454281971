"""Which series a chart draws: short bins for a young run, minutes for an older one.

A run 60 s old has one minute point (one bar); the engine also keeps
per-second bins for the last half hour and picks a bin width that gives
about a hundred bars over the run so far. Every chart takes its points from
here, so the spend, cache and TTFT charts always agree on their bins.
"""

from __future__ import annotations

from flightdeck.cockpit.format import bin_label
from flightdeck.core.snapshot import MinutePoint, Snapshot


def chart_points(snap: Snapshot) -> tuple[tuple[MinutePoint, ...], str]:
    """(points oldest first, the label of one bar such as ``/5s`` or ``/min``)."""
    if snap.fine_step and snap.fine_series:
        return snap.fine_series, bin_label(snap.fine_step)
    return snap.series, bin_label(60)
