"""The ELF/BTF object model: pure parsing, no syscalls (aya-obj, cilium/ebpf's spec side).

The names below are imported from their modules on first use (PEP 562): importing any
`bpfglobals.elf.<module>` runs this file first, and a `bpfglobals load` whose parse comes from
the cache (elf/object_cache.py) must not pay for the parser's modules (nor pyelftools).
"""

from __future__ import annotations

from bpfglobals.lazy import lazy_names

_HOME = {
    "Btf": "btf",
    "encode_btf": "btf_encode",
    "parse_btf": "btf_parse",
    "DataKind": "model",
    "DataSectionSpec": "model",
    "MapSpec": "model",
    "ObjectSpec": "model",
    "ProgramSpec": "model",
    "Relocation": "model",
    "RelocKind": "model",
    "SubprogramSpec": "model",
    "VariableSpec": "model",
    "read_object": "reader",
    "read_object_bytes": "reader",
}

__all__ = sorted(_HOME)
__getattr__, __dir__ = lazy_names(__name__, globals(), _HOME)
