"""cosign 2.x signatures on an image, verified with public keys (no transparency log).

Where cosign puts them: the tag `sha256-<hex>.sig` beside the image (its default), or an
OCI 1.1 referrer of the image (`--registry-referrers-mode=oci-1-1`; the registry's referrers
API, or the `sha256-<hex>` fallback index). Each signature is a layer of media type
`application/vnd.dev.cosign.simplesigning.v1+json` whose blob is the signed payload and whose
annotation `dev.cosignproject.cosign/signature` holds the base64 signature over it.

The payload binds the signature to the image: `critical.type` must be cosign's container
image signature and `critical.image.docker-manifest-digest` the digest that was pulled. The
`docker-reference` in it is not compared (a signed image copied to another registry stays
signed, as `cosign verify` treats it).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bpfglobals.node.elf_source_errors import SignatureInvalid
from bpfglobals.node.oci.formats import Descriptor, ImageFormatError, load_json
from bpfglobals.node.oci.registry import NotFound, Registry

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIGNATURE_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"
PAYLOAD_TYPE = "cosign container image signature"
MAX_PAYLOAD = 64 << 10
MAX_SIGNATURES = 32  # a repository with more signature layers than this is refused


@dataclass(frozen=True)
class PublicKey:
    """A cosign public key (PEM) and where it came from, for messages."""

    name: str  # e.g. "secret bpf/signing key cosign.pub"
    pem: bytes


@dataclass(frozen=True)
class Signature:
    payload: bytes
    signature: str  # base64, as in the annotation
    where: str  # "tag sha256-….sig" or "referrer sha256:…"


def load_key(key: PublicKey) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        k = load_pem_public_key(key.pem)
    except (ValueError, TypeError) as e:
        raise SignatureInvalid(f"{key.name}: not a PEM public key ({e})") from None
    if not isinstance(k, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise SignatureInvalid(
            f"{key.name}: {type(k).__name__} keys are not supported (ECDSA, RSA, Ed25519 are)"
        )
    return k


def signature_matches(key: Any, payload: bytes, signature_b64: str) -> bool:
    """Whether `signature_b64` is `key`'s signature over `payload` (SHA-256, as cosign signs)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    try:
        sig = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(sig, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(sig, payload, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(sig, payload)
    except InvalidSignature:
        return False
    return True


def payload_problem(payload: bytes, digest: str) -> str | None:
    """Why a signed payload does not vouch for the image `digest`, or None."""
    try:
        doc = json.loads(payload)
        critical = doc["critical"]
        kind = critical["type"]
        signed = critical["image"]["docker-manifest-digest"]
    except (ValueError, KeyError, TypeError):
        return "the payload is not a cosign simple-signing document"
    if kind != PAYLOAD_TYPE:
        return f"the payload's type is {kind!r}, not {PAYLOAD_TYPE!r}"
    if signed != digest:
        return f"the signature is for {signed}, not for {digest}"
    return None


def find_signatures(reg: Registry, repository: str, digest: str) -> list[Signature]:
    """Every cosign signature of `digest` in the repository: tag scheme, then referrers."""
    manifests: list[tuple[str, bytes]] = []
    tag = digest.replace(":", "-") + ".sig"
    with contextlib.suppress(NotFound):
        manifests.append((f"tag {tag}", reg.manifest(repository, tag).data))
    for r in reg.referrers(repository, digest):
        if r.get("artifactType") == SIGNATURE_ARTIFACT and isinstance(r.get("digest"), str):
            manifests.append(
                (f"referrer {r['digest']}", reg.manifest(repository, r["digest"]).data)
            )
    found: list[Signature] = []
    for where, data in manifests:
        doc = load_json(data, f"signature manifest ({where})")
        for i, layer in enumerate(doc.get("layers") or []):
            try:
                d = Descriptor.of(layer, f"signature manifest ({where}).layers[{i}]")
            except ImageFormatError:
                continue
            sig = d.annotations.get(SIGNATURE_ANNOTATION)
            if d.media_type != SIMPLE_SIGNING or not sig:
                continue
            if len(found) >= MAX_SIGNATURES:
                raise SignatureInvalid(f"more than {MAX_SIGNATURES} signatures on {digest}")
            found.append(Signature(reg.blob(repository, d, MAX_PAYLOAD), sig, where))
    return found


def verify(
    reg: Registry, repository: str, digest: str, keys: Sequence[PublicKey], image: str
) -> str:
    """Raise SignatureInvalid unless a signature of `digest` verifies with one of `keys`;
    return which key and where the signature was."""
    loaded = [(k, load_key(k)) for k in keys]
    signatures = find_signatures(reg, repository, digest)
    if not signatures:
        raise SignatureInvalid(
            f"{image}: unsigned: no cosign signature for {digest} (tag "
            f"{digest.replace(':', '-')}.sig, OCI referrers)"
        )
    reasons: list[str] = []
    for s in signatures:
        for key, k in loaded:
            if not signature_matches(k, s.payload, s.signature):
                reasons.append(f"{s.where}: not signed by {key.name}")
                continue
            problem = payload_problem(s.payload, digest)
            if problem is None:
                return f"{key.name} ({s.where})"
            reasons.append(f"{s.where}: {problem}")
    raise SignatureInvalid(
        f"{image}: no valid signature for {digest}: " + "; ".join(_unique(reasons)[:4])
    )


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
