"""Which manifest of an index, and which layer of a manifest, holds the BPF object (pure).

Three layouts are read:
- bpfglobals' plain artifact (`bpfglobals push`, or `oras push` with these media types):
  artifactType `application/vnd.bpfglobals.program.v1`, one layer
  `application/vnd.bpfglobals.object.v1+elf` holding the object as it is, named by its
  `org.opencontainers.image.title` annotation;
- bpfman's bytecode images: one tar (gzip or plain) layer with the `.o` at its root and the
  labels `io.ebpf.programs` / `io.ebpf.maps` (JSON objects) in the image config;
- Inspektor Gadget's images: the layer `application/vnd.gadget.ebpf.program.v1+binary` (the
  eBPF object; the gadget's other layers are not used here).
Anything else is refused with the media types found.
"""

from __future__ import annotations

import io
import json
import platform
import posixpath
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bpfglobals.node.elf_source_errors import ElfSourceError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_LIST)

ARTIFACT_TYPE = "application/vnd.bpfglobals.program.v1"
OBJECT_LAYER = "application/vnd.bpfglobals.object.v1+elf"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
GADGET_LAYER = "application/vnd.gadget.ebpf.program.v1+binary"
TAR_LAYERS = {
    "application/vnd.oci.image.layer.v1.tar+gzip": "r:gz",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "r:gz",
    "application/vnd.oci.image.layer.v1.tar": "r:",
    "application/vnd.docker.image.rootfs.diff.tar": "r:",
}
BPFMAN_PROGRAMS = "io.ebpf.programs"
BPFMAN_MAPS = "io.ebpf.maps"
TITLE = "org.opencontainers.image.title"

# uname -m -> the OCI platform architecture
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64", "i686": "386"}  # fmt: skip


class ImageFormatError(ElfSourceError):
    """The image holds no BPF object in a layout read here, or holds it ambiguously."""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str]

    @classmethod
    def of(cls, doc: Any, where: str) -> Descriptor:
        if not isinstance(doc, Mapping):
            raise ImageFormatError(f"{where}: expected a descriptor object")
        digest, size = doc.get("digest"), doc.get("size")
        if not isinstance(digest, str) or not isinstance(size, int) or size < 0:
            raise ImageFormatError(f"{where}: a descriptor needs a digest and a size")
        return cls(str(doc.get("mediaType", "")), digest, size, dict(doc.get("annotations") or {}))


@dataclass(frozen=True)
class ObjectLayer:
    """Where the object is: the layer, how it is packed, and the name the object gets."""

    format: str  # "artifact", "bpfman", "gadget"
    layer: Descriptor
    name: str | None  # None: a tar layer (the name is the file's, known once unpacked)


def node_platform() -> tuple[str, str]:
    machine = platform.machine()
    return "linux", _ARCH.get(machine, machine)


def load_json(data: bytes, where: str) -> Mapping[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise ImageFormatError(f"{where}: not JSON ({e})") from None
    if not isinstance(doc, Mapping):
        raise ImageFormatError(f"{where}: expected a JSON object")
    return doc


def media_type(doc: Mapping[str, Any], header: str) -> str:
    """A manifest's type: its own mediaType field, else the registry's Content-Type."""
    mt = doc.get("mediaType") or header.split(";")[0].strip()
    if not mt and "manifests" in doc:
        return OCI_INDEX
    return mt or OCI_MANIFEST


def select_platform(index: Mapping[str, Any], where: str, plat: tuple[str, str]) -> Descriptor:
    """The index entry for this node (`linux/amd64`, variants ignored). An index of entries
    without platforms (an artifact index) must hold exactly one."""
    entries = index.get("manifests")
    if not isinstance(entries, list) or not entries:
        raise ImageFormatError(f"{where}: an index without manifests")
    os_, arch = plat
    found: list[Descriptor] = []
    seen: list[str] = []
    for i, e in enumerate(entries):
        d = Descriptor.of(e, f"{where}.manifests[{i}]")
        p = e.get("platform") or {}
        if p:
            seen.append(f"{p.get('os')}/{p.get('architecture')}")
        if p.get("os") == os_ and p.get("architecture") == arch:
            found.append(d)
    if not seen and len(entries) == 1:
        return Descriptor.of(entries[0], f"{where}.manifests[0]")
    if not found:
        raise ImageFormatError(
            f"{where}: no manifest for this node's platform {os_}/{arch} "
            f"(the index has {', '.join(seen) or 'entries without a platform'})"
        )
    return found[0]


def find_object(
    manifest: Mapping[str, Any], config: Mapping[str, Any] | None, where: str
) -> ObjectLayer:
    """The layer holding the object. `config`: the image config (bpfman labels), or None
    when the manifest's config is not an image config."""
    layers = [Descriptor.of(d, f"{where}.layers[{i}]") for i, d in
              enumerate(manifest.get("layers") or [])]  # fmt: skip
    if not layers:
        raise ImageFormatError(f"{where}: the manifest has no layers")
    types = sorted({d.media_type for d in layers})
    ours = [d for d in layers if d.media_type == OBJECT_LAYER]
    gadget = [d for d in layers if d.media_type == GADGET_LAYER]
    for kind, found in (("artifact", ours), ("gadget", gadget)):
        if len(found) > 1:
            raise ImageFormatError(
                f"{where}: {len(found)} layers of type {found[0].media_type}; exactly one "
                "object is expected"
            )
        if found:
            d = found[0]
            name = posixpath.basename(d.annotations.get(TITLE, "")) or f"{kind}.bpf.o"
            return ObjectLayer(kind, d, name)
    labels = ((config or {}).get("config") or {}).get("Labels") or {}
    if BPFMAN_PROGRAMS in labels:
        if len(layers) != 1 or layers[0].media_type not in TAR_LAYERS:
            raise ImageFormatError(
                f"{where}: a bpfman bytecode image has exactly one tar layer, got {types}"
            )
        for label in (BPFMAN_PROGRAMS, BPFMAN_MAPS):
            if label in labels:
                try:
                    ok = isinstance(json.loads(labels[label]), dict)
                except (TypeError, ValueError):
                    ok = False
                if not ok:
                    raise ImageFormatError(
                        f"{where}: label {label} must be a JSON object, got {labels[label]!r}"
                    )
        return ObjectLayer("bpfman", layers[0], None)
    raise ImageFormatError(
        f"{where}: no BPF object found: layer types {', '.join(types)}; expected one "
        f"{OBJECT_LAYER} layer (bpfglobals push), one {GADGET_LAYER} layer (Inspektor "
        f"Gadget), or one tar layer with the label {BPFMAN_PROGRAMS} (bpfman)"
    )


def object_from_tar(blob: bytes, mode: str, limit: int, where: str) -> tuple[str, bytes]:
    """The one `.o` file at the root of a (gzip) tar layer, as bpfman places it."""
    found: list[tarfile.TarInfo] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode=mode) as tar:  # type: ignore[call-overload]
            for m in tar:
                path = posixpath.normpath(m.name.lstrip("/"))
                if m.isfile() and "/" not in path and path.endswith(".o"):
                    found.append(m)
            if len(found) != 1:
                names = ", ".join(m.name for m in found) or "none"
                raise ImageFormatError(
                    f"{where}: expected exactly one .o file at the layer's root, found {names}"
                )
            member = found[0]
            if member.size > limit:
                raise ImageFormatError(
                    f"{where}: {member.name} is {member.size} bytes, over the {limit} limit"
                )
            f = tar.extractfile(member)
            assert f is not None
            return posixpath.basename(member.name), f.read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ImageFormatError(f"{where}: the layer is not a readable tar archive ({e})") from None
