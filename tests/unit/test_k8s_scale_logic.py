"""Issue 12's pure decisions: bounded status, node reachability, the operator's view of its
own writes (expectations), and who may take the leader Lease."""

from __future__ import annotations

import json

import pytest

from bpfglobals.errors import BpfGlobalsError
from bpfglobals.k8s.aggregate import FULL_STATUS_NODES, LISTED_NODES, MESSAGE_CHARS, aggregate
from bpfglobals.k8s.leader import Holder, LeaseConfig, Observer
from bpfglobals.k8s.node_objects import (
    Expectations,
    NodeObject,
    by_node,
    entries,
    join,
    node_object,
)
from bpfglobals.k8s.nodes import NodeInfo, node_info, unreachable

NOW = 1_800_000_000.0


def obj(node: str, spec: str | None, status: str | None = None, phase: str | None = None, **kw):
    return NodeObject(f"p.{node}", node, "p", spec, status, phase, **kw)


def status_for(nodes: dict[str, NodeObject], selected: list[str]) -> dict:
    return aggregate(
        generation=2,
        desired="new",
        elf_sha="e" * 64,
        selected=selected,
        nodes=nodes,
        previous={},
        invalid=None,
        now="t",
    )


def big_node(name: str, spec: str, status: str, phase: str, message: str = "") -> NodeObject:
    """A node object as large as a real one: four programs with links, eight maps."""
    programs = tuple(
        {"name": f"prog_{i}", "id": 1000 + i, "tag": "ab" * 8, "links": [{"id": 9, "type": "xdp"}]}
        for i in range(4)
    )
    maps = {f"map_{i}": 2000 + i for i in range(8)}
    return obj(name, spec, status, phase, message=message, programs=programs, maps=maps)


def test_status_stays_small_at_5000_nodes_and_names_failed_and_lagging_nodes_capped() -> None:
    names = [f"node-{i:05d}" for i in range(5000)]
    nodes = {}
    for i, n in enumerate(names):
        if i < 30:
            nodes[n] = big_node(n, "new", "old", "Failed", message="verifier: " + "x" * 5000)
        elif i < 1000:
            nodes[n] = big_node(n, "old", "old", "Ready")
        else:
            nodes[n] = big_node(n, "new", "new", "Ready")
    st = status_for(nodes, names)
    assert len(json.dumps(st)) < 16 * 1024
    assert "nodes" not in st  # per-node facts live on the BpfProgramNodes
    assert st["nodeCounts"] == {
        "selected": 5000,
        "updated": 4030,
        "ready": 4000,
        "failed": 30,
        "lagging": 970,
    }
    assert st["readyNodes"] == "4000/5000" and st["rollout"] == "Failed"
    assert len(st["failedNodes"]) == LISTED_NODES and st["failedNodesNotListed"] == 20
    assert st["failedNodes"][0]["nodeName"] == "node-00000"
    assert len(st["failedNodes"][0]["message"]) == MESSAGE_CHARS
    assert len(st["laggingNodes"]) == LISTED_NODES and st["laggingNodesNotListed"] == 960


def test_small_clusters_keep_every_nodes_facts_in_status() -> None:
    names = [f"n{i}" for i in range(FULL_STATUS_NODES)]
    st = status_for({n: big_node(n, "new", "new", "Ready") for n in names}, names)
    assert [x["nodeName"] for x in st["nodes"]] == sorted(names)
    assert st["nodes"][0]["maps"]["map_0"] == 2000
    assert st["rollout"] == "Complete" and st["laggingNodes"] == []
    more = [*names, "zz"]
    st = status_for({n: big_node(n, "new", "new", "Ready") for n in more}, more)
    assert "nodes" not in st and st["nodeCounts"]["ready"] == FULL_STATUS_NODES + 1


def test_a_selected_node_without_an_object_lags_as_pending() -> None:
    st = status_for({}, ["a"])
    assert st["laggingNodes"] == [{"nodeName": "a", "message": "Pending"}]
    assert st["rollout"] == "InProgress" and st["nodes"][0]["phase"] == "Pending"


def ready(status: str, since: str) -> dict:
    return {"conditions": [{"type": "Ready", "status": status, "lastTransitionTime": since}]}


def test_only_gone_or_long_not_ready_nodes_are_unreachable() -> None:
    grace = 300.0
    assert unreachable(None, NOW, grace)  # no Node object
    assert not unreachable(NodeInfo({}), NOW, grace)  # never reported: wait
    old = "2027-01-15T08:00:00Z"  # NOW - 3,600 s or so
    t_old = node_info({}, ready("Unknown", old)).ready_since
    assert t_old is not None
    now = t_old + 3600
    assert unreachable(node_info({}, ready("Unknown", old)), now, grace)
    assert unreachable(node_info({}, ready("False", old)), now, grace)
    assert not unreachable(node_info({}, ready("True", old)), now, grace)
    assert not unreachable(node_info({}, ready("Unknown", old)), t_old + 10, grace)  # in grace
    assert not unreachable(node_info({}, ready("Unknown", "not a time")), now, grace)


def test_expectations_overlay_writes_until_the_watch_shows_them() -> None:
    e = Expectations(ttl=30)
    seen = {"a": obj("a", "old", "old", "Ready"), "b": obj("b", "old", "old", "Ready")}
    e.expect("p", "a", "new")  # an update
    e.expect("p", "c", "new")  # a create
    e.expect("p", "b", None)  # a delete
    view = e.overlay("p", seen)
    assert view["a"].spec_hash == "new" and view["a"].status_hash == "old"
    assert view["c"].spec_hash == "new" and view["c"].phase is None
    assert "b" not in view
    assert e.overlay("other", seen) == seen  # per program
    # the watch caught up: the beliefs are dropped, the watch is the truth again
    caught = {"a": obj("a", "new", "new", "Ready"), "c": obj("c", "new")}
    assert e.overlay("p", caught) == caught
    assert e.overlay("p", seen) == seen


def test_expectations_expire_so_a_lost_event_cannot_pin_a_belief() -> None:
    e = Expectations(ttl=0)
    e.expect("p", "a", "new")
    seen = {"a": obj("a", "old")}
    assert e.overlay("p", seen) == seen


def test_node_object_joins_the_bpfnode_entry_and_the_agents_report() -> None:
    report = {
        "metadata": {"name": "p.n1", "resourceVersion": "42"},
        "spec": {"bpfProgram": "p", "nodeName": "n1", "configHash": "h"},
        "status": {"configHash": "h", "phase": "Ready", "maps": {"m": 3}},
    }
    o = node_object(report)
    assert (o.name, o.node, o.program, o.spec_hash, o.status_hash, o.phase) == (
        "p.n1",
        "n1",
        "p",
        "h",
        "h",
        "Ready",
    )
    assert o.waits_for_agent and not o.deleting and o.resource_version == "42"
    # the BpfNode asks for a newer configuration: the entry's hash, the report's status
    asked = join("p", "n1", "h2", o)
    assert (asked.spec_hash, asked.status_hash, asked.deleting) == ("h2", "h", False)
    # the BpfNode dropped the program, the agent has not reported it gone yet
    dropped = join("p", "n1", None, o)
    assert dropped.deleting and dropped.waits_for_agent
    assert by_node([dropped]) == {}  # being removed: not a live object of its node
    # asked, no report yet: pending, nothing to wait for
    pending = join("p", "n2", "h", None)
    assert pending.spec_hash == "h" and pending.phase is None and not pending.waits_for_agent
    assert entries(
        {"spec": {"programs": {"p": {"configHash": "h"}, "q": {"configHash": "g"}}}}
    ) == {
        "p": "h",
        "q": "g",
    }


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_lease_held_by_a_dead_holder_is_taken_after_its_duration() -> None:
    clock = Clock()
    me = Observer("b", clock)
    dead = Holder("a", "2026-11-28T10:00:00.000000Z", 15, 3)
    assert not me.may_take(dead)  # first sight: its lease runs from now, on my clock
    clock.t = 14.9
    assert not me.may_take(dead)
    clock.t = 15.0
    assert me.may_take(dead)


def test_a_renewing_holder_keeps_the_lease() -> None:
    clock = Clock()
    me = Observer("b", clock)
    for i in range(10):
        clock.t = i * 10.0
        assert not me.may_take(Holder("a", f"renewed-{i}", 15, 0))


def test_a_free_or_own_lease_is_taken_at_once() -> None:
    me = Observer("b", Clock())
    assert me.may_take(Holder("", "x", 1, 4))  # released by a clean stop
    assert me.may_take(Holder("b", "x", 15, 4))  # ours: renew


@pytest.mark.parametrize(("d", "r", "p"), [(10, 10, 2), (15, 10, 10), (15, 10, 0)])
def test_lease_timings_must_nest(d, r, p) -> None:
    with pytest.raises(BpfGlobalsError, match="lease duration > renew deadline > retry period"):
        LeaseConfig(lease_duration=d, renew_deadline=r, retry_period=p)
    assert LeaseConfig().lease_duration == 15 and LeaseConfig().renew_deadline == 10


def bpfnode(node: str, **programs: str) -> dict:
    return {
        "metadata": {"name": node},
        "spec": {"nodeName": node, "programs": {p: {"configHash": h} for p, h in programs.items()}},
    }


def test_the_node_view_marks_only_the_programs_an_event_changed() -> None:
    from bpfglobals.k8s.client import Api
    from bpfglobals.k8s.node_objects import NodeObjectCache

    marked: list[str] = []
    cache = NodeObjectCache(Api(core=None, custom=None), marked.append)
    cache._nodes_listed([bpfnode("n1", p="h1", q="g1"), bpfnode("n2", p="h1")])
    assert sorted(marked) == ["p", "q"]
    marked.clear()
    cache._node_event("MODIFIED", bpfnode("n1", p="h2", q="g1"))  # one wave of p on n1
    assert marked == ["p"]
    assert {o.node: o.spec_hash for o in cache.objects("p")} == {"n1": "h2", "n2": "h1"}
    assert cache.asked("n1") == {"p": "h2", "q": "g1"} and cache.asked("n3") is None
    marked.clear()
    report = {
        "metadata": {"name": "q.n1", "resourceVersion": "7"},
        "spec": {"bpfProgram": "q", "nodeName": "n1", "configHash": "g1"},
        "status": {"configHash": "g1", "phase": "Ready"},
    }
    cache._report_event("ADDED", report)
    assert marked == ["q"]
    (q,) = cache.objects("q")
    assert (q.spec_hash, q.status_hash, q.phase, q.deleting) == ("g1", "g1", "Ready", False)
    marked.clear()
    cache._node_event("DELETED", bpfnode("n1", p="h2", q="g1"))  # the node went
    assert sorted(marked) == ["p", "q"]
    (q,) = cache.objects("q")  # the report outlives the BpfNode until someone deletes it
    assert q.deleting and q.waits_for_agent
    assert [r.name for r in cache.reports_of("n1")] == ["q.n1"]
    cache._report_event("DELETED", report)
    assert cache.objects("q") == [] and cache.reports_of("n1") == []
