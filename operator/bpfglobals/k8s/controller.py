"""The operator's logic as plain functions over the API (kopf handlers in `operator` call it).

One `reconcile` per BpfProgram: validate the spec against its ELF (once per generation), select
nodes, ask each node for the program (its BpfNode entry, through the `NodeWriter`) as the
rollout plan allows, and write the aggregated status only when it changed. The reports
(BpfProgramNodes) of nodes that are gone (or unreachable past the grace period) are deleted
here: no agent will.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bpfglobals.elf.model import ObjectSpec
from bpfglobals.errors import BpfGlobalsError
from bpfglobals.k8s.aggregate import aggregate, same_status
from bpfglobals.k8s.client import TIMEOUT, Api, is_not_found
from bpfglobals.k8s.elf_source import config_map_reader, secret_reader
from bpfglobals.k8s.metrics import API_WRITES, DURATION, RECONCILES
from bpfglobals.k8s.node_objects import Expectations, NodeObject, NodeObjectCache, by_node
from bpfglobals.k8s.node_writer import NodeWriter
from bpfglobals.k8s.nodes import NODE_GRACE, NodeInfo, node_info_of, unreachable
from bpfglobals.k8s.resources import PROGRAM_NODES, PROGRAMS
from bpfglobals.k8s.rollout import NodeState, plan_rollout
from bpfglobals.k8s.validate import validate
from bpfglobals.node.check import address_families
from bpfglobals.node.elf_source import ElfSources, SignatureInvalid
from bpfglobals.node.manifest import (
    NODE_SPEC_FIELDS,
    BpfProgramManifest,
    config_hash,
    parse_spec,
)
from bpfglobals.node.per_node import NodeFacts, Resolved, resolve_for_node
from bpfglobals.values import configure

log = logging.getLogger("bpfglobals.operator")
EventFn = Callable[[str, str], None]  # (reason, message) -> posts a Warning Event


NodeLabels = Mapping[str, Mapping[str, str]]  # node name -> its labels
Nodes = Mapping[str, NodeInfo]  # node name -> labels, annotations, addresses, readiness


def select_nodes(selector: Mapping[str, str], nodes: NodeLabels) -> list[str]:
    """The nodes whose labels match every key of `selector` (equality, as nodeSelector)."""
    return sorted(
        n for n, labels in nodes.items() if all(labels.get(k) == v for k, v in selector.items())
    )


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Validated:
    """One generation of a BpfProgram, checked against its object."""

    manifest: BpfProgramManifest | None  # None: the spec does not parse
    invalid: str | None  # why it cannot run, or None
    families: Mapping[str, int | None] = field(default_factory=dict)  # see check.py
    obj: ObjectSpec | None = None
    checked: dict[str, str | None] = field(default_factory=dict)  # node hash -> problem
    reason: str = "InvalidSpec"  # the Degraded reason and Event reason of `invalid`
    elf_sha: str = ""  # the object's digest (an image by digest resolves to it)


class ProgramController:
    def __init__(
        self, api: Api, node_grace: float = NODE_GRACE, require_signatures: bool = False
    ) -> None:
        self.api = api
        self.node_grace = node_grace
        self.expected = Expectations()
        self.sources = ElfSources(
            config_map_reader(api.core),
            read_secret=secret_reader(api.core),
            require_signatures=require_signatures,
        )
        # (name, generation) -> what its check found
        self._validated: dict[tuple[str, int], Validated] = {}
        # kopf may run a spec handler and the timer of one object at once: one at a time.
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()  # over the two dicts above: worker threads share them
        self.view: NodeObjectCache | None = None
        self.writer: NodeWriter | None = None

    def attach(self, view: NodeObjectCache) -> None:
        """The watch-fed view of the nodes, and a writer of their BpfNodes that reads it."""
        self.view = view
        self.writer = NodeWriter(self.api, view.asked)

    def forget(self, name: str) -> None:
        """Drop what is kept about a deleted BpfProgram."""
        with self._guard:
            for key in [k for k in self._validated if k[0] == name]:
                del self._validated[key]
            self._locks.pop(name, None)
        self.expected.forget(name)

    def reconcile(
        self,
        body: Mapping[str, Any],
        event: EventFn,
        nodes: Nodes | None = None,
        objects: list[NodeObject] | None = None,
    ) -> dict[str, Any]:
        """Converge one BpfProgram. `nodes` and `objects` (the program on each node) are the
        operator's watch-fed views; without them, nodes are listed and objects read from
        `view`."""
        with self._guard:
            lock = self._locks[body["metadata"]["name"]]
        with DURATION.labels("operator").time(), lock:
            try:
                status = self._reconcile(body, event, nodes, objects)
                RECONCILES.labels("operator", "ok").inc()
                return status
            except Exception:
                RECONCILES.labels("operator", "error").inc()
                raise

    def _reconcile(
        self,
        body: Mapping[str, Any],
        event: EventFn,
        nodes: Nodes | None,
        objects: list[NodeObject] | None,
    ) -> dict[str, Any]:
        meta, spec = body["metadata"], body.get("spec") or {}
        name, generation = meta["name"], meta.get("generation", 1)
        v = self._validate(name, generation, spec, event)
        m, invalid = v.manifest, v.invalid
        # The one config hash (`manifest.config_hash`): the node computes the same.
        desired = config_hash(m, v.elf_sha) if m is not None and invalid is None else ""
        nodes = self._list_nodes() if nodes is None else nodes
        # A spec the apiserver stored always parses (tests/e2e/test_schema_agreement.py);
        # if one did not, no node is selected rather than a guess from raw fields.
        selector = m.node_selector if m is not None else None
        labels = {n: i.labels for n, i in nodes.items()}
        selected = [] if selector is None else select_nodes(selector, labels)
        chosen = set(selected)  # membership tests: O(1), 5,000 nodes per tick
        objects = self._objects(name) if objects is None else objects
        self._release_abandoned(objects, nodes)
        live = by_node(objects)
        view = self.expected.overlay(name, live)
        resolved: dict[str, Resolved] = {}
        unresolved: dict[str, str] = {}
        if m is not None and invalid is None:
            same = None
            if not m.per_node() and selected:  # every node runs the same: resolve once
                same = self._resolve(v, NodeFacts(selected[0]))
            for n in selected:  # per-node values: each node's own globals and hash
                info = nodes.get(n)
                r, why = same or self._resolve(v, info.facts(n) if info else NodeFacts(n))
                if r is not None:
                    resolved[n] = r
                else:
                    unresolved[n] = why or ""
            self._roll(body, resolved, selected, view, nodes, m.rollout.max_unavailable)
            view = self.expected.overlay(name, live)
        previous = body.get("status") or {}
        status = aggregate(
            generation=generation,
            desired=desired,
            elf_sha=v.elf_sha or ((m.elf.sha256 or "") if m is not None else ""),
            selected=selected,
            nodes={n: o for n, o in view.items() if n in chosen},
            previous=previous,
            invalid=invalid,
            now=now(),
            invalid_reason=v.reason,
            per_node_values=(
                {n: (r.config_hash, r.globals) for n, r in resolved.items()}
                if m is not None and m.per_node()
                else None
            ),
            unresolved=unresolved,
        )
        if not same_status(status, previous):
            # a merge patch keeps keys it does not name: drop a list the status outgrew
            dropped = {"nodes": None} if "nodes" in previous and "nodes" not in status else {}
            self.api.patch_status(PROGRAMS, name, {"status": {**status, **dropped}})
            API_WRITES.labels("operator", "status").inc()
        return status

    def _resolve(self, v: Validated, facts: NodeFacts) -> tuple[Resolved | None, str | None]:
        """One node's globals, checked with the codec when they come from the node (a label
        that does not parse as the variable's type fails that node, with the codec's
        message); a spec without per-node values resolves to itself."""
        assert v.manifest is not None
        try:
            r = resolve_for_node(v.manifest, facts, v.families, v.elf_sha or None)
            if v.manifest.per_node() and v.obj is not None:
                with self._guard:
                    why = v.checked.get(r.config_hash, "unchecked")
                if why == "unchecked":
                    why = None
                    try:
                        configure(v.obj, r.globals)
                    except BpfGlobalsError as e:
                        why = f"node {facts.name}: {e}"
                    with self._guard:
                        v.checked[r.config_hash] = why
                if why is not None:
                    return None, why
            return r, None
        except BpfGlobalsError as e:
            return None, str(e)

    def _roll(
        self,
        body: Mapping[str, Any],
        resolved: Mapping[str, Resolved],
        selected: list[str],
        view: Mapping[str, NodeObject],
        nodes: Nodes,
        limit: int | str | None,
    ) -> None:
        """Ask the nodes the rollout plan allows now. A selected node whose values did not
        resolve (not in `resolved`) keeps its running configuration: it is neither updated
        nor removed."""
        spec, chosen = body.get("spec") or {}, set(selected)
        states = {
            n: NodeState(n, o.spec_hash, o.status_hash, o.phase)
            for n, o in view.items()
            if n in resolved or n not in chosen
        }
        runnable = [n for n in selected if n in resolved]
        want = {n: r.config_hash for n, r in resolved.items()}
        plan = plan_rollout(want, runnable, states, limit)
        for node in (*plan.create, *plan.update):
            self._ask(body, node, spec, resolved[node])
        for node in plan.delete:
            self._retire(view[node], nodes)

    def _validate(
        self, name: str, generation: int, spec: Mapping[str, Any], event: EventFn
    ) -> Validated:
        """The parsed spec and, once per generation, why it cannot run (checked against its
        ELF: signature, programs exist, values fit), or None."""
        key = (name, generation)
        with self._guard:
            known = self._validated.get(key)
        if known is None:
            m: BpfProgramManifest | None = None
            try:
                m = parse_spec(name, spec, require_sha256=True)
                obj, sha = validate(m, self.sources)
                known = Validated(m, None, address_families(obj), obj, elf_sha=sha)
            except BpfGlobalsError as e:
                reason = "SignatureInvalid" if isinstance(e, SignatureInvalid) else "InvalidSpec"
                if getattr(e, "transient", False):
                    reason = "SourceUnavailable"  # a registry down: asked again next reconcile
                known = Validated(m, str(e), reason=reason)
                event(reason, str(e))
                log.warning("bpfprogram %s generation %s: %s", name, generation, e)
                if reason == "SourceUnavailable":
                    return known
            with self._guard:
                self._validated[key] = known
                for old in [k for k in self._validated if k[0] == name and k[1] < generation]:
                    del self._validated[old]
        return known

    def _list_nodes(self) -> Nodes:
        items = self.api.core.list_node(_request_timeout=TIMEOUT).items
        serialize = self.api.core.api_client.sanitize_for_serialization
        return {n.metadata.name: node_info_of(serialize(n)) for n in items}

    def _objects(self, name: str) -> list[NodeObject]:
        assert self.view is not None, "attach() the node view first"
        return self.view.objects(name)

    @staticmethod
    def _entry(meta: Mapping[str, Any], spec: Mapping[str, Any], r: Resolved) -> dict:
        """What one node converges to: the spec's node fields with its resolved globals."""
        program = {k: spec[k] for k in NODE_SPEC_FIELDS if k in spec}
        if r.globals or "globals" in program:
            program["globals"] = dict(r.globals)
        return {"uid": meta.get("uid", ""), "configHash": r.config_hash, "program": program}

    def _ask(
        self, body: Mapping[str, Any], node: str, spec: Mapping[str, Any], r: Resolved
    ) -> None:
        """Set the program's entry in the node's BpfNode (a whole entry: globals the new spec
        dropped go with the old one)."""
        assert self.writer is not None, "attach() the node view first"
        meta = body["metadata"]
        self.writer.set(node, meta["name"], self._entry(meta, spec, r))
        self.expected.expect(meta["name"], node, r.config_hash)

    def _retire(self, obj: NodeObject, nodes: Nodes) -> bool:
        """Drop the program from one node's BpfNode; delete the agent's report when the agent
        cannot (the Node is gone or unreachable past the grace period). True: it waits on an
        agent."""
        if not obj.deleting and obj.spec_hash is not None:
            assert self.writer is not None, "attach() the node view first"
            self.writer.drop(obj.node, obj.program)
            self.expected.expect(obj.program, obj.node, None)
        if not obj.waits_for_agent:
            return False
        if not unreachable(nodes.get(obj.node), time.time(), self.node_grace):
            return True
        self._release(obj)
        return False

    def _release(self, obj: NodeObject) -> None:
        """Delete a report no agent will delete (it tells of a node that is gone)."""
        try:
            self.api.delete(PROGRAM_NODES, obj.name)
            API_WRITES.labels("operator", "report-delete").inc()
            log.info("deleted %s: node %s is gone or unreachable", obj.name, obj.node)
        except Exception as e:
            if not is_not_found(e):
                raise

    def _release_abandoned(self, objects: list[NodeObject], nodes: Nodes) -> None:
        """Programs dropped from a node whose agent cannot report it: delete the report
        (retried on every reconcile, so a missed Node event or a failed delete heals)."""
        for o in objects:
            if o.deleting and o.waits_for_agent:
                self._retire(o, nodes)

    def delete(
        self, name: str, nodes: Nodes | None = None, objects: list[NodeObject] | None = None
    ) -> int:
        """Ask every node to detach; return how many nodes still run it whose agent can report
        (the node exists and is reachable)."""
        objects = self._objects(name) if objects is None else objects
        nodes = self._list_nodes() if nodes is None else nodes
        return sum(self._retire(o, nodes) for o in objects)

    def node_deleted(self, node: str) -> int:
        """A Node object was deleted: delete its BpfNode and its agent's reports (no agent
        will). Returns how many reports there were."""
        assert self.view is not None and self.writer is not None, "attach() first"
        self.writer.node_gone(node)
        reports = self.view.reports_of(node)
        for o in reports:
            self._release(o)
        return len(reports)
