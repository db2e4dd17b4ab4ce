"""Pull one BPF object from an image: the plain function ElfSources, the operator's
validation and any admission check share.

Order: the manifest the reference names (a digest reference is verified), its signatures
(before anything else is downloaded), the node platform's manifest of an index, the image
config when the layout needs its labels, the object's layer (size refused over the limit
before the download, digest verified after it).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bpfglobals.node.elf_source_errors import ElfSourceError
from bpfglobals.node.oci import cosign
from bpfglobals.node.oci.formats import (
    GADGET_LAYER,
    INDEXES,
    OBJECT_LAYER,
    TAR_LAYERS,
    Descriptor,
    find_object,
    load_json,
    media_type,
    node_platform,
    object_from_tar,
    select_platform,
)
from bpfglobals.node.oci.reference import ImageRef
from bpfglobals.node.oci.registry import Credentials, Registry, Retry

MAX_CONFIG = 1 << 20


@dataclass(frozen=True)
class PulledObject:
    name: str  # the object's file name (its maps are named after it)
    data: bytes
    digest: str  # the digest the reference resolved to (manifest or index): what is signed
    format: str  # "artifact", "bpfman", "gadget"
    signed_by: str | None  # which key verified it, and where the signature was
    bytes_in: int  # bytes read from the registry for this pull


def fetch_image(
    ref: ImageRef,
    *,
    limit: int,
    credentials: Credentials | None = None,
    keys: Sequence[cosign.PublicKey] = (),
    insecure: bool = False,
    platform: tuple[str, str] | None = None,
    retry: Retry | None = None,
    cached: Callable[[str], tuple[str, bytes] | None] | None = None,
) -> PulledObject:
    """`cached(digest)`: the (name, object) a caller already holds for an image digest, so
    that a tag reference costs its manifest (and signatures), not the object again."""
    reg = Registry(ref, credentials, insecure, retry=retry or Retry())
    repo = ref.repository
    top = reg.manifest(repo, ref.digest or ref.tag or "latest")
    signed_by = cosign.verify(reg, repo, top.digest, keys, str(ref)) if keys else None
    have = cached(top.digest) if cached is not None else None
    if have is not None:
        return PulledObject(have[0], have[1], top.digest, "cached", signed_by, reg.bytes_in)
    doc = load_json(top.data, f"{ref} manifest")
    where = f"{ref}"
    if media_type(doc, top.media_type) in INDEXES:
        entry = select_platform(doc, f"{ref} index", platform or node_platform())
        sub = reg.manifest(repo, entry.digest)
        doc, where = (
            load_json(sub.data, f"{ref} manifest {entry.digest}"),
            f"{ref} ({entry.digest})",
        )
    config = None
    types = {layer.get("mediaType") for layer in doc.get("layers") or [] if isinstance(layer, dict)}
    cfg = doc.get("config")
    if not types & {OBJECT_LAYER, GADGET_LAYER} and isinstance(cfg, Mapping):
        raw = reg.blob(repo, Descriptor.of(cfg, f"{where} config"), MAX_CONFIG)
        config = load_json(raw, f"{where} config")
    found = find_object(doc, config, where)
    blob = reg.blob(repo, found.layer, limit)
    if found.name is None:
        name, data = object_from_tar(blob, TAR_LAYERS[found.layer.media_type], limit, where)
    else:
        name, data = found.name, blob
    return PulledObject(name, data, top.digest, found.format, signed_by, reg.bytes_in)


def docker_config_credentials(
    secret: Mapping[str, bytes], registry: str, where: str
) -> Credentials:
    """The credentials for `registry` in a kubernetes.io/dockerconfigjson Secret's data."""
    raw = secret.get(".dockerconfigjson")
    if raw is None:
        raise ElfSourceError(
            f"{where}: expected a kubernetes.io/dockerconfigjson Secret (key .dockerconfigjson)"
        )
    try:
        auths = json.loads(raw).get("auths") or {}
    except (ValueError, AttributeError):
        raise ElfSourceError(f"{where}: .dockerconfigjson is not JSON") from None
    hosts = {k.removeprefix("https://").removeprefix("http://").rstrip("/"): v
             for k, v in auths.items()}  # fmt: skip
    entry = hosts.get(registry)
    if not isinstance(entry, Mapping):
        raise ElfSourceError(
            f"{where}: no credentials for {registry} (the Secret has {', '.join(hosts) or 'none'})"
        )
    if entry.get("username") is not None:
        return Credentials(str(entry["username"]), str(entry.get("password", "")))
    try:
        user, _, password = base64.b64decode(entry.get("auth", "")).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise ElfSourceError(
            f"{where}: the auth of {registry} is not base64 user:password"
        ) from None
    return Credentials(user, password)
