"""BTF: the type container and its queries (parsing lives in `btf_parse`)."""

from __future__ import annotations

from bpfglobals.elf.btf_types import (
    TRANSPARENT_KINDS,
    Array,
    BtfKind,
    BtfType,
    Datasec,
    Enum,
    Float,
    Int,
    Ptr,
    Struct,
    Var,
    Void,
)
from bpfglobals.errors import BtfError
from bpfglobals.frozen import field, mutable

# Typedef chains longer than this are a loop in malformed BTF, not a real program.
MAX_RESOLVE_DEPTH = 32


class BtfQueries:
    """Queries over any indexable BTF (`Btf`, or the lazily decoded kernel BTF)."""

    def __getitem__(self, type_id: int) -> BtfType:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def resolve(self, type_id: int) -> tuple[int, BtfType]:
        """Skip typedefs and qualifiers; return the concrete (id, type)."""
        for _ in range(MAX_RESOLVE_DEPTH):
            t = self[type_id]
            if t.kind not in TRANSPARENT_KINDS:
                return type_id, t
            type_id = t.type  # type: ignore[union-attr]
        raise BtfError(f"BTF type id {type_id}: typedef/qualifier chain too deep (a loop?)")

    def size_of(self, type_id: int) -> int:
        """Size in bytes of a value of this type, as the kernel computes it."""
        for _ in range(MAX_RESOLVE_DEPTH):
            _, t = self.resolve(type_id)
            match t:
                case Int() | Struct() | Enum() | Float() | Datasec():
                    return t.size
                case Ptr():
                    return 8
                case Array():
                    return t.nelems * self.size_of(t.type)
                case Var():
                    type_id = t.type
                    continue
                case _:
                    raise BtfError(f"BTF type id {type_id} ({t.kind.name}) has no size")
        raise BtfError(f"BTF type id {type_id}: chain too deep (a loop?)")


@mutable
class Btf(BtfQueries):
    """All types of one object's .BTF, indexed by type ID (0 is void)."""

    types: list[BtfType] = field(default_factory=lambda: [Void()])
    # The original string section. Encoding starts from it so string offsets recorded
    # elsewhere (.BTF.ext line_info file/line names) stay valid in the blob we load.
    strings: bytes = b"\0"

    def __getitem__(self, type_id: int) -> BtfType:
        if not 0 <= type_id < len(self.types):
            raise BtfError(f"BTF type id {type_id} out of range (have {len(self.types)} types)")
        return self.types[type_id]

    def __len__(self) -> int:
        return len(self.types)

    def find(self, kind: BtfKind, name: str) -> int | None:
        """The first type ID of this kind and name, or None."""
        for i, t in enumerate(self.types):
            if t.kind == kind and t.name == name:
                return i
        return None
