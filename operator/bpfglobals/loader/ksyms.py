"""Typed ksyms and kfuncs by kernel BTF id (libbpf's `bpf_object__resolve_ksyms_btf_id`).

A name is looked up in vmlinux BTF first, then in each module's own types. The local type
must be compatible with the kernel's (libbpf's `bpf_core_types_are_compat`): the VAR's type
for a ksym, the FUNC_PROTO for a kfunc. A kfunc found in a module BTF gets that BTF's fd into
the program's `fd_array` (slot 0 stays unused, as libbpf leaves it) and the slot index into
the call's `off`; a ksym found there carries the fd in the ldimm64's second imm.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from bpfglobals.elf.btf_compat import types_are_compat
from bpfglobals.elf.btf_types import BtfKind
from bpfglobals.elf.extern_model import ExternKind, ExternSpec
from bpfglobals.elf.kernel_btf import LazyBtf
from bpfglobals.elf.model import ObjectSpec
from bpfglobals.frozen import mutable
from bpfglobals.kernel.errors import KernelError
from bpfglobals.kernel.fd import FD
from bpfglobals.kernel.objects import btf_name, fd_by_id, ids
from bpfglobals.loader.errors import LoadError
from bpfglobals.loader.externs import Resolution, ResolvedExterns
from bpfglobals.loader.kernel_btf import module_btfs, vmlinux_btf

FD_ARRAY_MAX = 0x7FFF  # insn.off is an s16


@mutable
class KernelBtf:
    """vmlinux or one module's split BTF, and how to open its kernel BTF object."""

    name: str  # "vmlinux" or the module's name
    types: LazyBtf  # a module's: split on top of vmlinux's (own ids start after it)
    open_fd: Callable[[], FD] | None  # None for vmlinux: programs name it with fd 0


def find_ksym(btfs: Sequence[KernelBtf], name: str, kind: BtfKind) -> tuple[KernelBtf, int] | None:
    """libbpf's find_ksym_btf_id: the first vmlinux type of that name and kind, else the
    first module that has one among its own types."""
    for kb in btfs:
        tid = kb.types.find(kind, name)
        if tid is not None:
            return kb, tid
    return None


def kernel_btfs() -> Iterator[KernelBtf]:
    """vmlinux, then the modules (read only if vmlinux lacks a name: most loads never do)."""
    yield KernelBtf("vmlinux", vmlinux_btf(), None)
    mods = module_btfs()
    if not mods:
        return
    by_name = _module_btf_ids()
    for name, btf in mods.items():
        if name not in by_name:
            raise LoadError(f"module BTF '{name}': listed in sysfs but not among BTF objects")
        yield KernelBtf(name, btf, lambda i=by_name[name]: fd_by_id("btf", i))


def _module_btf_ids() -> dict[str, int]:
    """Kernel BTF object ids of the modules (libbpf's load_module_btfs walk)."""
    out = {}
    for i in ids("btf"):
        try:
            with fd_by_id("btf", i) as fd:
                name, kernel = btf_name(fd)
        except KernelError:
            continue  # freed between listing and opening
        if kernel and name != "vmlinux":
            out[name] = i
    return out


def resolve_btf_externs(
    obj: ObjectSpec,
    externs: list[ExternSpec],
    out: ResolvedExterns,
    btfs: Sequence[KernelBtf] | None = None,
) -> None:
    """Fill `out` for typed ksyms and kfuncs (tests hand in made-up `btfs`)."""
    btfs = _Lazy(kernel_btfs()) if btfs is None else btfs
    assert obj.btf is not None  # externs are only collected from objects with BTF
    fd_slots: dict[str, int] = {}  # module name -> its fd_array index
    opened: dict[str, FD] = {}  # module name -> its BTF fd, opened once per load
    for e in externs:
        kind = BtfKind.FUNC if e.kind == ExternKind.KFUNC else BtfKind.VAR
        what = f"{obj.name}: extern ({'func' if kind == BtfKind.FUNC else 'var'} ksym) '{e.name}'"
        hit = find_ksym(btfs, e.name, kind)
        if hit is None:
            if e.weak:
                out.by_name[e.name] = Resolution(e, False, "weak: not in kernel BTF")
                continue
            raise LoadError(
                f"{what}: not found in the kernel's BTF (vmlinux and {len(btfs) - 1} module "
                "BTFs); declare it __weak to allow its absence"
            )
        kb, kid = hit
        target_type = kb.types[kid].type
        if not types_are_compat(obj.btf, e.type_id, kb.types, target_type):
            raise LoadError(
                f"{what}: local type [{e.type_id}] is incompatible with {kb.name}'s "
                f"[{target_type}] (BTF {kb.types[target_type].kind.name})"
            )
        btf_fd = None
        index = 0
        if kb.open_fd is not None:
            btf_fd = opened.get(kb.name)
            if btf_fd is None:
                btf_fd = opened[kb.name] = kb.open_fd()
                out.owned.append(btf_fd)
            if e.kind == ExternKind.KFUNC:
                index = fd_slots.get(kb.name, 0)
                if not index:
                    if not out.fd_array:
                        out.fd_array.append(0)  # slot 0 means vmlinux to the kernel
                    if len(out.fd_array) > FD_ARRAY_MAX:
                        raise LoadError(f"{what}: more module BTFs than fit in insn.off")
                    index = fd_slots[kb.name] = len(out.fd_array)
                    out.fd_array.append(btf_fd.raw)
        out.by_name[e.name] = Resolution(
            e, True, f"{kb.name} BTF", btf_id=kid, btf_fd=btf_fd, fd_index=index
        )


class _Lazy(Sequence[KernelBtf]):
    """Kernel BTFs read as far as a lookup needs them (modules only past vmlinux)."""

    def __init__(self, source: Iterator[KernelBtf]) -> None:
        self._source, self._seen = source, []

    def __iter__(self) -> Iterator[KernelBtf]:
        yield from self._seen
        for kb in self._source:
            self._seen.append(kb)
            yield kb

    def __len__(self) -> int:
        self._seen.extend(self._source)
        return len(self._seen)

    def __getitem__(self, i):  # type: ignore[override]
        len(self)
        return self._seen[i]
