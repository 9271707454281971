"""A real OTLP/HTTP endpoint for tests: ThreadingHTTPServer decoding with opentelemetry-proto.

Independent of flightdeck's own receiver, so the exporter is checked against
the protocol, not against itself. ``fail_first`` answers that many trace requests
with 503 (to see the exporter retry).
"""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def any_value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    return None if kind is None else getattr(v, kind)


class OtlpSink:
    def __init__(self, fail_first: int = 0) -> None:
        self.spans: list[Any] = []  # (resource attrs, span)
        self.metrics: list[Any] = []  # (metric proto)
        self.requests: list[tuple[str, str]] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with sink.lock:
                    sink.requests.append((self.path, self.headers.get("Content-Type", "")))
                    if sink.fail_first > 0 and self.path == "/v1/traces":
                        sink.fail_first -= 1
                        self.send_response(503)
                        self.send_header("Retry-After", "0")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    if self.path == "/v1/traces":
                        req = ExportTraceServiceRequest()
                        req.ParseFromString(body)
                        for rs in req.resource_spans:
                            res = {kv.key: any_value(kv.value) for kv in rs.resource.attributes}
                            for ss in rs.scope_spans:
                                sink.spans.extend((res, s) for s in ss.spans)
                    elif self.path == "/v1/metrics":
                        mreq = ExportMetricsServiceRequest()
                        mreq.ParseFromString(body)
                        for rm in mreq.resource_metrics:
                            for sm in rm.scope_metrics:
                                sink.metrics.extend(sm.metrics)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def attrs(self, span: Any) -> dict[str, Any]:
        return {kv.key: any_value(kv.value) for kv in span.attributes}
