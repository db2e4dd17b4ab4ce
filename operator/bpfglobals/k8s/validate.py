"""Check a BpfProgram against its ELF: every program exists and every global encodes."""

from __future__ import annotations

from bpfglobals.elf.model import ObjectSpec
from bpfglobals.node.check import problems
from bpfglobals.node.elf_source import ElfSources
from bpfglobals.node.manifest import BpfProgramManifest, ManifestError


def validate(m: BpfProgramManifest, sources: ElfSources) -> ObjectSpec:
    """The object, or a BpfGlobalsError naming every problem (source, variable, program)."""
    obj = sources.parse(sources.fetch(m.elf))
    found = problems(m, obj)
    if found:
        raise ManifestError("; ".join(found))
    return obj
