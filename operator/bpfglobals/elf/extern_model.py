"""What the object says about its externs (the model; `externs` finds them in the ELF): a
module of its own so the loader, and a load whose parse comes from the cache, use the model
without the ELF reader's modules."""

from __future__ import annotations

from enum import Enum

from bpfglobals.frozen import frozen


class ExternKind(Enum):
    KCONFIG = "kconfig"  # `extern ... __kconfig`: a value in the .kconfig map
    KSYM = "ksym"  # `extern ... __ksym` variable: a kernel address (typed: by BTF id)
    KFUNC = "kfunc"  # `extern ... __ksym` function: a kernel function called by BTF id


class KconfigType(Enum):
    """libbpf's `enum kcfg_type`: what a .kconfig extern's C type lets it hold."""

    BOOL = "bool"
    TRISTATE = "tristate"  # enum libbpf_tristate
    CHAR = "char"  # any 1-byte integer
    INT = "int"  # 2/4/8-byte integers
    CHAR_ARRAY = "char_array"  # strings


@frozen
class KconfigField:
    """How a Kconfig extern is laid out in the .kconfig map."""

    type: KconfigType
    size: int
    align: int
    signed: bool
    offset: int  # inside the .kconfig map value


@frozen
class ExternSpec:
    """One extern the object declares (Kconfig, ksym or kfunc): its symbol and BTF."""

    name: str
    kind: ExternKind
    weak: bool
    symbol: int  # ELF symbol index (relocations name it)
    btf_id: int  # the extern VAR or FUNC in the object's BTF
    # KSYM: the VAR's type without modifiers/typedefs, 0 for a typeless (`void`) ksym.
    # KFUNC: the FUNC_PROTO. KCONFIG: the VAR's type.
    type_id: int
    kconfig: KconfigField | None = None

    @property
    def typeless(self) -> bool:
        return self.kind == ExternKind.KSYM and self.type_id == 0
