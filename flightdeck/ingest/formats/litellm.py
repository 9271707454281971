"""LiteLLM StandardLoggingPayload lines (logging callbacks, proxy logs)."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from flightdeck.core.events import KIND_LLM_CALL, Event, Latency, Rejected
from flightdeck.ingest.formats.common import ParseResult, num, priced, span_ms


class LiteLLM:
    """One StandardLoggingPayload per line (LiteLLM's logging callbacks, proxy logs).

    Usage through ``normalize_usage("litellm", payload)``; the cost LiteLLM
    computed (``response_cost``) is what the proxy charged, so it is passed to
    ``price`` as the reported cost.
    """

    name = "litellm"

    def parse(self, line: bytes) -> ParseResult:
        try:
            payload = msgspec.json.decode(line)
        except msgspec.DecodeError as exc:
            return Rejected("not json", str(exc)[:200])
        if not isinstance(payload, dict):
            return Rejected("not an object", "litellm line is not an object")
        from flightdeck.core.normalize import normalize_usage, reported_cost
        from flightdeck.core.normalize.litellm import payload_model, payload_provider

        try:
            usage = normalize_usage("litellm", payload)
        except ValueError as exc:
            return Rejected("bad litellm usage", str(exc))
        model = payload_model(payload) or payload.get("model_group") or "unknown"
        provider = payload_provider(payload) or "litellm"
        start = num(payload.get("startTime"))
        end = num(payload.get("endTime"))
        first = num(payload.get("completionStartTime"))
        ts = end if end is not None else start
        if ts is None:
            return Rejected("missing startTime", "litellm payload without startTime/endTime")
        try:
            reported = reported_cost("litellm", payload)
        except ValueError:
            reported = None
        cost, status = priced(str(provider), str(model), usage, ts, route="proxy", reported=reported)
        stream = bool(payload.get("stream"))
        latency = _litellm_latency(start, first, end, stream)
        raw_meta = payload.get("metadata")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        run = payload.get("trace_id") or meta.get("session_id") or "litellm"
        agent = payload.get("end_user") or meta.get("user_api_key_alias") or "litellm"
        error = payload.get("error_str") if payload.get("status") == "failure" else None
        event_id = payload.get("id") or "ll-" + hashlib.blake2b(line, digest_size=8).hexdigest()
        return [
            Event(
                v=1,
                ts=ts,
                kind=KIND_LLM_CALL,
                id=str(event_id),
                run=str(run),
                agent=str(agent),
                provider=str(provider),
                route="proxy",
                model=str(model),
                stream=stream,
                usage=usage,
                cost_usd=cost,
                cost_status=status,
                latency_ms=latency,
                error=str(error) if error else None,
            )
        ]



def _litellm_latency(start: float | None, first: float | None, end: float | None, stream: bool) -> Latency:
    if stream and first is not None and first != end:
        return Latency(ttft=span_ms(start, first), gen=span_ms(first, end), total=span_ms(start, end))
    return Latency(gen=span_ms(start, end), total=span_ms(start, end))
