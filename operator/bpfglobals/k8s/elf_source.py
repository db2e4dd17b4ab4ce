"""Read what a BpfProgram's ELF source needs from the API: a ConfigMap holding the object,
the Secrets of an image (pull secret, cosign public keys).

Fetching, the digest check and caching are `node.elf_source.ElfSources`; this module gives it
readers over the client, so that layer stays free of Kubernetes.
"""

from __future__ import annotations

import base64
from typing import Any

from bpfglobals.node.elf_source import ConfigMapReader, ElfSourceError, SecretReader
from bpfglobals.node.manifest import ConfigMapRef, SecretRef


def config_map_reader(core_api: Any) -> ConfigMapReader:
    def read(ref: ConfigMapRef) -> bytes:
        where = f"configMap {ref.namespace}/{ref.name} key {ref.key}"
        try:
            cm = core_api.read_namespaced_config_map(
                ref.name, ref.namespace, _request_timeout=(10, 30)
            )
        except Exception as e:  # the client raises ApiException; report its reason
            raise ElfSourceError(f"spec.elf {where}: {getattr(e, 'reason', e)}") from None
        if cm.binary_data and ref.key in cm.binary_data:
            return base64.b64decode(cm.binary_data[ref.key])
        if cm.data and ref.key in cm.data:
            return cm.data[ref.key].encode("latin-1")
        raise ElfSourceError(f"spec.elf {where}: no such key in binaryData or data")

    return read


def secret_reader(core_api: Any) -> SecretReader:
    def read(ref: SecretRef) -> dict[str, bytes]:
        try:
            secret = core_api.read_namespaced_secret(
                ref.name, ref.namespace, _request_timeout=(10, 30)
            )
        except Exception as e:  # the client raises ApiException; report its reason
            reason = getattr(e, "reason", e)
            raise ElfSourceError(f"secret {ref.namespace}/{ref.name}: {reason}") from None
        return {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}

    return read
