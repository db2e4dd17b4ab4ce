"""Fetch a BpfProgram's ELF object from its source and verify its digest."""

from __future__ import annotations

import base64
import hashlib
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bpfglobals.errors import BpfGlobalsError

MAX_ELF = 64 << 20


class ElfSourceError(BpfGlobalsError):
    """The object could not be fetched, or its digest does not match spec.elf.sha256."""


def fetch(elf: Mapping[str, Any], core_api: Any = None) -> bytes:
    """The object's bytes, verified against `elf.sha256`."""
    if elf.get("path"):
        try:
            data = Path(elf["path"]).read_bytes()
        except OSError as e:
            raise ElfSourceError(f"spec.elf.path {elf['path']}: {e.strerror}") from None
        where = f"path {elf['path']}"
    elif elf.get("url"):
        try:
            with urllib.request.urlopen(elf["url"], timeout=30) as r:
                data = r.read(MAX_ELF + 1)
        except OSError as e:
            raise ElfSourceError(f"spec.elf.url {elf['url']}: {e}") from None
        where = f"url {elf['url']}"
    elif elf.get("configMap"):
        data, where = _from_config_map(elf["configMap"], core_api)
    else:
        raise ElfSourceError("spec.elf: exactly one of configMap, url, path is required")
    if len(data) > MAX_ELF:
        raise ElfSourceError(f"spec.elf {where}: larger than {MAX_ELF >> 20} MiB")
    digest = hashlib.sha256(data).hexdigest()
    want = elf.get("sha256")
    if want and digest != want:
        raise ElfSourceError(
            f"spec.elf.sha256 mismatch for {where}: the object has {digest}, the spec says {want}"
        )
    return data


def _from_config_map(ref: Mapping[str, str], core_api: Any) -> tuple[bytes, str]:
    where = f"configMap {ref.get('namespace')}/{ref.get('name')} key {ref.get('key')}"
    if core_api is None:
        raise ElfSourceError(f"spec.elf {where}: no API client to read it")
    try:
        cm = core_api.read_namespaced_config_map(
            ref["name"], ref["namespace"], _request_timeout=(10, 30)
        )
    except Exception as e:  # the client raises ApiException; keep this layer client-agnostic
        raise ElfSourceError(f"spec.elf {where}: {getattr(e, 'reason', e)}") from None
    if cm.binary_data and ref["key"] in cm.binary_data:
        return base64.b64decode(cm.binary_data[ref["key"]]), where
    if cm.data and ref["key"] in cm.data:
        return cm.data[ref["key"]].encode("latin-1"), where
    raise ElfSourceError(f"spec.elf {where}: no such key in binaryData or data")
