"""Decide what an apply does: pure, so every branch is unit-tested without a kernel.

Inputs: the desired state (`desire`: manifest + parsed object + configured images) and what the
reconciler observed in bpffs and the kernel (`Observed`). Output: a `Plan` that the
reconciler's transaction carries out. Branches:
- unchanged: same variant key, every link runs the recorded variant, same config hash;
- live write: same variant key, only .data/.bss values (or resetBss) changed: write the
  changed variables into the shared maps, same programs;
- re-attach: same variant key, but a link is missing, runs something else, or the attach
  points changed: attach the recorded variant's programs where they are missing;
- new variant: no record, the ELF, a .rodata image or the program set changed, or the
  recorded variant is gone: load a new variant and swap every link to it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from bpfglobals.elf.model import DataKind, ObjectSpec
from bpfglobals.node.manifest import BpfProgramManifest, config_hash
from bpfglobals.node.record import AppliedRecord, RecordedLink

LIVE_KINDS = (DataKind.DATA, DataKind.BSS)  # sections shared across variants, written live


class Action(Enum):
    UNCHANGED = "unchanged"
    LIVE_WRITE = "updated-live"
    REATTACH = "reattached"
    CREATE = "created"  # a new variant, nothing of this name was here
    RELOAD = "reloaded"  # a new variant replacing a running one


@dataclass(frozen=True)
class Observed:
    """Kernel and bpffs facts the reconciler read before planning."""

    record: AppliedRecord | None
    # pin names of the recorded links that exist and run the recorded variant's program
    intact_links: frozenset[str] = frozenset()
    variant_present: bool = False  # the recorded variant's programs are pinned
    leftovers: bool = False  # pins without a record (an apply killed half-way)


@dataclass(frozen=True)
class Plan:
    action: Action
    record: AppliedRecord  # to write once the kernel runs it (variant filled in for a new one)
    attach: tuple[RecordedLink, ...] = ()  # links to create, or swap to the plan's variant
    live_writes: tuple[str, ...] = ()  # .data/.bss variables to write into the shared maps
    keep_live_maps: bool = False  # a new variant takes over the running .data/.bss maps
    reset_bss: bool = False  # ... except .bss, which starts zeroed
    detail: Mapping[str, str] = field(default_factory=dict)  # why, for logs and tests

    @property
    def new_variant(self) -> bool:
        return self.action in (Action.CREATE, Action.RELOAD)


def ro_key(
    obj: ObjectSpec,
    images: Mapping[str, bytes],
    elf_sha: str,
    programs: list[str],
    btf_path: str | None = None,
) -> str:
    """What forces a new variant: the ELF, the read-only images, the program set, and the
    CO-RE target BTF (relocation happens at load)."""
    h = hashlib.sha256(elf_sha.encode())
    if btf_path is not None:
        h.update(b"btf\0" + btf_path.encode() + b"\0")
    for d in obj.data_sections:
        if d.kind not in LIVE_KINDS:
            h.update(d.name.encode() + b"\0" + images[d.name])
    h.update(repr(sorted(set(programs))).encode())
    return h.hexdigest()[:16]


def live_values(obj: ObjectSpec, images: Mapping[str, bytes]) -> dict[str, str]:
    """Hex bytes of every .data/.bss variable as configured (to see which ones changed)."""
    return {
        v.name: images[d.name][v.offset : v.offset + v.size].hex()
        for d in obj.data_sections
        if d.kind in LIVE_KINDS
        for v in d.variables
    }


def desire(
    m: BpfProgramManifest,
    obj: ObjectSpec,
    images: Mapping[str, bytes],
    elf_sha: str,
    shown: Mapping[tuple[str, str], str] | None = None,
) -> AppliedRecord:
    """The record an apply of `m` converges to (variant 0: not loaded yet). `shown`:
    (program, point key) -> the target as resolved (a tracing program's section target)."""
    links = tuple(
        RecordedLink(
            program=a.name,
            key=a.attach.key(),
            kind=a.attach.kind,
            target=(shown or {}).get((a.name, a.attach.key())) or a.attach.describe(),
        )
        for a in m.programs
    )
    return AppliedRecord(
        name=m.name,
        elf=m.elf.describe(),
        elf_sha256=elf_sha,
        globals=dict(m.globals),
        ro_key=ro_key(obj, images, elf_sha, [a.name for a in m.programs], m.btf_path),
        config_hash=config_hash(m, elf_sha),
        links=links,
        live=live_values(obj, images),
    )


def plan(wanted: AppliedRecord, seen: Observed, *, reset_bss: bool = False) -> Plan:
    rec = seen.record
    if rec is None or rec.ro_key != wanted.ro_key or not seen.variant_present:
        same_elf = rec is not None and rec.elf_sha256 == wanted.elf_sha256
        why = (
            "nothing recorded"
            if rec is None
            else "recorded variant is gone"
            if rec.ro_key == wanted.ro_key
            else "ELF changed"
            if not same_elf
            else "read-only values or the program set changed"
        )
        return Plan(
            action=Action.RELOAD if rec is not None or seen.leftovers else Action.CREATE,
            record=wanted,
            attach=wanted.links,
            live_writes=_changed(wanted, rec) if same_elf else (),
            keep_live_maps=same_elf,
            reset_bss=reset_bss,
            detail={"why": why},
        )
    kept = wanted.with_variant(rec.variant, rec.loaded_at)
    missing = tuple(k for k in wanted.links if k.pin_name not in seen.intact_links)
    writes = _changed(wanted, rec)
    if missing:
        action, why = Action.REATTACH, "links missing or running something else"
    elif rec != kept:  # values (live writes among them), the config hash or the record shape
        action, why = Action.LIVE_WRITE, "writable values or the record changed"
    else:
        action, why = Action.UNCHANGED, "the kernel runs the recorded variant"
    return Plan(action=action, record=kept, attach=missing, live_writes=writes, detail={"why": why})


def _changed(wanted: AppliedRecord, rec: AppliedRecord | None) -> tuple[str, ...]:
    before = rec.live if rec is not None else {}
    return tuple(sorted(v for v, hexval in wanted.live.items() if before.get(v) != hexval))


__all__ = ["Action", "Observed", "Plan", "desire", "live_values", "plan", "ro_key"]
