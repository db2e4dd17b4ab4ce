"""The operator's view of the BpfProgramNodes: a compact record per object, fed by a watch,
and the writes it made that the watch has not shown yet.

Listing every node object of a program on each reconcile costs O(nodes) per tick (5,000 nodes:
megabytes of JSON twice a second); a watch-fed view costs one event per change. A view lags
the operator's own writes, so `Expectations` overlays them until the watch catches up —
without it a reconcile right after an update would see the old spec and exceed
`maxUnavailable` (Kubernetes controllers keep the same "expectations").
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bpfglobals.k8s.client import Api
from bpfglobals.k8s.informer import Informer
from bpfglobals.k8s.resources import NODE_FINALIZER, PROGRAM_NODES


@dataclass(frozen=True)
class NodeObject:
    name: str  # the object's name
    node: str
    program: str
    spec_hash: str | None
    status_hash: str | None = None
    phase: str | None = None
    message: str = ""
    programs: tuple[Mapping[str, Any], ...] = ()
    maps: Mapping[str, int] = field(default_factory=dict)
    deleting: bool = False
    finalizers: tuple[str, ...] = ()
    resource_version: str = ""

    @property
    def waits_for_agent(self) -> bool:
        return NODE_FINALIZER in self.finalizers


def node_object(body: Mapping[str, Any]) -> NodeObject:
    meta, spec = body["metadata"], body.get("spec") or {}
    st = body.get("status") or {}
    return NodeObject(
        name=meta["name"],
        node=spec.get("nodeName", ""),
        program=spec.get("bpfProgram", ""),
        spec_hash=spec.get("configHash"),
        status_hash=st.get("configHash"),
        phase=st.get("phase"),
        message=st.get("message", ""),
        programs=tuple(st.get("programs") or ()),
        maps=dict(st.get("maps") or {}),
        deleting=bool(meta.get("deletionTimestamp")),
        finalizers=tuple(meta.get("finalizers") or ()),
        resource_version=meta.get("resourceVersion", ""),
    )


def by_node(objects: Iterable[NodeObject]) -> dict[str, NodeObject]:
    """Node name -> its live (not being deleted) object."""
    return {o.node: o for o in objects if not o.deleting}


class Expectations:
    """Spec writes (a config hash) and deletes (None) per (program, node) that the watch has
    not reflected yet; forgotten once it has, or after `ttl` seconds (a lost event must not
    pin a stale belief forever)."""

    # A create of a whole cluster's objects takes minutes under load: the watch may show the
    # first ones late, and a belief dropped too early means a duplicate create (a 409).
    def __init__(self, ttl: float = 120.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], tuple[str | None, float]] = {}

    def expect(self, program: str, node: str, spec_hash: str | None) -> None:
        with self._lock:
            self._pending[(program, node)] = (spec_hash, time.monotonic())

    def forget(self, program: str) -> None:
        with self._lock:
            for key in [k for k in self._pending if k[0] == program]:
                del self._pending[key]

    def overlay(self, program: str, objects: Mapping[str, NodeObject]) -> dict[str, NodeObject]:
        """`objects` (node -> live object, as the watch shows them) with the pending writes
        applied."""
        view = dict(objects)
        now = time.monotonic()
        with self._lock:
            mine = [(k[1], v) for k, v in self._pending.items() if k[0] == program]
            for node, (want, since) in mine:
                seen = objects.get(node)
                caught_up = (seen is None) if want is None else (seen and seen.spec_hash == want)
                if caught_up or now - since > self.ttl:
                    del self._pending[(program, node)]
                elif want is None:
                    view.pop(node, None)
                elif seen is None:
                    view[node] = NodeObject("", node, program, want)
                else:
                    view[node] = dataclasses.replace(seen, spec_hash=want)
        return view


class NodeObjectCache:
    """Every BpfProgramNode as a compact record, by program, kept current by one `Informer`
    (paged list, then a resumed watch); `on_change(program)` is called on each event."""

    def __init__(self, api: Api, on_change: Callable[[str], None]) -> None:
        self._lock = threading.Lock()
        self._by_program: dict[str, dict[str, NodeObject]] = {}
        self.on_change = on_change
        self.informer = Informer(
            api, PROGRAM_NODES, "", self._listed, self._event, component="operator"
        )

    def start(self) -> threading.Thread:
        t = threading.Thread(target=self.informer.run, daemon=True, name="node-objects")
        t.start()
        return t

    @property
    def synced(self) -> bool:
        return self.informer.synced.is_set()

    def objects(self, program: str) -> list[NodeObject]:
        with self._lock:
            return list(self._by_program.get(program, {}).values())

    def _listed(self, items: list[dict]) -> None:
        fresh: dict[str, dict[str, NodeObject]] = {}
        for body in items:
            o = node_object(body)
            fresh.setdefault(o.program, {})[o.name] = o
        with self._lock:
            changed = set(fresh) | set(self._by_program)
            self._by_program = fresh
        for program in changed:
            self.on_change(program)

    def _event(self, kind: str, body: dict) -> None:
        o = node_object(body)
        with self._lock:
            mine = self._by_program.setdefault(o.program, {})
            if kind == "DELETED":
                mine.pop(o.name, None)
                if not mine:
                    del self._by_program[o.program]
            else:
                mine[o.name] = o
        self.on_change(o.program)
