"""The operator's logic as plain functions over the API (kopf handlers in `operator` call it).

One `reconcile` per BpfProgram: validate the spec against its ELF (once per generation), select
nodes, write the per-node objects as the rollout plan allows, and write the aggregated status
only when it changed.
"""

from __future__ import annotations

import datetime
import logging
import threading
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
Nodes = Mapping[str, NodeFacts]  # node name -> what selection and per-node values read


def node_facts(node: Any) -> NodeFacts:
    """The facts of a Node (a client model or a kopf body, as a mapping)."""
    if not isinstance(node, Mapping):  # the client's model: its keys are one word each here
        node = node.to_dict()
    meta, status = node.get("metadata") or {}, node.get("status") or {}
    addresses = [(a.get("type"), a.get("address")) for a in status.get("addresses") or []]
    return NodeFacts(
        meta.get("name", ""),
        dict(meta.get("labels") or {}),
        dict(meta.get("annotations") or {}),
        tuple((str(t), str(a)) for t, a in addresses),
    )


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
    def __init__(self, api: Api, require_signatures: bool = False) -> None:
        self.api = api
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

    def known(self) -> set[str]:
        with self._guard:
            return {k[0] for k in self._validated} | set(self._locks)

    def reconcile(
        self, body: Mapping[str, Any], event: EventFn, nodes: Nodes | None = None
    ) -> dict[str, Any]:
        """Converge one BpfProgram. `nodes` (name -> facts) is the operator's watch-fed view
        of the cluster's Nodes; without it, the nodes are listed from the API."""
        with self._guard:
            lock = self._locks[body["metadata"]["name"]]
        with DURATION.labels("operator").time(), lock:
            try:
                status = self._reconcile(body, event, nodes)
                RECONCILES.labels("operator", "ok").inc()
                return status
            except Exception:
                RECONCILES.labels("operator", "error").inc()
                raise

    def _reconcile(
        self, body: Mapping[str, Any], event: EventFn, nodes: Nodes | None
    ) -> dict[str, Any]:
        meta, spec = body["metadata"], body.get("spec") or {}
        name, generation = meta["name"], meta.get("generation", 1)
        v = self._validate(name, generation, spec, event)
        m, invalid = v.manifest, v.invalid
        # The one config hash (`manifest.config_hash`): the node computes the same.
        desired = config_hash(m, v.elf_sha) if m is not None and invalid is None else ""
        # A spec the apiserver stored always parses (tests/e2e/test_schema_agreement.py);
        # if one did not, no node is selected rather than a guess from raw fields.
        selector = m.node_selector if m is not None else None
        facts = self._list_nodes() if nodes is None else nodes
        selected = (
            []
            if selector is None
            else select_nodes(selector, {n: f.labels for n, f in facts.items()})
        )
        objects = self._node_objects(name)
        resolved: dict[str, Resolved] = {}
        unresolved: dict[str, str] = {}
        if m is not None and invalid is None:
            for n in selected:  # per-node values: each node's own globals and hash
                r, why = self._resolve(v, facts.get(n) or NodeFacts(n))
                if r is not None:
                    resolved[n] = r
                else:
                    unresolved[n] = why or ""
            states = {
                n: NodeState(
                    n,
                    (o.get("spec") or {}).get("configHash"),
                    (o.get("status") or {}).get("configHash"),
                    (o.get("status") or {}).get("phase"),
                )
                for n, o in objects.items()
                if n not in unresolved  # its running configuration stays
            }
            runnable = [n for n in selected if n in resolved]
            want = {n: r.config_hash for n, r in resolved.items()}
            plan = plan_rollout(want, runnable, states, m.rollout.max_unavailable)
            for node in plan.create:
                self._create_node_object(body, node, resolved[node])
            for node in plan.update:
                self._update_node_object(name, node, spec, resolved[node])
            for node in plan.delete:
                self._delete_node_object(name, node)
            if plan.create or plan.update or plan.delete:
                objects = self._node_objects(name)
        previous = body.get("status") or {}
        status = aggregate(
            generation=generation,
            desired=desired,
            elf_sha=v.elf_sha or ((m.elf.sha256 or "") if m is not None else ""),
            selected=selected,
            nodes={n: o for n, o in objects.items() if n in selected},
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
            self.api.patch_status(PROGRAMS, name, {"status": status})
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
        return {n.metadata.name: node_facts(n) for n in items}

    def _node_objects(self, name: str) -> dict[str, dict]:
        items = self.api.list(PROGRAM_NODES, f"{LABEL_PROGRAM}={name}")["items"]
        return {
            o["spec"]["nodeName"]: o for o in items if not o["metadata"].get("deletionTimestamp")
        }

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
        except Exception as e:
            if getattr(e, "status", None) != 409:  # already there: a concurrent reconcile won
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

    def _delete_node_object(self, name: str, node: str) -> None:
        try:
            self.api.delete(PROGRAM_NODES, node_object_name(name, node))
            API_WRITES.labels("operator", "delete").inc()
        except Exception as e:
            if not is_not_found(e):
                raise

    def delete(self, name: str) -> int:
        """Ask every node to detach; return how many node objects are still there."""
        items = self.api.list(PROGRAM_NODES, f"{LABEL_PROGRAM}={name}")["items"]
        for o in items:
            if not o["metadata"].get("deletionTimestamp"):
                self._delete_node_object(name, o["spec"]["nodeName"])
        return len(items)
