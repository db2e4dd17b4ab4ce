"""The BpfProgram status from its node objects: phase, counts, rollout state, conditions.

Bounded whatever the cluster size: counts, the rollout state, and the nodes that failed or lag
(at most `LISTED_NODES` of each, with their messages cut to `MESSAGE_CHARS`, and a count of the
rest). The per-node facts (program, link and map IDs) live on each BpfProgramNode; the full
`nodes[]` list is kept only while at most `FULL_STATUS_NODES` nodes are selected.

Pure, so that the operator writes status only when this result changes (coalescing many node
updates into one write) and so that it is unit-testable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bpfglobals.k8s.node_objects import NodeObject

FULL_STATUS_NODES = 50  # up to this many selected nodes, status.nodes[] lists each of them
LISTED_NODES = 10  # failed / lagging nodes named in status, each
MESSAGE_CHARS = 256  # of each node's message in status


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


def _entry(
    name: str, obj: NodeObject | None, why: str | None, values: Mapping[str, Any] | None
) -> dict[str, Any]:
    o = obj or NodeObject("", name, "", None)
    entry = {
        "nodeName": name,
        "phase": "Failed" if why is not None else (o.phase or "Pending"),
        "configHash": o.status_hash,
        "programs": list(o.programs),
        "maps": dict(o.maps),
        "message": why if why is not None else o.message,
    }
    if values is not None:  # what this node's values resolved to
        entry["globals"] = dict(values)
    return entry


def _capped(entries: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"nodeName": n, "message": m[:MESSAGE_CHARS]} for n, m in entries[:LISTED_NODES]]


def aggregate(
    *,
    generation: int,
    desired: str,
    elf_sha: str,
    selected: list[str],
    nodes: Mapping[str, NodeObject],
    previous: Mapping[str, Any],
    invalid: str | None,
    now: str,
    invalid_reason: str = "InvalidSpec",
    per_node_values: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
    unresolved: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """`nodes`: node name -> its BpfProgramNode for selected nodes.
    `invalid_reason`: the Degraded reason of `invalid` (SignatureInvalid for signatures).
    With per-node values, `per_node_values`: node -> (its config hash, its resolved globals),
    and `unresolved`: node -> why its values could not be resolved (that node Failed)."""
    ready, updated = 0, 0
    failed: list[tuple[str, str]] = []
    lagging: list[tuple[str, str]] = []
    per_node, why_not = per_node_values or {}, unresolved or {}
    for name in sorted(selected):
        o = nodes.get(name)
        want = per_node[name][0] if name in per_node else desired
        spec_hash = o.spec_hash if o else None
        if spec_hash == want:
            updated += 1
        if name in why_not:
            failed.append((name, why_not[name]))
        elif o and spec_hash == want and o.status_hash == want and o.phase == "Ready":
            ready += 1
        elif o and spec_hash == want and o.phase == "Failed":
            failed.append((name, o.message))
        else:
            lagging.append((name, (o.message if o else "") or (o.phase if o else "") or "Pending"))
    total = len(selected)
    prev = list(previous.get("conditions") or [])
    if invalid:
        phase, reason, msg = "Degraded", invalid_reason, invalid
    elif failed:
        phase, reason = "Degraded", "NodeFailed"
        msg = f"{len(failed)} node(s) failed: " + "; ".join(
            f"{n}: {m[:MESSAGE_CHARS]}" for n, m in failed[:3]
        )
    elif total == 0:
        phase, reason, msg = "Pending", "NoNodes", "no node matches spec.nodeSelector"
    elif ready == total:
        phase, reason, msg = "Ready", "AllNodesReady", f"{total}/{total} nodes run {desired}"
    else:
        phase, reason = "Progressing", "RollingOut"
        msg = f"{ready}/{total} nodes run {desired}"
    is_ready = phase == "Ready"
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "phase": phase,
        "readyNodes": f"{ready}/{total}",
        "configHash": desired,
        "elfSha256": elf_sha,
        "message": msg,
        "nodeCounts": {
            "selected": total,
            "updated": updated,  # asked to run the desired configuration
            "ready": ready,
            "failed": len(failed),
            "lagging": len(lagging),
        },
        "rollout": "Failed" if failed else ("Complete" if ready == total else "InProgress"),
        "failedNodes": _capped(failed),
        "failedNodesNotListed": max(0, len(failed) - LISTED_NODES),
        "laggingNodes": _capped(lagging),
        "laggingNodesNotListed": max(0, len(lagging) - LISTED_NODES),
        "conditions": [
            condition("Ready", is_ready, reason, msg, generation, prev, now),
            condition("Progressing", phase == "Progressing", reason, msg, generation, prev, now),
            condition("Degraded", phase == "Degraded", reason, msg, generation, prev, now),
            # kstatus (Flux, Argo CD, `kubectl` tooling) reads these two: InProgress while
            # Reconciling, Failed when Stalled, Current otherwise.
            condition("Reconciling", phase == "Progressing", reason, msg, generation, prev, now),
            condition("Stalled", phase == "Degraded", reason, msg, generation, prev, now),
        ],
    }
    if total <= FULL_STATUS_NODES:
        status["nodes"] = [
            _entry(n, nodes.get(n), why_not.get(n), per_node[n][1] if n in per_node else None)
            for n in sorted(selected)
        ]
    return status


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
