"""What the operator knows of each Node: its labels (for selection), annotations and addresses
(for per-node values) and whether its agent can still be waited on (its `Ready` condition),
kept current by a watch.

A delete waits for the agents of nodes that exist and are reachable; a node that is gone, or
whose `Ready` condition has been `False`/`Unknown` for longer than the grace period, is not
waited on: its agent removes what no object asks for when it comes back (its gc).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bpfglobals.node.per_node import NodeFacts

# Kubernetes evicts pods from an unreachable node after 300 s by default
# (`node.kubernetes.io/unreachable` toleration): the same patience for detaching.
NODE_GRACE = 300.0


@dataclass(frozen=True)
class NodeInfo:
    labels: Mapping[str, str] = field(default_factory=dict)
    ready: str | None = None  # the Ready condition's status; None: never reported
    ready_since: float | None = None  # its lastTransitionTime (epoch seconds)
    annotations: Mapping[str, str] = field(default_factory=dict)
    addresses: tuple[tuple[str, str], ...] = ()  # status.addresses: (type, address)

    def facts(self, name: str) -> NodeFacts:
        """What per-node values read of this node."""
        return NodeFacts(name, self.labels, self.annotations, self.addresses)


def node_info(
    labels: Mapping[str, str],
    status: Mapping[str, Any] | None,
    annotations: Mapping[str, str] | None = None,
) -> NodeInfo:
    status = status or {}
    addresses = tuple(
        (str(a.get("type")), str(a.get("address"))) for a in status.get("addresses") or []
    )
    cond = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    ready, since = (
        (None, None)
        if cond is None
        else (cond.get("status"), _epoch(cond.get("lastTransitionTime")))
    )
    return NodeInfo(dict(labels), ready, since, dict(annotations or {}), addresses)


def node_info_of(node: Mapping[str, Any]) -> NodeInfo:
    """A Node as a mapping (a kopf body, or a serialized client object)."""
    meta = node.get("metadata") or {}
    return node_info(meta.get("labels") or {}, node.get("status"), meta.get("annotations"))


def node_facts(node: Mapping[str, Any]) -> NodeFacts:
    return node_info_of(node).facts((node.get("metadata") or {}).get("name", ""))


def _epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:  # a malformed time: no evidence of how long, so keep waiting
        return None


def unreachable(info: NodeInfo | None, now: float, grace: float) -> bool:
    """True when no delete should wait on this node's agent: the Node is gone, or Ready has
    been False/Unknown for longer than `grace` seconds."""
    if info is None:
        return True
    if info.ready in ("False", "Unknown") and info.ready_since is not None:
        return now - info.ready_since > grace
    return False
