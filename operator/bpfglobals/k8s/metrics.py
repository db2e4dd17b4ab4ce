"""Prometheus metrics of the operator and the agents, and a /healthz endpoint."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
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
API_LISTS = Counter("bpfglobals_api_lists_total", "LIST requests to the apiserver", ["component"])


STUCK_AFTER = 300.0  # seconds one reconcile may take before /healthz turns red


class Health:
    """Healthy while the watch loop keeps reporting in (`beat`) within `grace` seconds, the
    worker thread is alive, and no reconcile has been running for `stuck_after` seconds (a
    load takes milliseconds to seconds; one that hangs, e.g. on a bpf(2) call or a download
    without progress, leaves the node unconverged, so kubelet should restart the agent)."""

    def __init__(self, grace: float = 120, stuck_after: float = STUCK_AFTER) -> None:
        self.grace = grace
        self.stuck_after = stuck_after
        self.last = time.monotonic()
        self._worker: threading.Thread | None = None
        self._busy: tuple[str, float] | None = None  # what the worker does, since when

    def beat(self) -> None:
        self.last = time.monotonic()

    def watch_worker(self, thread: threading.Thread) -> None:
        self._worker = thread

    @contextlib.contextmanager
    def working(self, what: str) -> Iterator[None]:
        self._busy = (what, time.monotonic())
        try:
            yield
        finally:
            self._busy = None

    def problem(self) -> str | None:
        """Why the process is unhealthy, or None."""
        now = time.monotonic()
        if now - self.last >= self.grace:
            return f"the watch loop has not reported for {now - self.last:.0f}s"
        if self._worker is not None and not self._worker.is_alive():
            return "the reconcile worker thread has exited"
        busy = self._busy
        if busy is not None and now - busy[1] >= self.stuck_after:
            return f"reconciling {busy[0]} for {now - busy[1]:.0f}s (stuck)"
        return None

    def ok(self) -> bool:
        return self.problem() is None


def serve(addr: str, metrics_port: int, health_port: int, health: Health) -> None:
    """Metrics on `metrics_port`, /healthz on `health_port` (0 disables either)."""
    if metrics_port:
        start_http_server(metrics_port, addr=addr)
    if health_port:
        serve_health(addr, health_port, health)


def serve_health(addr: str, port: int, health: Health) -> Callable[[], None]:
    """/healthz on `port`; returns the function that stops it and frees the port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            why = health.problem() if self.path == "/healthz" else "not found"
            self.send_response(200 if why is None else 503)
            self.end_headers()
            self.wfile.write(b"ok\n" if why is None else f"unhealthy: {why}\n".encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((addr, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop
