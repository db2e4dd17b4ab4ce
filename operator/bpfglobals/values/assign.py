"""Apply a mapping of variable name → value to an object's data sections, all or nothing."""

from __future__ import annotations

from collections.abc import Mapping

from bpfglobals.elf.model import DataKind, ObjectSpec, VariableSpec
from bpfglobals.errors import ValueEncodingError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    from bpfglobals.values.errors import Where


def where_of(obj: ObjectSpec, var: VariableSpec) -> Where:
    from bpfglobals.values.ctype import spell
    from bpfglobals.values.errors import Where

    return Where(var.name, spell(obj.btf, var.type_id), var.section)


def find_variable(obj: ObjectSpec, name: str) -> VariableSpec:
    var = obj.variable(name)
    if var is not None:
        return var
    import difflib  # only for this error's hint

    names = [v.name for v in obj.variables()]
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    kinds = sorted({d.name for d in obj.data_sections}) or ["none"]
    raise ValueEncodingError(f"{obj.name}: no global variable '{name}' in {', '.join(kinds)}{hint}")


def configure(obj: ObjectSpec, values: Mapping[str, object]) -> dict[str, bytes]:
    """The full new image of every data section: ELF defaults with `values` written in.

    Every value is checked before anything is returned, so a bad entry changes nothing.
    """
    if obj.btf is None and values:
        raise ValueEncodingError(f"{obj.name}: the object has no BTF (compile with -g)")
    images = {d.name: bytearray(d.data) for d in obj.data_sections}
    if values:
        # imported here: the codec is start-up cost a `load` without values never uses
        from bpfglobals.values.codec import encode
    for name, value in values.items():
        var = find_variable(obj, name)
        img = images[var.section]
        new = encode(
            obj.btf,
            var.type_id,
            value,
            bytes(img[var.offset : var.offset + var.size]),
            where_of(obj, var),
        )
        img[var.offset : var.offset + var.size] = new
    return {name: bytes(img) for name, img in images.items()}


def changed_sections(obj: ObjectSpec, images: Mapping[str, bytes]) -> list[str]:
    return [d.name for d in obj.data_sections if images.get(d.name, d.data) != d.data]


def nonzero_bss(obj: ObjectSpec, images: Mapping[str, bytes]) -> list[VariableSpec]:
    """.bss variables given a non-zero value (possible in a map, impossible in an ELF)."""
    return [
        v
        for d in obj.data_sections
        if d.kind == DataKind.BSS
        for v in d.variables
        if any(images[d.name][v.offset : v.offset + v.size])
    ]


def decode_variables(obj: ObjectSpec, images: Mapping[str, bytes] | None = None) -> dict:
    """name → decoded value, from `images` (default: the ELF's own bytes)."""
    from bpfglobals.values.codec import decode

    out = {}
    for d in obj.data_sections:
        data = images[d.name] if images is not None else d.data
        for v in d.variables:
            out[v.name] = decode(obj.btf, v.type_id, data[v.offset : v.offset + v.size])
    return out
