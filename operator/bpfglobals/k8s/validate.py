"""Check a BpfProgram against its ELF: every program exists and every global encodes."""

from __future__ import annotations

from bpfglobals.loader import select_programs
from bpfglobals.node.elf_source import ElfSources
from bpfglobals.node.manifest import BpfProgramManifest
from bpfglobals.values import configure


def validate(m: BpfProgramManifest, sources: ElfSources) -> None:
    """Raise a BpfGlobalsError naming the first problem (source, variable, program, type)."""
    obj = sources.parse(sources.fetch(m.elf))
    configure(obj, m.globals)
    select_programs(obj, [p.name for p in m.programs], "spec.programs")
