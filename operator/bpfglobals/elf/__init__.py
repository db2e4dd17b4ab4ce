"""The ELF/BTF object model: pure parsing, no syscalls (aya-obj, cilium/ebpf's spec side).

The names below are imported from their modules on first use (PEP 562): importing any
`bpfglobals.elf.<module>` runs this file first, and a `bpfglobals load` whose parse comes from
the cache (elf/object_cache.py) must not pay for the parser's modules (nor pyelftools).
"""

from __future__ import annotations

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


def __getattr__(name: str) -> object:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'bpfglobals.elf' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"bpfglobals.elf.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})
