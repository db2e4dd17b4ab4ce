"""A BpfProgram's ELF object: fetched from its source, checked against its digest, cached.

The one place the CLI, the operator and the agent get objects from. Sources: a path (relative
to the manifest's directory), an http(s) URL, a ConfigMap key (read through a function the
Kubernetes layer supplies, so this layer imports no client). Objects named by a digest are
fetched once: from memory, then from `cache_dir` on disk (re-checked), then from the source.
Parsed objects are cached by digest too: a value change re-applies the same object, and
parsing it again would cost more than loading the new variant.
"""

from __future__ import annotations

import hashlib
import os
import threading
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bpfglobals.elf.model import ObjectSpec
from bpfglobals.errors import BpfGlobalsError
from bpfglobals.node.manifest import ConfigMapRef, ElfSource

MAX_ELF = 64 << 20
DEFAULT_NAME = "object.bpf.o"

ConfigMapReader = Callable[[ConfigMapRef], bytes]


class ElfSourceError(BpfGlobalsError):
    """The object could not be fetched, or its digest does not match spec.elf.sha256."""


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
    ) -> None:
        self.read_config_map = read_config_map
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.keep = keep
        self._blobs: OrderedDict[str, ElfBlob] = OrderedDict()
        self._objects: OrderedDict[tuple[str, str], ObjectSpec] = OrderedDict()
        self._lock = threading.Lock()  # the operator fetches from several worker threads

    def fetch(self, src: ElfSource, base_dir: str | Path = ".") -> ElfBlob:
        """The object's bytes, verified against `src.sha256` when the source names one."""
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
        path = self.cache_dir / blob.sha256 / blob.name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}.{threading.get_ident()}")
        tmp.write_bytes(blob.data)
        tmp.replace(path)

    def _remember(self, cache: OrderedDict, key: object, value: object) -> None:
        with self._lock:
            cache[key] = value
            cache.move_to_end(key)
            while len(cache) > self.keep:
                cache.popitem(last=False)
