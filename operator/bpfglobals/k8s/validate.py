"""Check a BpfProgram against its ELF: every program exists and every global encodes."""

from __future__ import annotations

from bpfglobals.loader import select_programs
from bpfglobals.node.elf_source import ElfSources
from bpfglobals.node.manifest import BpfProgramManifest
from bpfglobals.values import configure


def validate(m: BpfProgramManifest, sources: ElfSources) -> str:
    """Raise a BpfGlobalsError naming the first problem (source, signature, variable,
    program, type); return the object's SHA-256 (what an image by digest resolved to)."""
    blob = sources.fetch(m.elf)
    obj = sources.parse(blob)
    configure(obj, m.globals)
    select_programs(obj, [p.name for p in m.programs], "spec.programs")
    return blob.sha256
