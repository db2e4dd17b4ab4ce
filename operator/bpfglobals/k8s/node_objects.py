"""The operator's view of the nodes: what each BpfNode asks for and what each agent reports (its
BpfProgramNodes), joined per (program, node), fed by two watches; and the writes it made that
the watches have not shown yet.

Listing a program's objects on each reconcile costs O(nodes) per tick (5,000 nodes: megabytes
of JSON twice a second); watch-fed views cost one event per change. A view lags the operator's
own writes, so `Expectations` overlays them until the watch catches up: without it a reconcile
right after an update would see the old spec and exceed `maxUnavailable` (Kubernetes
controllers keep the same "expectations").
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
from bpfglobals.k8s.resources import NODES, PROGRAM_NODES


@dataclass(frozen=True)
class NodeObject:
    """One program on one node: its BpfNode entry and its agent's report, joined."""

    name: str  # the report's name ("" while there is none)
    node: str
    program: str
    spec_hash: str | None  # what the node's BpfNode asks for (None: no entry)
    status_hash: str | None = None  # what the agent reports running
    phase: str | None = None
    message: str = ""
    programs: tuple[Mapping[str, Any], ...] = ()
    maps: Mapping[str, int] = field(default_factory=dict)
    deleting: bool = False  # the BpfNode dropped the program; the agent has not yet
    reported: bool = False  # the agent's report exists
    resource_version: str = ""  # the report's

    @property
    def waits_for_agent(self) -> bool:
        """The program is still on the node (as far as its agent has said)."""
        return self.reported


def node_object(body: Mapping[str, Any]) -> NodeObject:
    """A report (BpfProgramNode) as a record; its spec_hash is the hash it was written for
    (`join` puts in what the BpfNode asks for now)."""
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
        reported=True,
        resource_version=meta.get("resourceVersion", ""),
    )


def join(program: str, node: str, asked: str | None, report: NodeObject | None) -> NodeObject:
    """The BpfNode's entry (`asked`, None: none) with the report of the same program and node."""
    if report is None:
        return NodeObject("", node, program, asked)
    r = report  # built directly: dataclasses.replace costs 5,000 x more per tick
    return NodeObject(
        r.name,
        node,
        program,
        asked,
        r.status_hash,
        r.phase,
        r.message,
        r.programs,
        r.maps,
        asked is None,
        True,
        r.resource_version,
    )


def by_node(objects: Iterable[NodeObject]) -> dict[str, NodeObject]:
    """Node name -> its live object (one its BpfNode still asks for)."""
    return {o.node: o for o in objects if not o.deleting}


def entries(body: Mapping[str, Any]) -> dict[str, str]:
    """A BpfNode's programs: name -> the config hash it asks for."""
    programs = (body.get("spec") or {}).get("programs") or {}
    return {p: e.get("configHash", "") for p, e in programs.items()}


class Expectations:
    """Spec writes (a config hash) and deletes (None) per (program, node) that the watch has
    not reflected yet; forgotten once it has, or after `ttl` seconds (a lost event must not
    pin a stale belief forever)."""

    # A create of a whole cluster's objects takes minutes under load: the watch may show the
    # first ones late, and a belief dropped too early means a duplicate write.
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
    """Every BpfNode's entries and every BpfProgramNode as a compact record, kept current by two
    `Informer`s (paged list, then a resumed watch); `on_change(program)` is called for each
    program an event touches (a BpfNode event only for the entries it changed)."""

    def __init__(self, api: Api, on_change: Callable[[str], None]) -> None:
        self._lock = threading.Lock()
        self._asked: dict[str, dict[str, str]] = {}  # node -> program -> hash (its BpfNode)
        self._asked_by_program: dict[str, dict[str, str]] = {}  # program -> node -> hash
        self._reports: dict[str, dict[str, NodeObject]] = {}  # program -> node -> report
        self.on_change = on_change
        self.informers = (
            Informer(api, NODES, "", self._nodes_listed, self._node_event, component="operator"),
            Informer(
                api,
                PROGRAM_NODES,
                "",
                self._reports_listed,
                self._report_event,
                component="operator",
            ),
        )

    def start(self) -> list[threading.Thread]:
        threads = []
        for inf in self.informers:
            t = threading.Thread(target=inf.run, daemon=True, name=f"watch-{inf.plural}")
            t.start()
            threads.append(t)
        return threads

    @property
    def synced(self) -> bool:
        return all(inf.synced.is_set() for inf in self.informers)

    def objects(self, program: str) -> list[NodeObject]:
        """Every node the program is asked on or reported from."""
        with self._lock:
            asked = self._asked_by_program.get(program, {})
            reports = self._reports.get(program, {})
            return [join(program, n, asked.get(n), reports.get(n)) for n in asked.keys() | reports]

    def asked(self, node: str) -> dict[str, str] | None:
        """The node's BpfNode entries (program -> hash), or None when it has no BpfNode."""
        with self._lock:
            mine = self._asked.get(node)
            return None if mine is None else dict(mine)

    def reports_of(self, node: str) -> list[NodeObject]:
        with self._lock:
            return [r[node] for r in self._reports.values() if node in r]

    # -- BpfNodes -------------------------------------------------------------------------------

    def _nodes_listed(self, items: list[dict]) -> None:
        fresh = {o["metadata"]["name"]: entries(o) for o in items}
        with self._lock:
            changed = {p for e in [*fresh.values(), *self._asked.values()] for p in e}
            self._asked = {}
            self._asked_by_program = {}
            for node, e in fresh.items():
                self._set_asked(node, e)
        for program in changed:
            self.on_change(program)

    def _node_event(self, kind: str, body: dict) -> None:
        node = body["metadata"]["name"]
        new = {} if kind == "DELETED" else entries(body)
        with self._lock:
            old = self._asked.get(node, {})
            changed = {p for p in old.keys() | new.keys() if old.get(p) != new.get(p)}
            self._set_asked(node, None if kind == "DELETED" else new)
        for program in changed:
            self.on_change(program)

    def _set_asked(self, node: str, new: dict[str, str] | None) -> None:
        for p in self._asked.get(node, {}):
            mine = self._asked_by_program.get(p, {})
            mine.pop(node, None)
            if not mine:
                self._asked_by_program.pop(p, None)
        if new is None:
            self._asked.pop(node, None)
            return
        self._asked[node] = new
        for p, h in new.items():
            self._asked_by_program.setdefault(p, {})[node] = h

    # -- reports --------------------------------------------------------------------------------

    def _reports_listed(self, items: list[dict]) -> None:
        fresh: dict[str, dict[str, NodeObject]] = {}
        for body in items:
            o = node_object(body)
            fresh.setdefault(o.program, {})[o.node] = o
        with self._lock:
            changed = set(fresh) | set(self._reports)
            self._reports = fresh
        for program in changed:
            self.on_change(program)

    def _report_event(self, kind: str, body: dict) -> None:
        o = node_object(body)
        with self._lock:
            mine = self._reports.setdefault(o.program, {})
            if kind == "DELETED":
                mine.pop(o.node, None)
                if not mine:
                    del self._reports[o.program]
            else:
                mine[o.node] = o
        self.on_change(o.program)
