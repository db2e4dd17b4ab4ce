"""Hidden global subprograms become static in the BTF we load, as libbpf does.

A `.text` function that is global or weak but has hidden (or internal) visibility — libbpf's
`__hidden`, e.g. `bpf_usdt_arg()` in usdt.bpf.h — cannot be called from another object, so
libbpf marks its BTF FUNC static (`mark_btf_static`): the verifier then checks it in the
context of each caller instead of alone, with only its BTF prototype to go on (where a
`long *` argument may be NULL, and the function's own unchecked store is refused).
"""

from __future__ import annotations

from bpfglobals.elf.btf import Btf
from bpfglobals.elf.btf_types import Func, Linkage
from bpfglobals.elf.elf_file import STB_LOCAL, STT_FUNC, STV_HIDDEN, STV_INTERNAL, ElfImage
from bpfglobals.elf.model import SubprogramSpec
from bpfglobals.frozen import replace


def mark_hidden_subprograms_static(
    btf: Btf | None, elf: ElfImage, subprograms: list[SubprogramSpec]
) -> Btf | None:
    """A copy of `btf` whose FUNCs for hidden global subprograms have static linkage."""
    if btf is None:
        return None
    names = {f.name for f in subprograms}
    hidden = {
        s.name
        for s in elf.symbols
        if s.type == STT_FUNC
        and s.bind != STB_LOCAL
        and s.visibility in (STV_HIDDEN, STV_INTERNAL)
        and s.name in names
    }
    if not hidden:
        return btf
    types = list(btf.types)
    for tid, t in enumerate(types):
        if isinstance(t, Func) and t.linkage == Linkage.GLOBAL and t.name in hidden:
            types[tid] = replace(t, linkage=Linkage.STATIC)
            hidden.discard(t.name)  # libbpf changes the first FUNC of that name
    return replace(btf, types=types)
