"""Publish one BPF object as bpfglobals' plain OCI artifact (what `bpfglobals push` does).

The manifest is an OCI 1.1 image manifest with artifactType `application/vnd.bpfglobals.
program.v1`, the empty config (`application/vnd.oci.empty.v1+json`, `{}`) and one layer
`application/vnd.bpfglobals.object.v1+elf` holding the object as it is, titled with its file
name. Nothing in it depends on time: the same object pushed twice has the same digest.
"""

from __future__ import annotations

import json

from bpfglobals.node.elf_source_errors import ElfSourceError
from bpfglobals.node.oci.formats import (
    ARTIFACT_TYPE,
    EMPTY_CONFIG,
    OBJECT_LAYER,
    OCI_MANIFEST,
    TITLE,
)
from bpfglobals.node.oci.reference import ImageRef
from bpfglobals.node.oci.registry import Credentials, Registry

EMPTY = b"{}"


def artifact_manifest(name: str, data: bytes, config_digest: str, layer_digest: str) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_CONFIG, "digest": config_digest, "size": len(EMPTY)},
        "layers": [
            {
                "mediaType": OBJECT_LAYER,
                "digest": layer_digest,
                "size": len(data),
                "annotations": {TITLE: name},
            }
        ],
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def push_object(
    ref: ImageRef,
    name: str,
    data: bytes,
    *,
    insecure: bool = False,
    credentials: Credentials | None = None,
) -> str:
    """Push; return the manifest digest (`sha256:…`)."""
    if ref.digest:
        raise ElfSourceError(f"push {ref}: push to a tag (or no tag: latest), not a digest")
    reg = Registry(ref, credentials, insecure)
    config = reg.push_blob(ref.repository, EMPTY)
    layer = reg.push_blob(ref.repository, data)
    manifest = artifact_manifest(name, data, config, layer)
    return reg.push_manifest(ref.repository, ref.tag or "latest", manifest, OCI_MANIFEST)
