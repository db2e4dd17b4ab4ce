"""/healthz and /metrics as the operator and the agents serve them."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

from bpfglobals.k8s.metrics import RECONCILES, Health, serve


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_health_and_metrics_endpoints() -> None:
    metrics, health_port = free_port(), free_port()
    health = Health(grace=0.5)
    serve("127.0.0.1", metrics, health_port, health)
    RECONCILES.labels("agent", "ok").inc()
    assert get(f"http://127.0.0.1:{health_port}/healthz") == (200, "ok\n")
    status, text = get(f"http://127.0.0.1:{metrics}/metrics")
    assert status == 200
    assert 'bpfglobals_reconcile_total{component="agent",result="ok"}' in text
    assert "bpfglobals_loaded_programs" in text and "bpfglobals_reconcile_seconds" in text
    time.sleep(0.6)  # no heartbeat within the grace period: unhealthy
    assert get(f"http://127.0.0.1:{health_port}/healthz")[0] == 503
    health.beat()
    assert get(f"http://127.0.0.1:{health_port}/healthz")[0] == 200
    assert get(f"http://127.0.0.1:{health_port}/other")[0] == 503
