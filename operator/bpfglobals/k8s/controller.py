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
from typing import Any

from bpfglobals.errors import BpfGlobalsError
from bpfglobals.k8s.aggregate import aggregate, same_status
from bpfglobals.k8s.client import TIMEOUT, Api, is_not_found
from bpfglobals.k8s.elf_source import config_map_reader
from bpfglobals.k8s.metrics import API_WRITES, DURATION, RECONCILES
from bpfglobals.k8s.node_objects import Expectations, NodeObject, by_node, node_object
from bpfglobals.k8s.nodes import NODE_GRACE, NodeInfo, node_info, unreachable
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
from bpfglobals.node.elf_source import ElfSources
from bpfglobals.node.manifest import (
    NODE_SPEC_FIELDS,
    BpfProgramManifest,
    config_hash,
    parse_spec,
)

log = logging.getLogger("bpfglobals.operator")
EventFn = Callable[[str, str], None]  # (reason, message) -> posts a Warning Event


NodeLabels = Mapping[str, Mapping[str, str]]  # node name -> its labels
Nodes = Mapping[str, NodeInfo]  # node name -> labels and readiness


def select_nodes(selector: Mapping[str, str], nodes: NodeLabels) -> list[str]:
    """The nodes whose labels match every key of `selector` (equality, as nodeSelector)."""
    return sorted(
        n for n, labels in nodes.items() if all(labels.get(k) == v for k, v in selector.items())
    )


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ProgramController:
    def __init__(self, api: Api, node_grace: float = NODE_GRACE) -> None:
        self.api = api
        self.node_grace = node_grace
        self.expected = Expectations()
        self.sources = ElfSources(config_map_reader(api.core))
        # (name, generation) -> the parsed spec (None if it does not parse) and why it
        # cannot run (None: it can)
        self._validated: dict[tuple[str, int], tuple[BpfProgramManifest | None, str | None]] = {}
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
        m, invalid = self._validate(name, generation, spec, event)
        # The one config hash (`manifest.config_hash`): the node computes the same.
        desired = config_hash(m) if m is not None and invalid is None else ""
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
        if m is not None and invalid is None:
            self._roll(body, desired, selected, view, nodes, m.rollout.max_unavailable)
            view = self.expected.overlay(name, live)
        previous = body.get("status") or {}
        status = aggregate(
            generation=generation,
            desired=desired,
            elf_sha=(m.elf.sha256 or "") if m is not None else "",
            selected=selected,
            nodes={n: o for n, o in view.items() if n in selected},
            previous=previous,
            invalid=invalid,
            now=now(),
        )
        if not same_status(status, previous):
            # a merge patch keeps keys it does not name: drop a list the status outgrew
            dropped = {"nodes": None} if "nodes" in previous and "nodes" not in status else {}
            self.api.patch_status(PROGRAMS, name, {"status": {**status, **dropped}})
            API_WRITES.labels("operator", "status").inc()
        return status

    def _roll(
        self,
        body: Mapping[str, Any],
        desired: str,
        selected: list[str],
        view: Mapping[str, NodeObject],
        nodes: Nodes,
        limit: int | str | None,
    ) -> None:
        """Write the node objects the rollout plan allows now."""
        name, spec = body["metadata"]["name"], body.get("spec") or {}
        states = {n: NodeState(n, o.spec_hash, o.status_hash, o.phase) for n, o in view.items()}
        plan = plan_rollout(desired, selected, states, limit)
        for node in plan.create:
            self._create_node_object(body, node, desired)
        for node in plan.update:
            self._update_node_object(name, node, spec, desired)
        for node in plan.delete:
            self._retire(view[node], nodes)

    def _validate(
        self, name: str, generation: int, spec: Mapping[str, Any], event: EventFn
    ) -> tuple[BpfProgramManifest | None, str | None]:
        """The parsed spec and, once per generation, why it cannot run (checked against its
        ELF: programs exist, values fit), or None."""
        key = (name, generation)
        with self._guard:
            known = self._validated.get(key)
        if known is None:
            m: BpfProgramManifest | None = None
            try:
                m = parse_spec(name, spec, require_sha256=True)
                validate(m, self.sources)
                known = (m, None)
            except BpfGlobalsError as e:
                known = (m, str(e))
                event("InvalidSpec", str(e))
                log.warning("bpfprogram %s generation %s: %s", name, generation, e)
            with self._guard:
                self._validated[key] = known
                for old in [k for k in self._validated if k[0] == name and k[1] < generation]:
                    del self._validated[old]
        return known

    def _list_nodes(self) -> Nodes:
        items = self.api.core.list_node(_request_timeout=TIMEOUT).items
        return {
            n.metadata.name: node_info(
                n.metadata.labels or {},
                self.api.core.api_client.sanitize_for_serialization(n.status),
            )
            for n in items
        }

    def _node_objects(self, name: str, label: str = LABEL_PROGRAM) -> list[NodeObject]:
        items = self.api.list(PROGRAM_NODES, f"{label}={name}")["items"]
        return [node_object(o) for o in items]

    def _node_spec(self, name: str, node: str, spec: Mapping[str, Any], desired: str) -> dict:
        program = {k: spec[k] for k in NODE_SPEC_FIELDS if k in spec}
        return {"bpfProgram": name, "nodeName": node, "configHash": desired, "program": program}

    def _create_node_object(self, body: Mapping[str, Any], node: str, desired: str) -> None:
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
            "spec": self._node_spec(meta["name"], node, spec, desired),
        }
        try:
            self.api.create_obj(PROGRAM_NODES, obj)
            API_WRITES.labels("operator", "create").inc()
            self.expected.expect(meta["name"], node, desired)
        except Exception as e:
            # already there: a concurrent reconcile won, or the object of a Node deleted and
            # re-created under the same name is still going (created on a later tick)
            if getattr(e, "status", None) != 409:
                raise

    def _update_node_object(
        self, name: str, node: str, spec: Mapping[str, Any], desired: str
    ) -> None:
        # A merge patch would keep globals the new spec dropped: replace the whole program.
        patch = {"spec": self._node_spec(name, node, spec, desired)}
        self.api.patch(
            PROGRAM_NODES,
            node_object_name(name, node),
            [{"op": "replace", "path": "/spec", "value": patch["spec"]}],
        )
        API_WRITES.labels("operator", "update").inc()
        self.expected.expect(name, node, desired)

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
