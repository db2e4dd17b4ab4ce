"""Per-node values in the fan-out: each node's own hash paces the rollout, and the status
shows what each node's values resolved to (pure parts of the operator)."""

from __future__ import annotations

from bpfglobals.k8s.aggregate import aggregate
from bpfglobals.k8s.node_objects import NodeObject, node_object
from bpfglobals.k8s.nodes import node_facts
from bpfglobals.k8s.rollout import NodeState, plan_rollout
from bpfglobals.node.per_node import NodeFacts


def test_only_the_node_whose_own_hash_changed_is_updated() -> None:
    states = {n: NodeState(n, f"h-{n}", f"h-{n}", "Ready") for n in ("a", "b", "c")}
    want = {"a": "h-a", "b": "h-b2", "c": "h-c"}  # b was relabelled
    plan = plan_rollout(want, ["a", "b", "c"], states, 1)
    assert (plan.create, plan.update, plan.delete) == ((), ("b",), ())


def test_max_unavailable_counts_per_node_hashes() -> None:
    states = {
        "a": NodeState("a", "new-a", "old-a", "Ready"),  # in flight: asked, not yet running
        "b": NodeState("b", "old-b", "old-b", "Ready"),
    }
    assert plan_rollout({"a": "new-a", "b": "new-b"}, ["a", "b"], states, 1).update == ()
    states["a"] = NodeState("a", "new-a", "new-a", "Ready")
    assert plan_rollout({"a": "new-a", "b": "new-b"}, ["a", "b"], states, 1).update == ("b",)


def node(spec_hash: str, status_hash: str, phase: str) -> NodeObject:
    return node_object(
        {
            "metadata": {"name": f"obj-{spec_hash}"},
            "spec": {"configHash": spec_hash},
            "status": {"configHash": status_hash, "phase": phase},
        }
    )


def test_status_shows_each_nodes_values_and_an_unresolved_node_fails() -> None:
    st = aggregate(
        generation=2,
        desired="fleet",
        elf_sha="e" * 64,
        selected=["a", "b", "c"],
        nodes={"a": node("h-a", "h-a", "Ready"), "b": node("h-b", "h-b", "Ready")},
        previous={},
        invalid=None,
        now="t",
        per_node_values={"a": ("h-a", {"zone": "z1"}), "b": ("h-b", {"zone": "z2"})},
        unresolved={"c": "variable 'zone': node c has no label 'zone' and no default"},
    )
    by_node = {n["nodeName"]: n for n in st["nodes"]}
    assert by_node["a"]["globals"] == {"zone": "z1"} and by_node["b"]["globals"] == {"zone": "z2"}
    assert by_node["c"]["phase"] == "Failed" and "no label 'zone'" in by_node["c"]["message"]
    assert st["phase"] == "Degraded" and st["readyNodes"] == "2/3"
    assert "c: variable 'zone'" in st["message"]


def test_node_facts_from_a_node_body() -> None:
    body = {
        "metadata": {"name": "n1", "labels": {"z": "1"}, "annotations": {"a": "x"}},
        "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]},
    }
    assert node_facts(body) == NodeFacts(
        "n1", {"z": "1"}, {"a": "x"}, (("InternalIP", "10.0.0.1"),)
    )
    assert node_facts({"metadata": {"name": "n2"}}) == NodeFacts("n2")
