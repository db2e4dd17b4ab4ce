"""Which node objects to write now: a pure plan, paced by `rollout.maxUnavailable`.

Nodes that do not run the program yet get it at once (nothing becomes unavailable); nodes
that run an older configuration change at most `maxUnavailable` at a time, the next ones
only when those report Ready with the new configuration. A node that failed the new
configuration keeps its slot busy, so a bad change stops after the first nodes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class NodeState:
    node: str
    spec_hash: str | None  # what its BpfProgramNode asks for (None: no object yet)
    status_hash: str | None  # what the agent reports running
    phase: str | None  # the agent's phase for spec_hash: Ready, Failed, Pending


@dataclass(frozen=True)
class Plan:
    create: tuple[str, ...]
    update: tuple[str, ...]
    delete: tuple[str, ...]  # nodes no longer selected


def max_unavailable(value: int | str | None, total: int) -> int:
    if value is None:
        return 1
    if isinstance(value, str) and value.endswith("%"):
        return max(1, math.floor(total * int(value[:-1]) / 100))
    return max(1, int(value))


def plan_rollout(
    desired: str | Mapping[str, str],
    selected: list[str],
    states: dict[str, NodeState],
    limit: int | str | None,
) -> Plan:
    """`desired`: the config hash every node should run, or each node's own (per-node values)."""

    def want(node: str) -> str:
        return desired if isinstance(desired, str) else desired[node]

    create = tuple(n for n in selected if n not in states)
    chosen = set(selected)
    delete = tuple(sorted(n for n in states if n not in chosen))
    existing = [states[n] for n in selected if n in states]
    in_flight = sum(
        1
        for s in existing
        if s.spec_hash == want(s.node)
        and not (s.status_hash == want(s.node) and s.phase == "Ready")
    )
    budget = max_unavailable(limit, len(selected)) - in_flight
    stale = [s.node for s in existing if s.spec_hash != want(s.node)]
    return Plan(create, tuple(stale[: max(budget, 0)]), delete)
