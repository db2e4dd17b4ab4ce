"""`bpfglobals inspect OBJ [--json]`: programs, maps and global variables of an object."""

from __future__ import annotations

import argparse
import json

from bpfglobals.cli.table import format_table
from bpfglobals.cli.verbs import help_for
from bpfglobals.elf import MapSpec, ObjectSpec, read_object
from bpfglobals.elf.btf_types import FuncProto
from bpfglobals.elf.core_relo import describe as describe_core_relo
from bpfglobals.elf.core_spec import kind_label
from bpfglobals.elf.extern_model import ExternKind, ExternSpec
from bpfglobals.elf.map_types import PERF_EVENT_ARRAY, PIN_BY_NAME, PIN_GLOBAL_NS
from bpfglobals.loader.errors import LoadError
from bpfglobals.loader.linker import EXTERN_KINDS, LinkedProgram, function_table, link_program
from bpfglobals.values import decode_variables, spell


def linked_programs(obj: ObjectSpec) -> dict[str, LinkedProgram | None]:
    """Each program linked with the subprograms it calls (None: its calls do not link; the
    load would say so, and inspect shows the program's own records instead)."""
    table = function_table(obj)
    out: dict[str, LinkedProgram | None] = {}
    for p in obj.programs:
        try:
            out[p.name] = link_program(p, table)
        except LoadError:
            out[p.name] = None
    return out


def core_relocations(
    obj: ObjectSpec, linked: dict[str, LinkedProgram | None]
) -> dict[str, list[dict]]:
    """Per program: the CO-RE records the loader will resolve against the node's kernel —
    its own and those of the subprograms it calls — at their instruction in the linked
    program."""
    out: dict[str, list[dict]] = {}
    for p in obj.programs:
        lp = linked[p.name]
        records = lp.core_relos if lp is not None else [(p.name, r) for r in p.core_relos]
        out[p.name] = [
            {
                "insn": r.insn_off,
                "function": fn,
                "relo": r.index,
                "kind": kind_label(r.kind),
                "type": spell(obj.btf, r.type_id) if obj.btf else str(r.type_id),
                "type_id": r.type_id,
                "access": r.access,
                "spec": describe_core_relo(r, obj.btf) if obj.btf else "",
            }
            for fn, r in records
        ]
    return out


def describe(obj: ObjectSpec) -> dict:
    """The JSON shape of `inspect --json` (stable: scripts and the operator read it)."""
    values = decode_variables(obj)
    linked = linked_programs(obj)
    core = core_relocations(obj, linked)
    used = program_externs(obj, linked)
    info = {
        "object": obj.name,
        "license": obj.license,
        "programs": [
            {
                "name": p.name,
                "section": p.section,
                "type": p.type.prog_type or "unknown",
                "attach_type": p.type.attach_type,
                "insns": p.insn_count,
                "core_relocations": core[p.name],
                "externs": used[p.name],
            }
            for p in obj.programs
        ],
        "maps": [
            {
                "name": d.map_name,
                "type": "array",
                "key_size": 4,
                "value_size": d.size,
                "max_entries": 1,
                "internal": True,
                "section": d.name,
            }
            for d in obj.data_sections
        ]
        + [_user_map(m) for m in obj.maps],
        "variables": [
            {
                "name": v.name,
                "section": v.section,
                "offset": v.offset,
                "size": v.size,
                "type": spell(obj.btf, v.type_id),
                "linkage": v.linkage,
                "value": values[v.name],
            }
            for v in obj.variables()
        ],
    }
    info["maps"][len(obj.data_sections) : len(obj.data_sections)] = kconfig_map(obj)
    info["externs"] = externs(obj, used)
    return info


def program_externs(
    obj: ObjectSpec, linked: dict[str, LinkedProgram | None]
) -> dict[str, list[str]]:
    """Per program, the externs it and the functions it calls refer to (sorted)."""
    out = {}
    for p in obj.programs:
        lp = linked[p.name]
        if lp is not None:
            refs = {r.target for _, r in lp.extern_refs}
        else:
            refs = {r.target for r in p.relocations if r.kind in EXTERN_KINDS}
        out[p.name] = sorted(refs)
    return out


def kconfig_map(obj: ObjectSpec) -> list[dict]:
    k = obj.kconfig
    if k is None:
        return []
    return [
        {
            "name": k.map_name,
            "type": "array",
            "key_size": 4,
            "value_size": k.size,
            "max_entries": 1,
            "internal": True,
            "section": k.name,
        }
    ]


def externs(obj: ObjectSpec, used: dict[str, list[str]]) -> list[dict]:
    """What the loader will resolve on the node, one entry per extern."""
    out = []
    for e in obj.externs:
        entry = {
            "name": e.name,
            "kind": e.kind.value,
            "weak": e.weak,
            "type": _extern_type(obj, e),
            "programs": [p for p, names in used.items() if e.name in names],
        }
        if e.kconfig is not None:
            entry |= {"kconfig_type": e.kconfig.type.value, "offset": e.kconfig.offset}
            entry["size"] = e.kconfig.size
        elif e.kind == ExternKind.KSYM:
            entry["resolved_by"] = "kallsyms address" if e.typeless else "kernel BTF id"
        else:
            entry["resolved_by"] = "kernel BTF id (vmlinux or module)"
        out.append(entry)
    return out


def _extern_type(obj: ObjectSpec, e: ExternSpec) -> str:
    if obj.btf is None:
        return "?"
    if e.kind == ExternKind.KSYM and e.typeless:
        return "void"
    t = obj.btf[e.type_id]
    if isinstance(t, FuncProto):
        params = ", ".join(spell(obj.btf, p.type) for p in t.params)
        return f"{spell(obj.btf, t.return_type)} ({params})"
    return spell(obj.btf, e.type_id)


_PINNING = {PIN_BY_NAME: "by_name", PIN_GLOBAL_NS: "global_ns"}


def _user_map(m: MapSpec) -> dict:
    out = {
        "name": m.name,
        "type": m.type,
        "key_size": m.key_size,
        "value_size": m.value_size,
        "max_entries": m.max_entries,
        "internal": False,
        "pinning": _PINNING.get(m.pinning),
        "flags": m.flags,
        "map_extra": m.map_extra,
        "legacy": m.legacy,
        "slots": {str(i): target for i, target in m.init_slots},
    }
    if m.type_id == PERF_EVENT_ARRAY and m.max_entries == 0:
        out["max_entries"] = "possible CPUs"  # libbpf's default, filled in at load
    if m.inner is not None:
        out["inner"] = {k: v for k, v in _user_map(m.inner).items() if k not in _INNER_SKIP}
    return out


_INNER_SKIP = {"internal", "pinning", "legacy", "slots"}


def _notes(m: dict) -> str:
    notes = []
    if m.get("inner"):
        i = m["inner"]
        notes.append(f"inner {i['type']} {i['key_size']}/{i['value_size']} x{i['max_entries']}")
    if m.get("slots"):
        notes.append("slots " + " ".join(f"{k}={v}" for k, v in m["slots"].items()))
    if m.get("pinning"):
        notes.append(f"pinned {m['pinning']}")
    return "; ".join(notes)


def run(args: argparse.Namespace) -> int:
    info = describe(read_object(args.object))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print("PROGRAMS")
    print(
        format_table(
            ["NAME", "SECTION", "TYPE", "INSNS", "CO-RE", "EXTERNS"],
            [
                [
                    p["name"],
                    p["section"],
                    p["type"],
                    p["insns"],
                    len(p["core_relocations"]),
                    len(p["externs"]),
                ]
                for p in info["programs"]
            ],
        )
    )
    print("\nMAPS")
    print(
        format_table(
            ["NAME", "TYPE", "KEY", "VALUE", "MAX_ENTRIES", "INTERNAL", "NOTES"],
            [
                [
                    m["name"],
                    m["type"],
                    m["key_size"],
                    m["value_size"],
                    m["max_entries"],
                    m["internal"],
                    _notes(m),
                ]
                for m in info["maps"]
            ],
        )
    )
    print("\nVARIABLES")
    print(
        format_table(
            ["NAME", "SECTION", "OFFSET", "SIZE", "TYPE", "VALUE"],
            [
                [v["name"], v["section"], v["offset"], v["size"], v["type"], v["value"]]
                for v in info["variables"]
            ],
        )
    )
    if info["externs"]:
        print("\nEXTERNS (resolved from the running kernel at load)")
        print(
            format_table(
                ["NAME", "KIND", "WEAK", "TYPE", "PROGRAMS"],
                [
                    [e["name"], e["kind"], e["weak"], e["type"], ",".join(e["programs"]) or "-"]
                    for e in info["externs"]
                ],
            )
        )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help=help_for("inspect"))
    p.add_argument("object", help="BPF ELF object (clang -O2 -g -target bpf)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)
