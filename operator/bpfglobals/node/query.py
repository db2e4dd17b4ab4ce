"""Read what is applied on this node: names and status from bpffs (no ELF, no loader).

`bpfglobals get` imports only this (and the kernel shim), not the reconcile machinery.
"""

from __future__ import annotations

import os

from bpfglobals.kernel.objects import link_info, map_info, obj_get, prog_info
from bpfglobals.node.layout import Layout
from bpfglobals.node.record import AppliedRecord
from bpfglobals.node.record_store import read_record
from bpfglobals.node.status import AppliedStatus, LinkStatus, ProgramStatus


def applied_names(root: str) -> list[str]:
    if not os.path.isdir(root):
        return []
    out = []
    for d in sorted(os.listdir(root)):
        rec = read_record(os.path.join(root, d, "record"))
        if rec is not None:
            out.append(rec.name)
    return out


def applied_status(root: str, name: str) -> AppliedStatus | None:
    lay = Layout(root, name)
    rec = read_record(lay.record)
    return None if rec is None else status_of(lay, rec)


def status_of(lay: Layout, rec: AppliedRecord) -> AppliedStatus:
    by_prog: dict[str, list[LinkStatus]] = {}
    for k in rec.links:
        path = lay.link(k.program, k.key)
        if os.path.exists(path):
            with obj_get(path) as link:
                info = link_info(link)
            by_prog.setdefault(k.program, []).append(LinkStatus(info.id, info.type, k.target))
    programs = []
    for name in rec.programs:
        with obj_get(lay.program(rec.variant, name)) as fd:
            info = prog_info(fd)[0]
        programs.append(ProgramStatus(name, info.id, info.tag, tuple(by_prog.get(name, ()))))
    maps: dict[str, int] = {}
    for d in (lay.maps, os.path.join(lay.variant(rec.variant), "maps")):
        if os.path.isdir(d):
            for entry in sorted(os.listdir(d)):
                with obj_get(os.path.join(d, entry)) as fd:
                    info = map_info(fd)
                maps[info.name] = info.id
    return AppliedStatus(
        name=rec.name,
        programs=tuple(programs),
        maps=maps,
        globals=rec.globals,
        config_hash=rec.config_hash,
        elf_sha256=rec.elf_sha256,
        loaded_at=rec.loaded_at,
        extra={"variant": rec.variant},
    )
