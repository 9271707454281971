"""flightdeck's own JSON Lines (SPEC section 1): ``decode_line`` does it all."""

from __future__ import annotations

from flightdeck.core.events import Rejected, decode_line
from flightdeck.ingest.formats.common import ParseResult


class FlightdeckV1:
    name = "flightdeck-v1"

    def parse(self, line: bytes) -> ParseResult:
        result = decode_line(line)
        if isinstance(result, Rejected):
            return result
        return [result]
