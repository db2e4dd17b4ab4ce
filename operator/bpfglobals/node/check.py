"""Check a BpfProgram against its ELF object, as the agents would apply it (pure).

The one check behind the admission webhook, `bpfglobals validate` and the operator's
status-side validation: every program exists, every value in `spec.globals` and in each
`spec.nodeOverrides[i].globals` encodes through the codec the agents use, and each value taken
from a node (`fromNode`) can reach its variable. One message per problem, so a user fixes
them all at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bpfglobals.elf.model import ObjectSpec
from bpfglobals.errors import BpfGlobalsError
from bpfglobals.loader import select_programs
from bpfglobals.node.manifest import BpfProgramManifest, FromNode, from_node
from bpfglobals.values import configure

# What an address of each IP version looks like to the codec, to check that a variable can
# take one before any node is asked (documentation ranges, RFC 5737 / RFC 3849).
_SAMPLE_ADDRESS = {4: "192.0.2.1", 6: "2001:db8::1", None: "192.0.2.1"}
_SAMPLE_HOSTNAME = "node-1.example"


def address_families(obj: ObjectSpec) -> dict[str, int | None]:
    """Variable name -> the IP version a node address written into it must have: a 4-byte
    variable takes IPv4 (as the codec writes dotted strings into any 4-byte integer), a
    16-byte one IPv6 (`struct in6_addr`, `__u8[16]`); others take the address as text."""
    sizes = {v.name: v.size for v in obj.variables()}
    return {n: 4 if s == 4 else 6 if s == 16 else None for n, s in sizes.items()}


def _encodes(obj: ObjectSpec, name: str, value: object) -> str | None:
    try:
        configure(obj, {name: value})
    except BpfGlobalsError as e:
        return str(e)
    return None


def _check_reference(
    obj: ObjectSpec, name: str, ref: FromNode, families: Mapping[str, int | None]
) -> list[str]:
    out = []
    if ref.has_default and (why := _encodes(obj, name, ref.default)):
        out.append(f"default: {why}")
    if ref.kind == "address":
        ip_type = ref.key.endswith("IP")
        sample = _SAMPLE_ADDRESS[families.get(name)] if ip_type else _SAMPLE_HOSTNAME
        if why := _encodes(obj, name, sample):
            out.append(f"fromNode.address {ref.key}: the variable cannot take an address: {why}")
    # a label or annotation is text, read as an integer or a boolean when it looks like one:
    # the variable must take one of those; the node's actual text is checked per node
    elif all(_encodes(obj, name, sample) for sample in (0, "text")):
        why = _encodes(obj, name, "text")
        out.append(
            f"fromNode.{ref.kind} {ref.key!r}: a {ref.kind} is an integer or a string, which "
            f"the variable takes neither of: {why}"
        )
    return out


def _check_globals(
    obj: ObjectSpec, values: Mapping[str, Any], where: str, families: Mapping[str, int | None]
) -> list[str]:
    out = []
    for name, value in values.items():
        ref = from_node(value, f"{where}.{name}")
        if ref is None:
            if why := _encodes(obj, name, value):
                out.append(f"{where}: {why}")
        elif obj.variable(name) is None:  # the codec's message, with its did-you-mean
            out.append(f"{where}: {_encodes(obj, name, 0)}")
        else:
            out.extend(
                f"{where}.{name}: {msg}" for msg in _check_reference(obj, name, ref, families)
            )
    return out


def problems(m: BpfProgramManifest, obj: ObjectSpec) -> list[str]:
    """Every reason `m` cannot run `obj` on a node (empty: it can), one message each."""
    out = []
    for p in m.programs:
        try:
            select_programs(obj, [p.name], "spec.programs")
        except BpfGlobalsError as e:
            out.append(str(e))
    families = address_families(obj)
    out.extend(_check_globals(obj, m.globals, "spec.globals", families))
    for i, o in enumerate(m.node_overrides):
        out.extend(_check_globals(obj, o.globals, f"spec.nodeOverrides[{i}].globals", families))
    return list(dict.fromkeys(out))  # a program attached twice is one problem
