"""The CO-RE phase of a load: resolve every CO-RE record of the object against the target BTF
(the running kernel's, or `--btf PATH`), patch the functions' instructions before linking, and
explain a verifier rejection that lands on a poisoned instruction.

Records are resolved once per load in object order, with one candidate cache, as libbpf's
bpf_object__relocate_core does: for the functions of the selected programs and every `.text`
subprogram (libbpf relocates those whether a program calls them or not).
"""

from __future__ import annotations

import re

from bpfglobals.elf.btf_ext import CoreRelo
from bpfglobals.elf.core_relo import POISON_IMM, CoreTarget, Resolution, describe, relocate_function
from bpfglobals.elf.core_spec import CoreError
from bpfglobals.elf.model import ObjectSpec, ProgramSpec
from bpfglobals.frozen import replace
from bpfglobals.loader.errors import LoadError, VerifierError
from bpfglobals.loader.kernel_btf import custom_btf, module_btfs, vmlinux_btf
from bpfglobals.loader.linker import LinkedProgram

_POISONED_CALL = re.compile(rf"^(\d+): \(85\) call unknown#{POISON_IMM}$", re.M)


class CoreRelocationError(VerifierError):
    """The verifier reached an instruction whose CO-RE relocation found no target."""


def core_target(target_btf: str | None) -> CoreTarget:
    """The kernel's BTF (modules searched when vmlinux has no candidate), or a custom BTF."""
    if target_btf:
        return CoreTarget(custom_btf(target_btf), target_btf)
    return CoreTarget(vmlinux_btf(), "vmlinux", module_btfs)


def relocate_object(
    obj: ObjectSpec, selected: list[ProgramSpec], target: CoreTarget
) -> tuple[ObjectSpec, list[Resolution]]:
    """`obj` with CO-RE applied to the selected programs and all subprograms; a LoadError
    (prog, relo #, insn, spec, why) when a record cannot be applied, nothing patched then."""
    if obj.btf is None:
        raise LoadError(f"{obj.name}: CO-RE relocations without a .BTF section")
    names = {p.name for p in selected}
    done: list[Resolution] = []
    programs = []
    for p in obj.programs:
        if p.name in names and p.core_relos:
            p = _relocated(p, obj, target, done)
        programs.append(p)
    subprograms = [_relocated(s, obj, target, done) if s.core_relos else s for s in obj.subprograms]
    return replace(obj, programs=programs, subprograms=subprograms), done


def _relocated(fn, obj: ObjectSpec, target: CoreTarget, done: list[Resolution]):
    try:
        insns, res = relocate_function(fn.name, fn.insns, fn.core_relos, obj.btf, target)
    except CoreError as e:
        raise LoadError(f"{obj.name}: {e} (against {target.main_name})") from e
    done += res
    return replace(fn, insns=insns)


def explain_poisoned(
    e: VerifierError, linked: LinkedProgram, obj: ObjectSpec, target: CoreTarget
) -> VerifierError:
    """libbpf's fixup_log_failed_core_relo: name the relocation behind a poisoned call the
    verifier refused (an unguarded access to a field/enumerator the target does not have)."""
    m = _POISONED_CALL.search(e.log)
    if m is None or obj.btf is None:
        return e
    insn = int(m.group(1))
    found: tuple[str, CoreRelo] | None = next(
        ((fn, r) for fn, r in linked.core_relos if r.insn_off in (insn, insn - 1)), None
    )
    if found is None:
        return e
    fn, relo = found
    where = f" (in subprogram '{fn}')" if fn != linked.spec.name else ""
    err = CoreRelocationError(e.program, e.section, "EINVAL", e.log)
    err.args = (
        f"program '{e.program}' (section {e.section}): instruction {insn}{where}: "
        f"CO-RE relocation #{relo.index} {describe(relo, obj.btf)} has no target in "
        f"{target.main_name}, and the verifier reached it: failed to resolve CO-RE relocation "
        "(guard the access with bpf_core_field_exists()/bpf_core_type_exists() or a flavor)",
    )
    return err
