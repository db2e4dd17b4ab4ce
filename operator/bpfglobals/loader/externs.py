"""Resolve an object's externs against the running kernel and patch the instructions that
use them (libbpf's `bpf_object__resolve_externs` and the RELO_EXTERN_* cases of
`bpf_object__relocate_data`).

- kconfig: a value in the frozen `.kconfig` map (`ldimm64` becomes BPF_PSEUDO_MAP_VALUE).
- typeless ksym (`extern const void x __ksym`): its kallsyms address as a 64-bit constant.
- typed ksym: BPF_PSEUDO_BTF_ID with the kernel's BTF id (imm2: the module BTF fd, 0 for
  vmlinux).
- kfunc call: BPF_PSEUDO_KFUNC_CALL with the kernel's BTF id; `off` indexes `fd_array` when
  the function lives in a module's BTF.
A weak extern that cannot be resolved is zero (kconfig, ksym address) or a call the verifier
must prove dead; a strong one fails the load, naming it.
"""

from __future__ import annotations

import functools
import struct

from bpfglobals.elf.extern_model import ExternKind, ExternSpec
from bpfglobals.elf.model import ObjectSpec
from bpfglobals.frozen import field, frozen, mutable
from bpfglobals.kernel.constants import (
    BPF_PSEUDO_BTF_ID,
    BPF_PSEUDO_KFUNC_CALL,
    BPF_PSEUDO_MAP_VALUE,
)
from bpfglobals.kernel.fd import FD
from bpfglobals.loader import kernel_facts
from bpfglobals.loader.errors import LoadError
from bpfglobals.loader.linker import set_imm


@frozen
class Resolution:
    """How one extern was resolved (shown by `load --json` and checked by the tests)."""

    spec: ExternSpec
    resolved: bool  # False: weak, left zero / poisoned
    source: str  # "/proc/config.gz", "uname", "probe", "kallsyms", "vmlinux BTF", ...
    btf_id: int = 0  # typed ksym / kfunc: the kernel BTF id
    btf_fd: FD | None = None  # module BTF (None: vmlinux)
    fd_index: int = 0  # kfunc: its module BTF's index in fd_array
    address: int = 0  # typeless ksym

    def to_dict(self) -> dict:
        return {
            "name": self.spec.name,
            "kind": self.spec.kind.value,
            "weak": self.spec.weak,
            "resolved": self.resolved,
            "source": self.source,
            **({"btf_id": self.btf_id} if self.btf_id else {}),
            **({"fd_array_index": self.fd_index} if self.fd_index else {}),
        }


@mutable
class ResolvedExterns:
    """How this kernel resolves an object's externs, and the fds held for the load."""

    by_name: dict[str, Resolution] = field(default_factory=dict)
    kconfig: bytes | None = None  # the .kconfig map image
    fd_array: list[int] = field(default_factory=list)  # raw fds; slot 0 unused, as libbpf
    owned: list[FD] = field(default_factory=list)  # module BTF fds held for the load

    def close(self) -> None:
        for fd in self.owned:
            fd.close()


def resolve_externs(obj: ObjectSpec) -> ResolvedExterns:
    """Everything the object's externs need from this kernel, or a LoadError naming one."""
    out = ResolvedExterns()
    if not obj.externs:
        return out
    # imported here: the Kconfig parser (and the value codec under it) is start-up cost an
    # object without externs should not pay (issue 16)
    from bpfglobals.values.kconfig import KconfigError

    try:
        _resolve_kconfig(obj, out)
        _resolve_kallsyms(obj, out)
        btf_externs = [
            e for e in obj.externs if e.kind in (ExternKind.KSYM, ExternKind.KFUNC) and e.type_id
        ]
        if btf_externs:
            from bpfglobals.loader.ksyms import resolve_btf_externs

            resolve_btf_externs(obj, btf_externs, out)
    except KconfigError as e:
        out.close()
        raise LoadError(f"{obj.name}: {e}") from e
    except BaseException:
        out.close()
        raise
    return out


def _resolve_kconfig(obj: ObjectSpec, out: ResolvedExterns) -> None:
    from bpfglobals.values.kconfig import kconfig_image

    kcfg = [e for e in obj.externs if e.kind == ExternKind.KCONFIG]
    if not kcfg or obj.kconfig is None:
        return
    virtual: dict[str, int] = {}
    names = {e.name for e in kcfg}
    if "LINUX_KERNEL_VERSION" in names:
        virtual["LINUX_KERNEL_VERSION"] = kernel_facts.kernel_version()
    if "LINUX_HAS_BPF_COOKIE" in names:
        virtual["LINUX_HAS_BPF_COOKIE"] = int(kernel_facts.has_bpf_cookie())
    if "LINUX_HAS_SYSCALL_WRAPPER" in names:
        virtual["LINUX_HAS_SYSCALL_WRAPPER"] = int(kernel_facts.has_syscall_wrapper())
    config, source = None, "not needed"
    if any(n.startswith("CONFIG_") for n in names):
        config, source = _running_config()
    image, done = kconfig_image(kcfg, obj.kconfig.size, config, virtual, source)
    out.kconfig = image
    for e in kcfg:
        src = source if e.name.startswith("CONFIG_") else "libbpf virtual"
        out.by_name[e.name] = Resolution(e, done[e.name], src if done[e.name] else "weak: zero")


@functools.cache
def _running_config() -> tuple[dict[str, str] | None, str]:
    """The running kernel's config, read and parsed once per process (it cannot change
    under a running kernel)."""
    from bpfglobals.values.kconfig import parse_config

    lines, source = kernel_facts.read_config_lines()
    return (parse_config(lines, source) if lines is not None else None), source


def _resolve_kallsyms(obj: ObjectSpec, out: ResolvedExterns) -> None:
    typeless = [e for e in obj.externs if e.typeless]
    if not typeless:
        return
    found = kernel_facts.kallsyms({e.name for e in typeless})
    for e in typeless:
        addr = found.get(e.name)
        if addr == 0:  # libbpf would load the 0 silently
            raise LoadError(
                f"{obj.name}: extern (ksym) '{e.name}': {kernel_facts.KALLSYMS} shows it at "
                "address 0: this process may not read kernel addresses (it needs CAP_SYSLOG, "
                "or kernel.kptr_restrict=0 with perf_event_paranoid <= 1)"
            )
        if addr is None and not e.weak:
            raise LoadError(
                f"{obj.name}: extern (ksym) '{e.name}': not in {kernel_facts.KALLSYMS}; "
                "declare it __weak to default to 0"
            )
        out.by_name[e.name] = Resolution(
            e, addr is not None, "kallsyms" if addr is not None else "weak: zero", address=addr or 0
        )


def patch_extern(
    insns: bytearray, index: int, r: Resolution, kconfig_fd: FD | None, call: bool, prog: str
) -> None:
    """Rewrite one instruction that names an extern (an ldimm64, or a call when `call`)."""
    e = r.spec
    where = f"program '{prog}': instruction {index} (extern '{e.name}')"
    if call:
        if e.kind != ExternKind.KFUNC:
            raise LoadError(f"{where}: called, but it is a {e.kind.value} extern, not a function")
        # An unresolved weak kfunc keeps id 0 and off 0 (libbpf 1.1): the verifier accepts
        # that only in code it proves dead ("invalid kernel function call not eliminated").
        off = index * 8
        insns[off + 1] = (insns[off + 1] & 0x0F) | (BPF_PSEUDO_KFUNC_CALL << 4)
        struct.pack_into("<hi", insns, off + 2, r.fd_index, r.btf_id)
        return
    if e.kind == ExternKind.KCONFIG:
        assert kconfig_fd is not None and e.kconfig is not None
        set_imm(insns, index, kconfig_fd.raw, BPF_PSEUDO_MAP_VALUE)
        set_imm(insns, index + 1, e.kconfig.offset)
    elif r.resolved and e.type_id:  # typed ksym (or the address of a kfunc)
        set_imm(insns, index, r.btf_id, BPF_PSEUDO_BTF_ID)
        set_imm(insns, index + 1, r.btf_fd.raw if r.btf_fd is not None else 0)
    else:  # typeless ksym, or an unresolved weak one: a plain 64-bit constant
        set_imm(insns, index, _s32(r.address), 0)
        set_imm(insns, index + 1, _s32(r.address >> 32))


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v
