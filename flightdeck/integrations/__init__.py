"""Adapters that feed other libraries' telemetry into a ``Recorder``.

``litellm.FlightdeckLogger`` (a LiteLLM ``CustomLogger``) and ``otel.FlightdeckSpanExporter``
(an OpenTelemetry ``SpanExporter``). Each imports its library only when imported
itself: ``import flightdeck`` imports neither.
"""
