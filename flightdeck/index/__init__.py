"""The parse-once index: every byte of history parsed once, replayed after.

``store`` keeps one entry per log file in ``$XDG_CACHE_HOME/flightdeck/index``;
``reader.scan_indexed`` is ``ingest.scan.scan`` through it; ``progress`` shows
a cold read's progress on a terminal's stderr. Nothing here imports Textual.
"""

from __future__ import annotations
