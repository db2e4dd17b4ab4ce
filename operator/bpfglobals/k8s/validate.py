"""Check a BpfProgram against its ELF: every program exists and every global encodes."""

from __future__ import annotations

from bpfglobals.elf.model import ObjectSpec
from bpfglobals.node.check import problems
from bpfglobals.node.elf_source import ElfSources
from bpfglobals.node.manifest import BpfProgramManifest, ManifestError


def validate(m: BpfProgramManifest, sources: ElfSources) -> tuple[ObjectSpec, str]:
    """The object and its SHA-256 (what an image by digest resolved to), or a
    BpfGlobalsError naming every problem (source, signature, variable, program)."""
    blob = sources.fetch(m.elf)
    obj = sources.parse(blob)
    found = problems(m, obj)
    if found:
        raise ManifestError("; ".join(found))
    return obj, blob.sha256
