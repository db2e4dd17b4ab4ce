"""Write a copy of an object whose data sections hold new defaults (compile-once templates)."""

from __future__ import annotations

from collections.abc import Mapping

from bpfglobals.elf.model import ObjectSpec
from bpfglobals.errors import ValueEncodingError
from bpfglobals.values.assign import changed_sections, configure, nonzero_bss


def render(obj: ObjectSpec, values: Mapping[str, object]) -> bytes:
    """The object's bytes with only the affected data-section bytes replaced."""
    images = configure(obj, values)
    bss = nonzero_bss(obj, images)
    if bss:
        names = ", ".join(v.name for v in bss)
        raise ValueEncodingError(
            f"{obj.name}: .bss variables ({names}) cannot get a non-zero default in an ELF "
            "file (the section has no bytes); set them at load time with `bpfglobals load`"
        )
    out = bytearray(obj.raw)
    for name in changed_sections(obj, images):
        sec = next(d for d in obj.data_sections if d.name == name)
        if sec.file_offset is None:
            continue  # .bss, all zero as checked above
        out[sec.file_offset : sec.file_offset + sec.size] = images[name]
    return bytes(out)
