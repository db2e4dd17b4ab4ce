"""Per-node values: a BpfProgram's globals as one node sees them (pure).

`spec.nodeOverrides` are merged over `spec.globals` in order (an override's variable replaces
the value whole), then every `{fromNode: ...}` value is replaced by the node's address, label
or annotation (or the reference's `default`). The operator calls `resolve_for_node` once per
selected node; the node's BpfProgramNode carries the result and its own config hash, so a
node whose facts change is the only one whose object changes.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bpfglobals.errors import BpfGlobalsError
from bpfglobals.node.manifest import BpfProgramManifest, FromNode, config_hash, from_node

_INT = re.compile(r"^[-+]?(?:[0-9]+|0x[0-9a-fA-F]+|0o[0-7]+)$")


class NodeValueError(BpfGlobalsError):
    """A value taken from a node could not be resolved (missing, no default)."""


@dataclass(frozen=True)
class NodeFacts:
    """What a value may come from: a Node's name, labels, annotations, status.addresses."""

    name: str
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    addresses: tuple[tuple[str, str], ...] = ()  # (type, address) in the Node's order


@dataclass(frozen=True)
class Resolved:
    """One node's view of a BpfProgram: its globals and the hash its agent will report."""

    globals: Mapping[str, Any]
    config_hash: str


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Equality on every key, as `nodeSelector`."""
    return all(labels.get(k) == v for k, v in selector.items())


def merged_globals(m: BpfProgramManifest, labels: Mapping[str, str]) -> dict[str, Any]:
    """spec.globals, then each override selecting these labels, in order (later wins)."""
    out = dict(m.globals)
    for o in m.node_overrides:
        if selects(o.node_selector, labels):
            out.update(o.globals)
    return out


def label_value(text: str) -> object:
    """A label or annotation as a value: a decimal/0x/0o integer or true/false when it reads
    as one (as `--set` does), else the string (an enum member, a char array, an address)."""
    if _INT.match(text):
        t = text.lstrip("+-")
        sign = -1 if text.startswith("-") else 1
        return sign * (int(t, 0) if t.startswith(("0x", "0o")) else int(t, 10))
    if text in ("true", "false"):
        return text == "true"
    return text


def _address(facts: NodeFacts, kind: str, family: int | None) -> str | None:
    for typ, addr in facts.addresses:
        if typ != kind:
            continue
        if family is None:
            return addr
        try:
            if ipaddress.ip_address(addr).version == family:
                return addr
        except ValueError:  # a Hostname entry under an IP type: not what we look for
            continue
    return None


def resolve_value(
    ref: FromNode, facts: NodeFacts, variable: str, family: int | None = None
) -> object:
    """`family` (4, 6 or None): which IP version an address must have, from the variable's
    size (a 4-byte integer takes IPv4, a 16-byte one IPv6)."""
    if ref.kind == "address":
        found: object = _address(facts, ref.key, family)
        what = f"no {ref.key}" + (f" IPv{family}" if family else "") + " address"
    else:
        source = facts.labels if ref.kind == "label" else facts.annotations
        raw = source.get(ref.key)
        found = None if raw is None else label_value(raw)
        what = f"no {ref.kind} {ref.key!r}"
    if found is not None:
        return found
    if ref.has_default:
        return ref.default
    raise NodeValueError(
        f"variable '{variable}': node {facts.name} has {what} and spec.globals.{variable} "
        "gives no default"
    )


def resolve_for_node(
    m: BpfProgramManifest,
    facts: NodeFacts,
    families: Mapping[str, int | None],
    elf_sha256: str | None = None,
) -> Resolved:
    """The globals `facts`' node runs, and their config hash (`families`: variable name -> IP
    version its addresses must have, see `resolve_value`; `elf_sha256`: the object's digest
    where the spec does not name it, as for an image by digest)."""
    out: dict[str, Any] = {}
    for name, value in merged_globals(m, facts.labels).items():
        ref = from_node(value, f"globals.{name}")
        out[name] = value if ref is None else resolve_value(ref, facts, name, families.get(name))
    node_manifest = dataclasses.replace(m, globals=out, node_overrides=())
    return Resolved(out, config_hash(node_manifest, elf_sha256))
