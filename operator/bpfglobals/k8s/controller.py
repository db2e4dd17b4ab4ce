"""The operator's logic as plain functions over the API (kopf handlers in `operator` call it).

One `reconcile` per BpfProgram: validate the spec against its ELF (once per generation), select
nodes, write the per-node objects as the rollout plan allows, and write the aggregated status
only when it changed. Node objects of nodes that are gone (or unreachable past the grace
period) have their finalizer released here: no agent will.
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
from bpfglobals.k8s.node_objects import Expectations, NodeObject, by_node, node_object
from bpfglobals.k8s.nodes import NODE_GRACE, NodeInfo, node_info_of, unreachable
from bpfglobals.k8s.resources import (
    API_VERSION,
    LABEL_NODE,
    LABEL_PROGRAM,
    NODE_FINALIZER,
    PROGRAM_NODES,
    PROGRAMS,
    node_object_name,
)
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

    def forget(self, name: str) -> None:
        """Drop what is kept about a deleted BpfProgram."""
        with self._guard:
            for key in [k for k in self._validated if k[0] == name]:
                del self._validated[key]
            self._locks.pop(name, None)
        self.expected.forget(name)

    def known(self) -> set[str]:
        with self._guard:
            return {k[0] for k in self._validated} | set(self._locks)

    def reconcile(
        self,
        body: Mapping[str, Any],
        event: EventFn,
        nodes: Nodes | None = None,
        objects: list[NodeObject] | None = None,
    ) -> dict[str, Any]:
        """Converge one BpfProgram. `nodes` and `objects` (its BpfProgramNodes) are the
        operator's watch-fed views; without them, both are listed from the API."""
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
        objects = self._node_objects(name) if objects is None else objects
        self._release_abandoned(objects, nodes)
        live = by_node(objects)
        view = self.expected.overlay(name, live)
        resolved: dict[str, Resolved] = {}
        unresolved: dict[str, str] = {}
        if m is not None and invalid is None:
            for n in selected:  # per-node values: each node's own globals and hash
                info = nodes.get(n)
                r, why = self._resolve(v, info.facts(n) if info else NodeFacts(n))
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
            nodes={n: o for n, o in view.items() if n in selected},
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
        """Write the node objects the rollout plan allows now. A selected node whose values
        did not resolve (not in `resolved`) keeps its running configuration: it is neither
        updated nor removed."""
        name, spec = body["metadata"]["name"], body.get("spec") or {}
        states = {
            n: NodeState(n, o.spec_hash, o.status_hash, o.phase)
            for n, o in view.items()
            if n in resolved or n not in selected
        }
        runnable = [n for n in selected if n in resolved]
        want = {n: r.config_hash for n, r in resolved.items()}
        plan = plan_rollout(want, runnable, states, limit)
        for node in plan.create:
            self._create_node_object(body, node, resolved[node])
        for node in plan.update:
            self._update_node_object(name, node, spec, resolved[node])
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

    def _node_objects(self, name: str, label: str = LABEL_PROGRAM) -> list[NodeObject]:
        items = self.api.list(PROGRAM_NODES, f"{label}={name}")["items"]
        return [node_object(o) for o in items]

    def _node_spec(self, name: str, node: str, spec: Mapping[str, Any], r: Resolved) -> dict:
        """What one node converges to: the spec's node fields with its resolved globals."""
        program = {k: spec[k] for k in NODE_SPEC_FIELDS if k in spec}
        if r.globals or "globals" in program:
            program["globals"] = dict(r.globals)
        return {
            "bpfProgram": name,
            "nodeName": node,
            "configHash": r.config_hash,
            "program": program,
        }

    def _create_node_object(self, body: Mapping[str, Any], node: str, r: Resolved) -> None:
        meta, spec = body["metadata"], body.get("spec") or {}
        obj = {
            "apiVersion": API_VERSION,
            "kind": "BpfProgramNode",
            "metadata": {
                "name": node_object_name(meta["name"], node),
                "labels": {LABEL_PROGRAM: meta["name"], LABEL_NODE: node},
                "finalizers": [NODE_FINALIZER],
                "ownerReferences": [
                    {
                        "apiVersion": API_VERSION,
                        "kind": "BpfProgram",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": self._node_spec(meta["name"], node, spec, r),
        }
        try:
            self.api.create_obj(PROGRAM_NODES, obj)
            API_WRITES.labels("operator", "create").inc()
            self.expected.expect(meta["name"], node, r.config_hash)
        except Exception as e:
            # already there: a concurrent reconcile won, or the object of a Node deleted and
            # re-created under the same name is still going (created on a later tick)
            if getattr(e, "status", None) != 409:
                raise

    def _update_node_object(
        self, name: str, node: str, spec: Mapping[str, Any], r: Resolved
    ) -> None:
        # A merge patch would keep globals the new spec dropped: replace the whole program.
        patch = {"spec": self._node_spec(name, node, spec, r)}
        self.api.patch(
            PROGRAM_NODES,
            node_object_name(name, node),
            [{"op": "replace", "path": "/spec", "value": patch["spec"]}],
        )
        API_WRITES.labels("operator", "update").inc()
        self.expected.expect(name, node, r.config_hash)

    def _retire(self, obj: NodeObject, nodes: Nodes) -> bool:
        """Delete one node object; release its finalizer when its node's agent cannot do it
        (the Node is gone or unreachable past the grace period). True: it waits on an agent."""
        if not obj.deleting and obj.name:
            try:
                self.api.delete(PROGRAM_NODES, obj.name)
                API_WRITES.labels("operator", "delete").inc()
            except Exception as e:
                if not is_not_found(e):
                    raise
            self.expected.expect(obj.program, obj.node, None)
        if not obj.waits_for_agent:
            return False
        if not unreachable(nodes.get(obj.node), time.time(), self.node_grace):
            return True
        self._release(obj)
        return False

    def _release(self, obj: NodeObject) -> None:
        """Drop the agent's finalizer, and only it: the patch tests that it is still where the
        view saw it (if the list changed meanwhile, the next reconcile tries again)."""
        i = obj.finalizers.index(NODE_FINALIZER)
        path = f"/metadata/finalizers/{i}"
        try:
            self.api.patch(
                PROGRAM_NODES,
                obj.name,
                [
                    {"op": "test", "path": path, "value": NODE_FINALIZER},
                    {"op": "remove", "path": path},
                ],
            )
            API_WRITES.labels("operator", "finalizer").inc()
            log.info("released %s: node %s is gone or unreachable", obj.name, obj.node)
        except Exception as e:
            if getattr(e, "status", None) not in (404, 409, 422):
                raise

    def _release_abandoned(self, objects: list[NodeObject], nodes: Nodes) -> None:
        """Objects being deleted whose node's agent cannot finish them: release (retried on
        every reconcile, so a missed Node event or a failed patch heals)."""
        for o in objects:
            if o.deleting and o.waits_for_agent:
                self._retire(o, nodes)

    def delete(
        self, name: str, nodes: Nodes | None = None, objects: list[NodeObject] | None = None
    ) -> int:
        """Ask every node to detach; return how many node objects still wait on an agent of a
        node that exists and is reachable."""
        objects = self._node_objects(name) if objects is None else objects
        nodes = self._list_nodes() if nodes is None else nodes
        return sum(self._retire(o, nodes) for o in objects)

    def node_deleted(self, node: str) -> int:
        """A Node object was deleted: remove its node objects and release them (no agent
        will). Returns how many there were."""
        objects = self._node_objects(node, LABEL_NODE)
        for o in objects:
            self._retire(o, {})
        return len(objects)
