"""Prometheus metrics of the operator and the agents, and a /healthz endpoint."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter(
    "bpfglobals_reconcile_total", "Reconciles by component and result", ["component", "result"]
)
DURATION = Histogram("bpfglobals_reconcile_seconds", "Reconcile duration", ["component"])
LOADED = Gauge("bpfglobals_loaded_programs", "BpfPrograms applied on this node")
API_WRITES = Counter(
    "bpfglobals_api_writes_total", "Writes to the apiserver", ["component", "kind"]
)


class Health:
    """Healthy while the main loop keeps reporting in (`beat`) within `grace` seconds."""

    def __init__(self, grace: float = 120) -> None:
        self.grace = grace
        self.last = time.monotonic()

    def beat(self) -> None:
        self.last = time.monotonic()

    def ok(self) -> bool:
        return time.monotonic() - self.last < self.grace


def serve(addr: str, metrics_port: int, health_port: int, health: Health) -> None:
    """Metrics on `metrics_port`, /healthz on `health_port` (0 disables either)."""
    if metrics_port:
        start_http_server(metrics_port, addr=addr)
    if health_port:

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                good = self.path == "/healthz" and health.ok()
                self.send_response(200 if good else 503)
                self.end_headers()
                self.wfile.write(b"ok\n" if good else b"unhealthy\n")

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer((addr, health_port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
