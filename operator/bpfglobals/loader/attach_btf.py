"""The kernel BTF id that fentry/fexit/fmod_ret, tp_btf, lsm and iter programs name at load
time (PROG_LOAD's attach_btf_id), as libbpf finds it: by name in /sys/kernel/btf/vmlinux
(read once per process by `loader.kernel_btf`)."""

from __future__ import annotations

from bpfglobals.elf.btf_types import BtfKind
from bpfglobals.elf.model import ProgramSpec
from bpfglobals.loader.errors import LoadError

# expected attach type -> (prefix of the kernel's name for the target, BTF kind)
_TARGETS: dict[str, tuple[str, BtfKind]] = {
    "trace_fentry": ("", BtfKind.FUNC),
    "trace_fexit": ("", BtfKind.FUNC),
    "modify_return": ("", BtfKind.FUNC),
    "trace_raw_tp": ("btf_trace_", BtfKind.TYPEDEF),
    "lsm_mac": ("bpf_lsm_", BtfKind.FUNC),
    "lsm_cgroup": ("bpf_lsm_", BtfKind.FUNC),
    "trace_iter": ("bpf_iter_", BtfKind.FUNC),
}


def needs_attach_btf(p: ProgramSpec) -> bool:
    return p.type.prog_type in ("tracing", "lsm")


def attach_btf_id(p: ProgramSpec) -> int:
    """The vmlinux type id of `p`'s target, or a LoadError saying what is missing."""
    # imported here: the kernel BTF reader is start-up cost only tracing programs pay
    from bpfglobals.loader.kernel_btf import VMLINUX_BTF, vmlinux_btf

    where = f"program '{p.name}' (section {p.section})"
    rule = _TARGETS.get(p.type.attach_type or "")
    if rule is None:
        raise LoadError(f"{where}: {p.type.attach_type} programs are not supported")
    if not p.type.attach_target:
        raise LoadError(f"{where}: the section names no target (e.g. fentry/do_unlinkat)")
    prefix, kind = rule
    name = prefix + p.type.attach_target
    try:
        tid = vmlinux_btf().find(kind, name)
    except LoadError as e:
        raise LoadError(f"{where}: {e}") from e
    if tid is None:
        raise LoadError(
            f"{where}: the kernel's BTF ({VMLINUX_BTF}) has no {kind.name} '{name}' "
            "(kernel module targets are not supported)"
        )
    return tid
