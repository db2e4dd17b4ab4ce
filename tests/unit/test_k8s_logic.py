"""The operator's pure decisions, without an apiserver: rollout pacing, status aggregation,
node selection, config hashing and object naming. (The e2e suite runs them for real.)"""

from __future__ import annotations

import pytest

from bpfglobals.k8s.aggregate import aggregate, same_status
from bpfglobals.k8s.controller import select_nodes
from bpfglobals.k8s.node_objects import NodeObject, node_object
from bpfglobals.k8s.resources import node_object_name
from bpfglobals.k8s.rollout import NodeState, max_unavailable, plan_rollout
from bpfglobals.node.manifest import config_hash, parse_spec

NODES = ["n1", "n2", "n3", "n4", "n5"]


@pytest.mark.parametrize(
    ("value", "total", "want"),
    [(None, 5, 1), (3, 5, 3), ("40%", 5, 2), ("10%", 5, 1), ("100%", 5, 5), ("0", 5, 1)],
)
def test_max_unavailable(value, total, want) -> None:
    assert max_unavailable(value, total) == want


def running(node: str, h: str, phase: str = "Ready") -> NodeState:
    return NodeState(node, h, h, phase)


def test_new_nodes_are_created_at_once_whatever_the_limit() -> None:
    plan = plan_rollout("new", NODES, {}, 1)
    assert plan.create == tuple(NODES) and plan.update == () and plan.delete == ()


def test_a_change_goes_to_max_unavailable_nodes_then_waits_for_them() -> None:
    states = {n: running(n, "old") for n in NODES}
    first = plan_rollout("new", NODES, states, 2)
    assert first.update == ("n1", "n2")
    # n1 applied it, n2 is still loading: one slot free
    states["n1"] = running("n1", "new")
    states["n2"] = NodeState("n2", "new", "old", "Ready")
    assert plan_rollout("new", NODES, states, 2).update == ("n3",)


def test_a_failed_node_holds_its_slot_so_a_bad_change_stops() -> None:
    states = {n: running(n, "old") for n in NODES}
    states["n1"] = NodeState("n1", "new", "old", "Failed")
    assert plan_rollout("new", NODES, states, 1).update == ()


def test_deselected_nodes_are_deleted() -> None:
    states = {n: running(n, "h") for n in NODES}
    plan = plan_rollout("h", NODES[:3], states, 1)
    assert plan.delete == ("n4", "n5") and plan.update == () and plan.create == ()


def node_obj(spec_hash: str, status_hash: str | None, phase: str | None, **extra) -> NodeObject:
    status = {"configHash": status_hash, "phase": phase, **extra} if phase else {}
    return node_object(
        {"metadata": {"name": "p.n"}, "spec": {"configHash": spec_hash}, "status": status}
    )


def agg(nodes: dict, invalid: str | None = None, previous: dict | None = None, now="t1") -> dict:
    return aggregate(
        generation=4,
        desired="h",
        elf_sha="e" * 64,
        selected=sorted(nodes) if nodes else [],
        nodes=nodes,
        previous=previous or {},
        invalid=invalid,
        now=now,
    )


def conditions(status: dict) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}


def test_all_nodes_ready() -> None:
    st = agg({"a": node_obj("h", "h", "Ready", maps={"m": 7}), "b": node_obj("h", "h", "Ready")})
    assert (st["phase"], st["readyNodes"]) == ("Ready", "2/2")
    assert conditions(st) == {
        "Ready": "True",
        "Progressing": "False",
        "Degraded": "False",
        "Reconciling": "False",
        "Stalled": "False",
    }
    assert all(c["observedGeneration"] == 4 for c in st["conditions"])
    assert st["nodes"][0]["maps"] == {"m": 7}


def test_a_node_on_the_old_config_is_progressing() -> None:
    st = agg({"a": node_obj("h", "h", "Ready"), "b": node_obj("h", "old", "Ready")})
    assert (st["phase"], st["readyNodes"]) == ("Progressing", "1/2")
    assert conditions(st)["Progressing"] == conditions(st)["Reconciling"] == "True"  # kstatus


def test_a_failed_node_degrades_with_its_message() -> None:
    st = agg({"a": node_obj("h", "old", "Failed", message="rejected by the verifier")})
    assert st["phase"] == "Degraded" and "a: rejected by the verifier" in st["message"]
    assert conditions(st) == {
        "Ready": "False",
        "Progressing": "False",
        "Degraded": "True",
        "Reconciling": "False",
        "Stalled": "True",
    }


def test_an_invalid_spec_wins_and_no_nodes_is_pending() -> None:
    st = agg({"a": node_obj("h", "h", "Ready")}, invalid="no global variable 'x'")
    assert st["phase"] == "Degraded" and st["conditions"][0]["reason"] == "InvalidSpec"
    assert agg({})["phase"] == "Pending"


def test_transition_times_move_only_on_transitions() -> None:
    ready = {"a": node_obj("h", "h", "Ready")}
    first = agg(ready, now="t1")
    again = agg(ready, previous=first, now="t2")
    assert same_status(first, again)
    assert {c["lastTransitionTime"] for c in again["conditions"]} == {"t1"}
    moved = agg({"a": node_obj("h", "old", "Ready")}, previous=first, now="t3")
    assert not same_status(first, moved)
    times = {c["type"]: c["lastTransitionTime"] for c in moved["conditions"]}
    assert times == {
        "Ready": "t3",
        "Progressing": "t3",
        "Degraded": "t1",
        "Reconciling": "t3",
        "Stalled": "t1",
    }


def test_select_nodes_matches_every_label() -> None:
    nodes = {
        "a": {"zone": "1", "role": "edge"},
        "b": {"zone": "1"},
        "c": {"zone": "2", "role": "edge"},
    }
    assert select_nodes({"role": "edge"}, nodes) == ["a", "c"]
    assert select_nodes({"role": "edge", "zone": "1"}, nodes) == ["a"]
    assert select_nodes({}, nodes) == ["a", "b", "c"]


def desired_hash(spec: dict) -> str:
    return config_hash(parse_spec("p", spec))


def test_the_config_hash_covers_what_runs_not_how_it_rolls_out() -> None:
    programs = [{"name": "f", "attach": {"tracing": {}}}]
    spec = {"elf": {"path": "/x.o", "sha256": "a" * 64}, "globals": {"p": 1}, "programs": programs}
    h = desired_hash(spec)
    assert desired_hash({**spec, "rollout": {"maxUnavailable": 3}, "nodeSelector": {}}) == h
    assert desired_hash({**spec, "globals": {"p": 2}}) != h
    assert desired_hash({**spec, "resetBss": True}) != h
    # the digest is what counts, not where the object is fetched from
    moved = {**spec, "elf": {"url": "https://example.org/x.o", "sha256": "a" * 64}}
    assert desired_hash(moved) == h
    assert desired_hash({**spec, "elf": {"path": "/x.o", "sha256": "b" * 64}}) != h


def test_node_object_names_fit_and_stay_distinct() -> None:
    assert node_object_name("web", "node-1") == "web.node-1"
    long_a, long_b = node_object_name("p" * 200, "n" * 100), node_object_name("p" * 200, "m" * 100)
    assert len(long_a) <= 253 and long_a != long_b
