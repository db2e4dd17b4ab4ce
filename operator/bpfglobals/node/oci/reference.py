"""Image references (`host[:port]/repo[:tag][@sha256:hex]`), parsed as Docker parses them.

Pure. The first path component is a registry host when it has a dot or a colon or is
`localhost`; otherwise the reference is on Docker Hub (`docker.io/library/NAME`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from bpfglobals.errors import BpfGlobalsError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


class ReferenceError(BpfGlobalsError):
    """An image reference that cannot be parsed."""


@dataclass(frozen=True)
class ImageRef:
    registry: str  # host[:port] as written (docker.io for Docker Hub)
    repository: str
    tag: str | None = None
    digest: str | None = None  # "sha256:<hex>": the manifest (or index) digest

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        """`host/repo`: what cosign writes as the signed docker-reference."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s

    def with_digest(self, digest: str) -> ImageRef:
        return ImageRef(self.registry, self.repository, None, digest)


def parse_reference(text: str) -> ImageRef:
    """`host/repo:tag`, `host/repo@sha256:…`, `host/repo:tag@sha256:…` (the digest wins)."""
    where = f"image reference {text!r}"
    if not text or text != text.strip() or "://" in text:
        raise ReferenceError(f"{where}: expected host/repository[:tag][@sha256:digest]")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not DIGEST_RE.match(digest):
            raise ReferenceError(f"{where}: the digest must be sha256: and 64 lower-case hex")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise ReferenceError(f"{where}: invalid tag {tag!r}")
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, remainder
    else:
        registry, repository = DOCKER_HUB, rest if "/" in rest else f"library/{rest}"
    if not _REPO_RE.match(repository):
        raise ReferenceError(f"{where}: invalid repository {repository!r}")
    return ImageRef(registry, repository, tag, digest)


def is_loopback(registry: str) -> bool:
    """Whether `host[:port]` is on the loopback: reached over plain HTTP, as Docker does."""
    host = registry
    if host.startswith("["):  # [::1]:5000
        host = host[1 : host.index("]")]
    elif host.count(":") == 1:
        host = host.split(":")[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def base_url(ref: ImageRef, insecure: bool) -> str:
    scheme = "http" if insecure or is_loopback(ref.registry) else "https"
    return f"{scheme}://{ref.api_host}"
