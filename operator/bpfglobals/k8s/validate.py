"""Check a BpfProgram spec against its ELF: every program exists and every global encodes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bpfglobals.elf import read_object_bytes
from bpfglobals.errors import BpfGlobalsError
from bpfglobals.node.manifest import parse_spec
from bpfglobals.values import configure


def validate(name: str, spec: Mapping[str, Any], data: bytes) -> None:
    """Raise a BpfGlobalsError naming the first problem (variable, program, type)."""
    manifest = parse_spec(name, spec)
    obj = read_object_bytes(data, "object.bpf.o")
    configure(obj, manifest.globals)
    names = {p.name for p in obj.programs}
    for p in manifest.programs:
        if p.name not in names:
            raise BpfGlobalsError(
                f"spec.programs: no program '{p.name}' in the object "
                f"(has {', '.join(sorted(names))})"
            )
