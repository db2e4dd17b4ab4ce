"""The admission webhook's HTTPS server: AdmissionReviews in, `Reviewer` verdicts out.

A threading server in the operator process (beside kopf's event loop, which it never blocks).
The certificate can be replaced while serving (`use`): new connections get the new one.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import Histogram

from bpfglobals.k8s.admission import Reviewer
from bpfglobals.k8s.webhook_config import PATH
from bpfglobals.k8s.webhook_tls import ServingCert

log = logging.getLogger("bpfglobals.webhook")
MAX_BODY = 8 << 20
LATENCY = Histogram("bpfglobals_webhook_seconds", "Time to decide one AdmissionReview", ["allowed"])


def _memory_file(data: bytes) -> int:
    fd = os.memfd_create("bpfglobals-webhook-tls", os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    return fd


class WebhookServer:
    def __init__(self, reviewer: Reviewer, addr: str, port: int, cert: ServingCert) -> None:
        self.reviewer = reviewer
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.use(cert)
        self.httpd = ThreadingHTTPServer((addr, port), self._handler())
        self.httpd.daemon_threads = True
        self.httpd.socket = self.context.wrap_socket(
            # the handshake on the request's thread, not in accept(): one slow client must
            # not hold up the others
            self.httpd.socket,
            server_side=True,
            do_handshake_on_connect=False,
        )
        self.port = self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    def use(self, cert: ServingCert) -> None:
        """Serve `cert` from now on. ssl loads a chain from files only: memory files, since
        the operator's container has a read-only root and nothing should hold the key on disk."""
        crt, key = _memory_file(cert.cert_pem), _memory_file(cert.key_pem)
        try:
            self.context.load_cert_chain(f"/proc/self/fd/{crt}", f"/proc/self/fd/{key}")
        finally:
            os.close(crt)
            os.close(key)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, daemon=True, name="webhook"
        )
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        reviewer = self.reviewer

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the apiserver reuses connections
            # headers and body leave as separate writes: with Nagle's algorithm the body
            # waited for the client's delayed ACK, ~40 ms per review (measured)
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                start = time.perf_counter()
                length = int(self.headers.get("Content-Length") or 0)
                if self.path.split("?")[0] != PATH or not 0 < length <= MAX_BODY:
                    self._send(404 if self.path.split("?")[0] != PATH else 400, b"{}")
                    return
                try:
                    review = json.loads(self.rfile.read(length))
                except ValueError:
                    self._send(400, b'{"error": "not JSON"}')
                    return
                answer = reviewer.review(review)
                allowed = answer["response"]["allowed"]
                self._send(200, json.dumps(answer).encode())
                LATENCY.labels(str(allowed).lower()).observe(time.perf_counter() - start)

            def _send(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler
