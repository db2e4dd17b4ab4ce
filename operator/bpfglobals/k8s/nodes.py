"""What the operator knows of each Node: its labels (for selection) and whether its agent can
still be waited on (its `Ready` condition), kept current by a watch.

A delete waits for the agents of nodes that exist and are reachable; a node that is gone, or
whose `Ready` condition has been `False`/`Unknown` for longer than the grace period, is not
waited on: its agent removes what no object asks for when it comes back (its gc).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Kubernetes evicts pods from an unreachable node after 300 s by default
# (`node.kubernetes.io/unreachable` toleration): the same patience for detaching.
NODE_GRACE = 300.0


@dataclass(frozen=True)
class NodeInfo:
    labels: Mapping[str, str] = field(default_factory=dict)
    ready: str | None = None  # the Ready condition's status; None: never reported
    ready_since: float | None = None  # its lastTransitionTime (epoch seconds)


def node_info(labels: Mapping[str, str], status: Mapping[str, Any] | None) -> NodeInfo:
    cond = next(
        (c for c in (status or {}).get("conditions") or [] if c.get("type") == "Ready"), None
    )
    if cond is None:
        return NodeInfo(dict(labels))
    return NodeInfo(dict(labels), cond.get("status"), _epoch(cond.get("lastTransitionTime")))


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
