"""The few calls of the OCI distribution API this project needs, over urllib.

Pull: manifests (by tag or digest, with Accept headers for OCI and Docker types), blobs by
digest (their size checked against a limit before the download, read in bounded chunks, the
digest verified), referrers. Push: blob upload (POST + PUT) and manifest PUT. Auth: the
registry's challenge decides, Bearer tokens (with Basic credentials when given) or Basic.
Connection errors, 429 and 5xx are retried with exponential backoff; other answers are final.
Redirects (blob storage) are followed without the Authorization header on another host.

Why not a client library: the Python OCI clients pull whole layers to files and check sizes
after the fact; these calls are short and the limits must hold before a byte is downloaded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bpfglobals.node.elf_source_errors import ElfSourceError
from bpfglobals.node.oci.formats import INDEXES, MANIFESTS, OCI_INDEX, Descriptor
from bpfglobals.node.oci.reference import ImageRef, base_url

MAX_MANIFEST = 4 << 20  # the distribution spec's recommended manifest limit
CHUNK = 1 << 16
ACCEPT = ", ".join((*MANIFESTS, *INDEXES))
USER_AGENT = "bpfglobals"


class RegistryError(ElfSourceError):
    """A registry answered no, could not be reached, or sent something that does not verify."""

    def __init__(self, message: str, status: int | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.status = status
        # unreachable, 429 or 5xx after every retry: worth asking again later
        self.transient = transient


class NotFound(RegistryError):
    """The manifest, tag or blob is not in the registry (404)."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@dataclass
class Retry:
    attempts: int = 4
    delay: float = 0.5  # doubles after each failed attempt
    sleep: Callable[[float], None] = time.sleep


@dataclass
class Fetched:
    media_type: str
    data: bytes
    digest: str


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _NoAuthOnOtherHost(urllib.request.HTTPRedirectHandler):
    """Follow redirects; a token for the registry is never sent to the storage it redirects to."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != req.host:
            new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_NoAuthOnOtherHost())


@dataclass
class Registry:
    """One registry host. `insecure`: plain HTTP for a non-loopback host (loopback always is)."""

    ref: ImageRef
    credentials: Credentials | None = None
    insecure: bool = False
    timeout: float = 30.0
    retry: Retry = field(default_factory=Retry)
    bytes_in: int = 0  # bytes read from the registry (manifests and blobs): measured per rollout
    _auth: str | None = None  # the Authorization header that last worked

    @property
    def base(self) -> str:
        return base_url(self.ref, self.insecure)

    # -- pull ---------------------------------------------------------------------------------

    def manifest(self, repository: str, reference: str) -> Fetched:
        """A manifest or index by tag or digest; a digest reference is verified."""
        url = f"{self.base}/v2/{repository}/manifests/{reference}"
        status, headers, data = self._request("GET", url, {"Accept": ACCEPT}, limit=MAX_MANIFEST)
        if status == 404:
            raise NotFound(f"{self.ref.registry}/{repository}:{reference}: manifest not found", 404)
        self._expect(status, 200, url, data)
        digest = sha256_digest(data)
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryError(
                f"{self.ref.registry}/{repository}@{reference}: the registry sent a manifest "
                f"whose digest is {digest}"
            )
        return Fetched(headers.get("Content-Type", ""), data, digest)

    def blob(self, repository: str, d: Descriptor, limit: int) -> bytes:
        """A blob by digest: refused above `limit` before its download, verified after it."""
        where = f"{self.ref.registry}/{repository} blob {d.digest}"
        if d.size > limit:
            raise RegistryError(f"{where}: {d.size} bytes, over the {limit}-byte limit")
        url = f"{self.base}/v2/{repository}/blobs/{d.digest}"
        status, _, data = self._request("GET", url, {}, limit=min(limit, d.size))
        if status == 404:
            raise NotFound(f"{where}: blob not found", 404)
        self._expect(status, 200, url, data)
        if len(data) != d.size or sha256_digest(data) != d.digest:
            raise RegistryError(
                f"{where}: the blob does not match its descriptor (got {len(data)} bytes, "
                f"digest {sha256_digest(data)}; expected {d.size} bytes)"
            )
        return data

    def referrers(self, repository: str, digest: str) -> list[Mapping[str, Any]]:
        """The OCI 1.1 referrers of `digest`: the referrers API, else the fallback tag
        `sha256-<hex>` (an index) that clients write where the registry has no such API."""
        url = f"{self.base}/v2/{repository}/referrers/{digest}"
        status, headers, data = self._request("GET", url, {"Accept": OCI_INDEX}, MAX_MANIFEST)
        ctype = headers.get("Content-Type", "")
        if status == 200 and ctype.startswith(OCI_INDEX):
            index = json.loads(data)
        elif status in (404, 400, 405) or (status == 200 and not ctype.startswith(OCI_INDEX)):
            try:
                fetched = self.manifest(repository, digest.replace(":", "-"))
            except NotFound:
                return []
            index = json.loads(fetched.data)
        else:
            self._expect(status, 200, url, data)
            return []
        return [m for m in index.get("manifests") or [] if isinstance(m, Mapping)]

    # -- push ---------------------------------------------------------------------------------

    def push_blob(self, repository: str, data: bytes) -> str:
        digest = sha256_digest(data)
        head, _, _ = self._request("HEAD", f"{self.base}/v2/{repository}/blobs/{digest}", {}, 0)
        if head == 200:
            return digest
        url = f"{self.base}/v2/{repository}/blobs/uploads/"
        status, headers, body = self._request("POST", url, {}, limit=1 << 16, data=b"")
        self._expect(status, 202, url, body)
        location = urllib.parse.urljoin(url, headers.get("Location", ""))
        sep = "&" if "?" in location else "?"
        put = f"{location}{sep}digest={urllib.parse.quote(digest)}"
        hdrs = {"Content-Type": "application/octet-stream"}
        status, _, body = self._request("PUT", put, hdrs, limit=1 << 16, data=data)
        self._expect(status, 201, put, body)
        return digest

    def push_manifest(self, repository: str, tag: str, data: bytes, mtype: str) -> str:
        url = f"{self.base}/v2/{repository}/manifests/{tag}"
        hdrs = {"Content-Type": mtype}
        status, _, body = self._request("PUT", url, hdrs, limit=1 << 16, data=data)
        self._expect(status, 201, url, body)
        return sha256_digest(data)

    # -- HTTP ---------------------------------------------------------------------------------

    def _expect(self, status: int, want: int, url: str, body: bytes) -> None:
        if status == want:
            return
        detail = _error_text(body)
        if status in (401, 403):
            who = "with the pull secret's credentials" if self.credentials else "anonymously"
            raise RegistryError(f"{url}: access denied {who} ({status}{detail})", status)
        if status == 404:
            raise NotFound(f"{url}: not found{detail}", status)
        raise RegistryError(f"{url}: HTTP {status}{detail}", status)

    def _request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        limit: int,
        data: bytes | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One request with auth and retries: (status, headers, body up to `limit` bytes)."""
        delay = self.retry.delay
        for attempt in range(1, self.retry.attempts + 1):
            try:
                status, hdrs, body = self._once(method, url, headers, limit, data)
                if status == 401:
                    challenge = hdrs.get("WWW-Authenticate", "")
                    if self._authenticate(challenge):
                        status, hdrs, body = self._once(method, url, headers, limit, data)
                if status != 429 and status < 500:
                    return status, hdrs, body
                failure = f"HTTP {status}{_error_text(body)}"
            except (OSError, urllib.error.URLError) as e:
                failure = str(getattr(e, "reason", e))
            if attempt == self.retry.attempts:
                raise RegistryError(
                    f"registry {self.ref.registry} unreachable or failing after {attempt} "
                    f"attempts ({method} {url}: {failure})",
                    transient=True,
                )
            self.retry.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def _once(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        limit: int,
        data: bytes | None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("User-Agent", USER_AGENT)
        for k, v in headers.items():
            req.add_header(k, v)
        if self._auth:
            req.add_header("Authorization", self._auth)
        try:
            resp = _OPENER.open(req, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            resp = e
        with resp:
            body = bytearray()
            while method != "HEAD":
                chunk = resp.read(CHUNK)
                if not chunk:
                    break
                body += chunk
                if len(body) > limit:
                    raise RegistryError(f"{method} {url}: more than the {limit} bytes expected")
            self.bytes_in += len(body)
            return resp.status, resp.headers, bytes(body)

    def _authenticate(self, challenge: str) -> bool:
        """Answer a 401's challenge; False when there is nothing new to try."""
        scheme, _, params = challenge.partition(" ")
        basic = None
        if self.credentials is not None:
            pair = f"{self.credentials.username}:{self.credentials.password}".encode()
            basic = "Basic " + base64.b64encode(pair).decode()
        if scheme.lower() == "basic":
            if basic is None or self._auth == basic:
                return False
            self._auth = basic
            return True
        if scheme.lower() != "bearer":
            return False
        p = dict(re.findall(r'(\w+)="([^"]*)"', params))
        if "realm" not in p:
            return False
        query = {k: p[k] for k in ("service", "scope") if k in p}
        url = p["realm"] + ("?" + urllib.parse.urlencode(query) if query else "")
        req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        if basic:
            req.add_header("Authorization", basic)
        try:
            with _OPENER.open(req, timeout=self.timeout) as r:
                doc = json.loads(r.read(1 << 20))
        except urllib.error.HTTPError as e:
            raise RegistryError(
                f"token service {p['realm']}: HTTP {e.code} "
                f"({'credentials refused' if basic else 'anonymous access refused'})",
                e.code,
            ) from None
        except (OSError, ValueError) as e:
            raise RegistryError(f"token service {p['realm']}: {e}") from None
        token = doc.get("token") or doc.get("access_token")
        if not token or self._auth == f"Bearer {token}":
            return False
        self._auth = f"Bearer {token}"
        return True


def _error_text(body: bytes) -> str:
    """The registry's error codes and messages (`{"errors": [{code, message}]}`), if any."""
    try:
        errors = json.loads(body).get("errors") or []
        text = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
    except (ValueError, AttributeError):
        return ""
    return f": {text}" if text else ""
