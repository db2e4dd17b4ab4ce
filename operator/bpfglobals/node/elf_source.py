"""A BpfProgram's ELF object: fetched from its source, checked against its digest, cached.

The one place the CLI, the operator and the agent get objects from. Sources: a path (relative
to the manifest's directory), an http(s) URL, a ConfigMap key (read through a function the
Kubernetes layer supplies, so this layer imports no client), an OCI image (`node.oci`; its
pull secret and cosign keys are Secrets, read the same way). Objects named by a digest are
fetched once: from memory, then from `cache_dir` on disk (re-checked), then from the source.
An image pinned by digest is resolved once too (manifest digest -> object digest, kept
beside the objects), and a signature check once per digest and key set.
Parsed objects are cached by digest too: a value change re-applies the same object, and
parsing it again would cost more than loading the new variant.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bpfglobals.elf.model import ObjectSpec
from bpfglobals.node.elf_source_errors import ElfSourceError, SignatureInvalid
from bpfglobals.node.manifest import ConfigMapRef, ElfSource, SecretRef
from bpfglobals.node.oci.cosign import PublicKey
from bpfglobals.node.oci.fetch import PulledObject, docker_config_credentials, fetch_image

MAX_ELF = 64 << 20  # also the limit on an image's object layer, refused before its download
DEFAULT_NAME = "object.bpf.o"

ConfigMapReader = Callable[[ConfigMapRef], bytes]
SecretReader = Callable[[SecretRef], Mapping[str, bytes]]  # a Secret's data, decoded
ImageFetcher = Callable[..., PulledObject]
log = logging.getLogger("bpfglobals.elf")

__all__ = ["ElfSourceError", "ElfSources", "SignatureInvalid"]


@dataclass(frozen=True)
class ElfBlob:
    name: str  # the source's file name: it names the object's maps in the kernel, as libbpf does
    data: bytes
    sha256: str


def object_name(src: ElfSource) -> str:
    """The file name of the source (`xdp_drop.bpf.o`), so maps are named `xdp_drop.rodata`."""
    raw = src.path or src.url or (src.config_map.key if src.config_map else "")
    return os.path.basename(raw.rstrip("/")) or DEFAULT_NAME


class ElfSources:
    def __init__(
        self,
        read_config_map: ConfigMapReader | None = None,
        cache_dir: str | Path | None = None,
        keep: int = 8,
        read_secret: SecretReader | None = None,
        require_signatures: bool = False,
        fetch_image: ImageFetcher = fetch_image,
    ) -> None:
        self.read_config_map = read_config_map
        self.read_secret = read_secret
        # The cluster's policy: every object comes from an image spec.elf.verify checks.
        self.require_signatures = require_signatures
        self.fetch_image = fetch_image
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.keep = keep
        self.registry_bytes = 0  # bytes pulled from registries by this process
        self._blobs: OrderedDict[str, ElfBlob] = OrderedDict()
        self._objects: OrderedDict[tuple[str, str], ObjectSpec] = OrderedDict()
        self._pins: dict[str, tuple[str, str]] = {}  # image digest -> (object sha256, name)
        self._verified: set[str] = set()  # (image digest, keys) checks that passed
        self._lock = threading.Lock()  # the operator fetches from several worker threads

    def fetch(self, src: ElfSource, base_dir: str | Path = ".") -> ElfBlob:
        """The object's bytes, verified against `src.sha256` when the source names one."""
        if self.require_signatures and src.verify is None:
            raise SignatureInvalid(
                f"spec.elf {src.describe()}: the cluster's policy requires a signed image "
                "(spec.elf.image with spec.elf.verify.keys)"
            )
        if src.image is not None:
            return self._fetch_image(src)
        name = object_name(src)
        if src.sha256:
            cached = self._cached(src.sha256, name)
            if cached is not None:
                return cached
        data = self._read(src, Path(base_dir))
        if len(data) > MAX_ELF:
            raise ElfSourceError(f"spec.elf {src.describe()}: larger than {MAX_ELF >> 20} MiB")
        sha = hashlib.sha256(data).hexdigest()
        if src.sha256 and src.sha256 != sha:
            raise ElfSourceError(
                f"spec.elf.sha256 mismatch for {src.describe()}: the object has {sha}, "
                f"the spec says {src.sha256}"
            )
        blob = ElfBlob(name, data, sha)
        self._remember(self._blobs, sha, blob)
        if self.cache_dir is not None and src.sha256:
            self._store(blob)
        return blob

    def parse(self, blob: ElfBlob) -> ObjectSpec:
        from bpfglobals.elf import read_object_bytes  # parsing is what `get` never needs

        key = (blob.sha256, blob.name)  # the name is part of the object (its maps' names)
        with self._lock:
            obj = self._objects.get(key)
        if obj is None:
            obj = read_object_bytes(blob.data, blob.name)
            self._remember(self._objects, key, obj)
        return obj

    # -- images -------------------------------------------------------------------------------

    def _fetch_image(self, src: ElfSource) -> ElfBlob:
        image = src.image
        assert image is not None
        ref = image.reference
        keys = self._keys(src)
        check = _verified_key(ref.digest, keys) if ref.digest else None
        signed = not keys or (check is not None and self._is_verified(check))
        pinned = self._pin(ref.digest) if ref.digest else None
        if signed and (pinned or src.sha256):
            sha, name = pinned or (src.sha256 or "", "")
            cached = self._cached(sha, name) if name else self._cached_any(sha)
            if cached is not None and (not src.sha256 or cached.sha256 == src.sha256):
                return cached
        credentials = None
        if image.pull_secret is not None:
            where = f"spec.elf.image.pullSecret {image.pull_secret.namespace}/"
            where += image.pull_secret.name
            data = self._secret(image.pull_secret, where)
            credentials = docker_config_credentials(data, ref.registry, where)
        pulled = self.fetch_image(
            ref,
            limit=MAX_ELF,
            credentials=credentials,
            keys=keys,
            insecure=image.insecure,
            cached=self._cached_image,
        )
        with self._lock:
            self.registry_bytes += pulled.bytes_in
        log.info(
            "pulled %s (%s, %s): %d bytes from the registry%s",
            ref, pulled.digest, pulled.format, pulled.bytes_in,
            f", signed by {pulled.signed_by}" if pulled.signed_by else "",
        )  # fmt: skip
        sha = hashlib.sha256(pulled.data).hexdigest()
        if src.sha256 and src.sha256 != sha:
            raise ElfSourceError(
                f"spec.elf.sha256 mismatch for {src.describe()} (resolved to {pulled.digest}): "
                f"the object has {sha}, the spec says {src.sha256}; did the tag move?"
            )
        blob = ElfBlob(pulled.name, pulled.data, sha)
        self._remember(self._blobs, sha, blob)
        if keys:
            self._mark_verified(_verified_key(pulled.digest, keys))
        if self.cache_dir is not None:
            self._store(blob)
        self._store_pin(pulled.digest, sha, pulled.name)
        return blob

    def _cached_image(self, digest: str) -> tuple[str, bytes] | None:
        pin = self._pin(digest)
        blob = self._cached(*pin) if pin else None
        return (blob.name, blob.data) if blob else None

    def _keys(self, src: ElfSource) -> list[PublicKey]:
        if src.verify is None:
            return []
        keys = []
        for k in src.verify.keys:
            where = f"spec.elf.verify secret {k.namespace}/{k.name} key {k.key}"
            data = self._secret(SecretRef(k.namespace, k.name), where)
            if k.key not in data:
                raise SignatureInvalid(f"{where}: no such key in the Secret")
            keys.append(PublicKey(where, data[k.key]))
        return keys

    def _secret(self, ref: SecretRef, where: str) -> Mapping[str, bytes]:
        if self.read_secret is None:
            raise ElfSourceError(
                f"{where}: Secrets are read by the cluster's operator and agents; node-local "
                "apply pulls public images without signature checks"
            )
        return self.read_secret(ref)

    def _pin(self, digest: str) -> tuple[str, str] | None:
        with self._lock:
            pin = self._pins.get(digest)
        if pin is None and self.cache_dir is not None:
            try:
                doc = json.loads((self.cache_dir / "images" / digest).read_text())
                pin = (str(doc["sha256"]), str(doc["name"]))
            except (OSError, ValueError, KeyError, TypeError):
                return None
            with self._lock:
                self._pins[digest] = pin
        return pin

    def _store_pin(self, digest: str, sha: str, name: str) -> None:
        with self._lock:
            self._pins[digest] = (sha, name)
        if self.cache_dir is not None:
            _write(self.cache_dir / "images" / digest, json.dumps({"sha256": sha, "name": name}))

    def _is_verified(self, key: str) -> bool:
        with self._lock:
            if key in self._verified:
                return True
        if self.cache_dir is not None and (self.cache_dir / "verified" / key).exists():
            with self._lock:
                self._verified.add(key)
            return True
        return False

    def _mark_verified(self, key: str) -> None:
        with self._lock:
            self._verified.add(key)
        if self.cache_dir is not None:
            _write(self.cache_dir / "verified" / key, "")

    def _cached_any(self, sha: str) -> ElfBlob | None:
        """A cached object by digest under whatever name it was stored."""
        with self._lock:
            blob = self._blobs.get(sha)
        if blob is not None or self.cache_dir is None:
            return blob
        names = [p.name for p in (self.cache_dir / sha).glob("*") if ".tmp" not in p.name]
        return self._cached(sha, names[0]) if len(names) == 1 else None

    # -- where bytes come from ----------------------------------------------------------------

    def _read(self, src: ElfSource, base_dir: Path) -> bytes:
        if src.path is not None:
            path = Path(src.path)
            if not path.is_absolute():
                path = base_dir / path
            try:
                return path.read_bytes()
            except OSError as e:
                raise ElfSourceError(f"spec.elf.path: cannot read {path}: {e.strerror}") from None
        if src.url is not None:
            try:
                with urllib.request.urlopen(src.url, timeout=30) as r:
                    return r.read(MAX_ELF + 1)
            except OSError as e:
                raise ElfSourceError(f"spec.elf.url {src.url}: {e}") from None
        if src.config_map is not None:
            if self.read_config_map is None:
                raise ElfSourceError(
                    f"spec.elf {src.describe()}: ConfigMaps are read by the cluster agent; "
                    "node-local apply reads spec.elf.path or spec.elf.url"
                )
            return self.read_config_map(src.config_map)
        raise ElfSourceError("spec.elf: exactly one of configMap, url, path is required")

    def _cached(self, sha: str, name: str) -> ElfBlob | None:
        with self._lock:
            blob = self._blobs.get(sha)
        if blob is not None:
            return ElfBlob(name, blob.data, sha)
        if self.cache_dir is None:
            return None
        path = self.cache_dir / sha / name
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if hashlib.sha256(data).hexdigest() != sha:  # a torn or tampered cache entry
            return None
        blob = ElfBlob(name, data, sha)
        self._remember(self._blobs, sha, blob)
        return blob

    def _store(self, blob: ElfBlob) -> None:
        assert self.cache_dir is not None
        _write(self.cache_dir / blob.sha256 / blob.name, blob.data)

    def _remember(self, cache: OrderedDict, key: object, value: object) -> None:
        with self._lock:
            cache[key] = value
            cache.move_to_end(key)
            while len(cache) > self.keep:
                cache.popitem(last=False)


def _write(path: Path, data: bytes | str) -> None:
    """Write whole or not at all (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}.{threading.get_ident()}")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    tmp.replace(path)


def _verified_key(digest: str, keys: list[PublicKey]) -> str:
    """One name for "this image digest verified with these keys" (a cache file name)."""
    h = hashlib.sha256(digest.encode())
    for pem in sorted(k.pem for k in keys):
        h.update(hashlib.sha256(pem).digest())
    return h.hexdigest()
