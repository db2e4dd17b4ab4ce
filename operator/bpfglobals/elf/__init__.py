"""The ELF/BTF object model: pure parsing, no syscalls (aya-obj, cilium/ebpf's spec side).

The names below are imported from their modules on first use (PEP 562): importing any
`bpfglobals.elf.<module>` runs this file first, and a `bpfglobals load` whose parse comes from
the cache (elf/object_cache.py) must not pay for the parser's modules (nor pyelftools).
"""

from __future__ import annotations

from bpfglobals.lazy import lazy_names

_MODULES = {
    "btf": "Btf",
    "btf_encode": "encode_btf",
    "btf_parse": "parse_btf",
    "model": "DataKind DataSectionSpec MapSpec ObjectSpec ProgramSpec Relocation RelocKind "
    "SubprogramSpec VariableSpec",
    "reader": "read_object read_object_bytes",
}
__getattr__, __dir__ = lazy_names(__name__, globals(), _MODULES)
