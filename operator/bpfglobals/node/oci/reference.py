"""Image references (`host[:port]/repo[:tag][@sha256:hex]`), with the registry host always
written out (a dot or a port, `localhost`, or `[ipv6]`): no implicit Docker Hub, so that a
reference names one registry to everyone who reads it.

Pure. `REFERENCE_PATTERN` is also the CRD's pattern for spec.elf.image.reference (the same
regular expression, so the apiserver and the parser agree).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from bpfglobals.errors import BpfGlobalsError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HOST = (
    r"(localhost(:[0-9]+)?|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:[0-9]+)?|[A-Za-z0-9-]+:[0-9]+"
    r"|\[[0-9A-Fa-f:]+\](:[0-9]+)?)"
)
_COMPONENT = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
REFERENCE_PATTERN = rf"^{_HOST}(/{_COMPONENT})+(:{_TAG})?(@sha256:[0-9a-f]{{64}})?$"
_REFERENCE_RE = re.compile(REFERENCE_PATTERN)


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
    if not _REFERENCE_RE.match(text):
        raise ReferenceError(
            f"image reference {text!r}: expected host[:port]/repository[:tag][@sha256:<64 hex>] "
            "(lower-case repository, the registry host written out)"
        )
    rest, _, digest = text.partition("@")
    registry, _, path = rest.partition("/")
    repository, _, tag = path.partition(":")
    return ImageRef(registry, repository, tag or None, digest or None)


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
