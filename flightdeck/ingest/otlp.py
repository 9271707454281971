"""OTLP/HTTP receiver: ``flightdeck tail --otlp HOST:PORT``.

Any OpenTelemetry SDK or Collector can send here (the standard paths
``/v1/traces``, ``/v1/logs``, ``/v1/metrics``; ``application/x-protobuf`` or
``application/json`` bodies, optionally gzip). Bodies are decoded with the
official ``opentelemetry-proto`` messages (``google.protobuf.json_format`` for
JSON, after turning OTLP JSON's hex trace/span ids into the base64 the proto
JSON mapping expects); the HTTP side is the standard library's
``ThreadingHTTPServer``. GenAI spans and the agent CLIs' log events become
events through ``ingest.genai_spans``, the one mapping.

Bounded, so a flooding client costs it nothing it cannot afford:
- a body over ``max_body`` bytes (compressed or after gunzip) gets 413 and is not read;
- decoded requests wait in a queue bounded in bytes; when it is full the
  sender gets 503 with ``Retry-After`` (OTLP senders retry after it);
- wrong content type 415, corrupt body 400, unknown path 404;
- at most ``MAX_CONNECTIONS`` connections (one thread each); more get 503 at
  once, and one idle for ``IDLE_TIMEOUT_S`` mid-request is closed.
Each refusal is counted by reason (``rejected``) and reported to the engine,
so it shows in the snapshot's rejected reasons and notices.

Requires the ``otel`` extra (``pip install 'flightdeck[otel]'``).
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import queue
import socket
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from flightdeck.core.events import Event, Rejected
from flightdeck.ingest.genai_spans import LogRecord, SpanRecord, log_to_event, span_to_event

log = logging.getLogger(__name__)

INSTALL_HINT = "OpenTelemetry support needs the otel extra: pip install 'flightdeck[otel]'"
DEFAULT_PORT = 4318
MAX_BODY = 16 << 20  # 16 MiB: well over an SDK batch (512 spans) with big attributes
# Wire bytes of the decoded requests waiting for the engine (in memory they take ~5x).
# 8 MiB is ~30,000 GenAI spans: a few seconds of backlog at the rate one core
# converts (benchmarks/bench_otlp.py), so a flood is refused (503) instead of
# turning into a lag that grows.
MAX_QUEUE_BYTES = 8 << 20
RETRY_AFTER_S = 1
MAX_CONNECTIONS = 256  # one thread each: beyond this a new connection is refused at once
IDLE_TIMEOUT_S = 30.0  # a connection that sends nothing for this long is closed (slow clients)
_JSON = "application/json"
_PROTOBUF = "application/x-protobuf"
_PATHS = {"/v1/traces": "traces", "/v1/logs": "logs", "/v1/metrics": "metrics"}

Batch = Callable[[list[Event], list[Rejected]], None]


class OtelMissing(RuntimeError):
    """The otel extra is not installed."""


def _messages() -> dict[str, Any]:
    try:
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    except ImportError as exc:
        raise OtelMissing(INSTALL_HINT) from exc
    return {
        "traces": (trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse),
        "logs": (logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
        "metrics": (metrics_service_pb2.ExportMetricsServiceRequest,
                    metrics_service_pb2.ExportMetricsServiceResponse),
    }


# --- host:port ------------------------------------------------------------------------


def parse_bind(text: str, default_port: int) -> tuple[str, int, bool]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` -> (host, port, loopback). No host means 127.0.0.1.

    A non-loopback host is accepted only because the user typed it; the caller warns.
    ValueError with a clear message on anything else.
    """
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ValueError(f"{text!r}: the port must be a number (HOST:PORT)") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"{text!r}: port {port} is out of range")
    return host, port, is_loopback(host)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_warning(flag: str, host: str, port: int) -> str:
    """What to say when a listener is bound beyond loopback."""
    return (f"warning: {flag} {host}:{port} listens beyond this machine: anyone who can reach the port "
            f"can send (or read) telemetry; put it behind a firewall or a Collector with auth")


# --- protobuf -> records ---------------------------------------------------------------


def _any(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _any(kv.value) for kv in kvs}


def spans_of(request: Any) -> list[SpanRecord]:
    """The spans of an ``ExportTraceServiceRequest`` as neutral records."""
    out: list[SpanRecord] = []
    for rs in request.resource_spans:
        resource = _attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            for span in ss.spans:
                out.append(SpanRecord(
                    name=span.name,
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    attributes=_attrs(span.attributes),
                    resource=resource,
                    status_error=span.status.code == 2,  # STATUS_CODE_ERROR
                    status_message=span.status.message,
                ))
    return out


def logs_of(request: Any) -> list[LogRecord]:
    """The log records of an ``ExportLogsServiceRequest`` as neutral records."""
    out: list[LogRecord] = []
    for rl in request.resource_logs:
        resource = _attrs(rl.resource.attributes)
        for sl in rl.scope_logs:
            for rec in sl.log_records:
                out.append(LogRecord(
                    time_ns=rec.time_unix_nano,
                    observed_ns=rec.observed_time_unix_nano,
                    body=_any(rec.body) if rec.HasField("body") else None,
                    attributes=_attrs(rec.attributes),
                    resource=resource,
                    event_name=getattr(rec, "event_name", "") or "",
                ))
    return out


def metric_points(request: Any) -> int:
    """How many data points an ``ExportMetricsServiceRequest`` carries (counted, not turned into events)."""
    n = 0
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    n += len(getattr(metric, kind).data_points)
    return n


_ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _hex_ids_to_base64(node: Any) -> None:
    """OTLP JSON writes trace and span ids as hex; proto JSON wants base64. Converted in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str) and value:
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
                except ValueError:
                    raise ValueError(f"{key} {value[:40]!r} is not hex") from None
            elif isinstance(value, (dict, list)):
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)


def decode_body(signal: str, body: bytes, content_type: str) -> Any:
    """The request message of ``signal`` from a body; ValueError on a corrupt one."""
    request_cls = _messages()[signal][0]
    message = request_cls()
    if content_type == _PROTOBUF:
        try:
            message.ParseFromString(body)
        except Exception as exc:  # google.protobuf.message.DecodeError
            raise ValueError(f"not a protobuf {request_cls.__name__}: {exc}") from None
        return message
    import json

    from google.protobuf import json_format

    try:
        doc = json.loads(body)
        if not isinstance(doc, dict):
            raise ValueError("the body is not a JSON object")
        _hex_ids_to_base64(doc)
        json_format.ParseDict(doc, message, ignore_unknown_fields=True)
    except (ValueError, json_format.ParseError, RecursionError) as exc:
        raise ValueError(f"not an OTLP JSON {request_cls.__name__}: {str(exc)[:200]}") from None
    return message


def _gunzip(body: bytes, limit: int) -> bytes:
    """Decompress at most ``limit`` bytes (a zip bomb stops there); ValueError past it or if corrupt."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ValueError(f"corrupt gzip body: {exc}") from None
    if len(out) > limit or d.unconsumed_tail:
        raise OverflowError(f"the body inflates beyond {limit} bytes")
    return out


# --- the server ---------------------------------------------------------------------------


@dataclass(slots=True)
class OtlpStats:
    """Counters a snapshot shows (read without a lock: each is one int)."""

    requests: int = 0
    spans: int = 0
    logs: int = 0
    metric_points: int = 0
    events: int = 0
    ignored: int = 0  # spans and records that are not model calls
    queue_full: int = 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    receiver: OtlpReceiver
    slots: threading.BoundedSemaphore

    def process_request(self, request: Any, client_address: Any) -> None:
        # Threads are memory: a flood of connections is refused, not given a thread each.
        if not self.slots.acquire(blocking=False):
            self.receiver._rejected("otlp too many connections", f"more than {MAX_CONNECTIONS} open")
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
                                b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive: SDK exporters reuse their connection
    timeout = IDLE_TIMEOUT_S  # socket timeout: a client that stalls mid-request is dropped

    def log_message(self, format: str, *args: Any) -> None:  # the base class names it format
        pass  # the cockpit owns the terminal; refusals are counted instead

    def _reply(self, code: int, body: bytes = b"", content_type: str = _PROTOBUF,
               headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _refuse(self, code: int, reason: str, detail: str, *, close: bool = False,
                headers: dict[str, str] | None = None) -> None:
        self.server.receiver._rejected(reason, detail)
        if close:
            self.close_connection = True
            headers = {**(headers or {}), "Connection": "close"}
        self._reply(code, detail.encode("utf-8", "replace")[:500], "text/plain; charset=utf-8", headers)

    def do_GET(self) -> None:
        self._refuse(405, "otlp method", f"GET {self.path[:100]}: OTLP/HTTP takes POST")

    def do_POST(self) -> None:
        receiver = self.server.receiver
        signal = _PATHS.get(self.path.split("?", 1)[0])
        length_text = self.headers.get("Content-Length")
        try:
            length = int(length_text) if length_text is not None else -1
        except ValueError:
            length = -1
        if length < 0:
            # Chunked or unknown length: not read, so the connection cannot be reused.
            self._refuse(411, "otlp no length", "Content-Length is required", close=True)
            return
        if length > receiver.max_body:
            self._refuse(413, "otlp body too large", f"{length} bytes > {receiver.max_body}", close=True)
            return
        body = self.rfile.read(length)  # read even when refusing below, so keep-alive stays in step
        if signal is None:
            self._refuse(404, "otlp path", f"{self.path[:100]} is not /v1/traces, /v1/logs or /v1/metrics")
            return
        content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if content_type not in (_PROTOBUF, _JSON):
            self._refuse(415, "otlp content type", f"{content_type or 'none'}: send {_PROTOBUF} or {_JSON}")
            return
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        try:
            if encoding == "gzip":
                body = _gunzip(body, receiver.max_body)
            elif encoding not in ("identity", ""):
                self._refuse(415, "otlp content encoding", f"{encoding}: send gzip or none")
                return
            message = decode_body(signal, body, content_type)
        except OverflowError as exc:
            self._refuse(413, "otlp body too large", str(exc))
            return
        except ValueError as exc:
            self._refuse(400, "otlp corrupt body", str(exc))
            return
        if not receiver._enqueue(signal, message, len(body)):
            self._refuse(503, "otlp queue full", "the monitor is behind; retry later",
                         headers={"Retry-After": str(RETRY_AFTER_S)})
            return
        response = _messages()[signal][1]()
        if content_type == _JSON:
            self._reply(200, b"{}", _JSON)
        else:
            self._reply(200, response.SerializeToString(), _PROTOBUF)


class OtlpReceiver:
    """The OTLP/HTTP server and the thread that turns what it decoded into events.

    ``on_batch(events, rejects)`` is called from one consumer thread (the engine
    counts there); refusals are passed as ``Rejected`` from the handler threads.
    """

    def __init__(self, host: str, port: int, on_batch: Batch, *,
                 on_notice: Callable[[str], None] | None = None,
                 max_body: int = MAX_BODY, max_queue_bytes: int = MAX_QUEUE_BYTES,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        _messages()  # fail now, with the install hint, if the extra is missing
        self.host = host
        self.port = port
        self.on_batch = on_batch
        self.on_notice = on_notice
        self.max_body = max_body
        self.max_queue_bytes = max_queue_bytes
        self.max_connections = max_connections
        self.stats = OtlpStats()
        self.rejected: dict[str, int] = {}
        self._queue: queue.SimpleQueue[tuple[str, Any, int] | None] = queue.SimpleQueue()
        self._queued_bytes = 0
        self._qlock = threading.Lock()
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._last_full_notice = 0.0

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port): the real port when 0 was asked for."""
        if self._server is None:
            return self.host, self.port
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def connections(self) -> int:
        """Connections open now."""
        server = self._server
        if server is None:
            return 0
        return self.max_connections - server.slots._value

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def start(self) -> None:
        """Bind (OSError here if the port is taken) and serve on daemon threads."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server_cls = type("_BoundServer", (_Server,), {"address_family": family})
        server = server_cls((self.host, self.port), _Handler)
        server.receiver = self
        server.slots = threading.BoundedSemaphore(self.max_connections)
        self._server = server
        serve = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                 name="flightdeck-otlp-http", daemon=True)
        consume = threading.Thread(target=self._consume, name="flightdeck-otlp-ingest", daemon=True)
        self._threads = [serve, consume]
        serve.start()
        consume.start()

    def stop(self) -> None:
        server = self._server
        if server is not None:
            server.shutdown()
            server.server_close()
        self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        self._server = None

    # -- handler side ------------------------------------------------------------------
    def _rejected(self, reason: str, detail: str) -> None:
        with self._qlock:  # handler threads refuse concurrently
            self.rejected[reason] = self.rejected.get(reason, 0) + 1
        try:
            self.on_batch([], [Rejected(reason, detail[:300])])
        except Exception:
            log.exception("counting an OTLP refusal failed")

    def _enqueue(self, signal: str, message: Any, size: int) -> bool:
        with self._qlock:
            if self._queued_bytes + size > self.max_queue_bytes and self._queued_bytes > 0:
                self.stats.queue_full += 1
                now = time.monotonic()
                notify = now - self._last_full_notice > 5.0
                if notify:
                    self._last_full_notice = now
            else:
                self._queued_bytes += size
                self._queue.put((signal, message, size))
                self.stats.requests += 1
                return True
        if notify and self.on_notice is not None:
            self.on_notice(f"OTLP queue full ({self.max_queue_bytes >> 20} MiB): senders told to retry "
                           f"({self.stats.queue_full} refused so far)")
        return False

    # -- consumer side -----------------------------------------------------------------
    def _consume(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            signal, message, size = item
            try:
                events, rejects = self._convert(signal, message)
                if events or rejects:
                    self.on_batch(events, rejects)
            except Exception as exc:  # one bad request must not end ingest
                if self.on_notice is not None:
                    self.on_notice(f"OTLP ingest error: {type(exc).__name__}: {exc}")
            finally:
                with self._qlock:
                    self._queued_bytes -= size

    def _convert(self, signal: str, message: Any) -> tuple[list[Event], list[Rejected]]:
        events: list[Event] = []
        rejects: list[Rejected] = []
        stats = self.stats
        if signal == "metrics":
            stats.metric_points += metric_points(message)
            return events, rejects
        results: list[Event | Rejected | None]
        if signal == "traces":
            spans = spans_of(message)
            stats.spans += len(spans)
            results = [span_to_event(s) for s in spans]
        else:
            records = logs_of(message)
            stats.logs += len(records)
            results = [log_to_event(r) for r in records]
        for result in results:
            if result is None:
                stats.ignored += 1
            elif isinstance(result, Rejected):
                rejects.append(result)
            else:
                events.append(result)
        stats.events += len(events)
        return events, rejects
