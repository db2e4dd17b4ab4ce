"""A registry token service (the distribution spec's Bearer flow) on loopback for the tests:
Basic credentials in, an ES256 JWT out, its certificate in the registry's rootcertbundle
(docker-registry's `auth: token`). Grants what it is asked for to one user, nothing to others."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from bpfglobals.devcluster.pki import _cert, _name

ISSUER, SERVICE = "bpfglobals-test-issuer", "bpfglobals-test-registry"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@contextmanager
def token_service(state: Path, user: str, password: str) -> Iterator[dict]:
    """Yield the registry's `auth.token` configuration; serve tokens until the block ends."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("bpfglobals test tokens")
    cert = _cert(name, key, name, key)  # self-signed: the registry's root for token signatures
    bundle = state / "token-root.pem"
    bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    good = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def token(scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            repo, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": repo, "actions": actions.split(",")})
        t = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [x5c]}
        claims = {"iss": ISSUER, "sub": user, "aud": SERVICE, "exp": t + 600, "nbf": t - 10,
                  "iat": t, "jti": uuid.uuid4().hex, "access": access}  # fmt: skip
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(key.sign(signing.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Authorization") != good:
                self.send_response(401)
                self.end_headers()
                return
            scopes = parse_qs(urlsplit(self.path).query).get("scope", [])
            body = json.dumps({"token": token(scopes)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {
            "realm": f"http://127.0.0.1:{server.server_address[1]}/token",
            "service": SERVICE,
            "issuer": ISSUER,
            "rootcertbundle": str(bundle),
        }
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
