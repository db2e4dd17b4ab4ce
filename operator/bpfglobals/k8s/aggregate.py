"""The BpfProgram status from its node objects: phase, n/m, conditions, per-node facts.

Pure, so that the operator writes status only when this result changes (coalescing many node
updates into one write) and so that it is unit-testable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def condition(
    type_: str,
    ok: bool,
    reason: str,
    message: str,
    generation: int,
    previous: list[Mapping[str, Any]],
    now: str,
) -> dict[str, Any]:
    status = "True" if ok else "False"
    old = next((c for c in previous if c.get("type") == type_), None)
    since = old.get("lastTransitionTime", now) if old and old.get("status") == status else now
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": since,
    }


def aggregate(
    *,
    generation: int,
    desired: str,
    elf_sha: str,
    selected: list[str],
    nodes: Mapping[str, Mapping[str, Any]],
    previous: Mapping[str, Any],
    invalid: str | None,
    now: str,
    invalid_reason: str = "InvalidSpec",
    per_node_values: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
    unresolved: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """`nodes`: node name -> its BpfProgramNode (spec and status) for selected nodes.
    `invalid_reason`: the Degraded reason of `invalid` (SignatureInvalid for signatures).
    With per-node values, `per_node_values`: node -> (its config hash, its resolved globals),
    and `unresolved`: node -> why its values could not be resolved (that node Failed)."""
    ready, failed, per_node = [], [], []
    for name in sorted(selected):
        obj = nodes.get(name) or {}
        st = obj.get("status") or {}
        spec_hash = (obj.get("spec") or {}).get("configHash")
        want, values = (per_node_values or {}).get(name, (desired, None))
        current = spec_hash == want and st.get("configHash") == want
        why = (unresolved or {}).get(name)
        if why is not None:
            failed.append((name, why))
        elif current and st.get("phase") == "Ready":
            ready.append(name)
        elif spec_hash == want and st.get("phase") == "Failed":
            failed.append((name, st.get("message", "")))
        entry = {
            "nodeName": name,
            "phase": "Failed" if why is not None else st.get("phase", "Pending"),
            "configHash": st.get("configHash"),
            "programs": st.get("programs", []),
            "maps": st.get("maps", {}),
            "message": why if why is not None else st.get("message", ""),
        }
        if values is not None:  # what this node's values resolved to
            entry["globals"] = dict(values)
        per_node.append(entry)
    total = len(selected)
    prev = list(previous.get("conditions") or [])
    if invalid:
        phase, reason, msg = "Degraded", invalid_reason, invalid
    elif failed:
        phase, reason = "Degraded", "NodeFailed"
        msg = f"{len(failed)} node(s) failed: " + "; ".join(f"{n}: {m}" for n, m in failed[:3])
    elif total == 0:
        phase, reason, msg = "Pending", "NoNodes", "no node matches spec.nodeSelector"
    elif len(ready) == total:
        phase, reason, msg = "Ready", "AllNodesReady", f"{total}/{total} nodes run {desired}"
    else:
        phase, reason = "Progressing", "RollingOut"
        msg = f"{len(ready)}/{total} nodes run {desired}"
    is_ready = phase == "Ready"
    return {
        "observedGeneration": generation,
        "phase": phase,
        "readyNodes": f"{len(ready)}/{total}",
        "configHash": desired,
        "elfSha256": elf_sha,
        "message": msg,
        "conditions": [
            condition("Ready", is_ready, reason, msg, generation, prev, now),
            condition("Progressing", phase == "Progressing", reason, msg, generation, prev, now),
            condition("Degraded", phase == "Degraded", reason, msg, generation, prev, now),
            # kstatus (Flux, Argo CD, `kubectl` tooling) reads these two: InProgress while
            # Reconciling, Failed when Stalled, Current otherwise.
            condition("Reconciling", phase == "Progressing", reason, msg, generation, prev, now),
            condition("Stalled", phase == "Degraded", reason, msg, generation, prev, now),
        ],
        "nodes": per_node,
    }


def same_status(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal but for condition timestamps (which only move on transitions anyway)."""

    def strip(s: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **s,
            "conditions": [
                {k: v for k, v in c.items() if k != "lastTransitionTime"}
                for c in s.get("conditions") or []
            ],
        }

    return strip(a) == strip(b)
