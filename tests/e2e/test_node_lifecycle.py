"""End to end, issue 12: node churn and operator leader election on the real apiserver, with
real agents (separate processes, each a simulated node) and two operator processes.

Nodes without an agent are plain Node objects ("ghosts"): they stand for nodes that left, or
whose agent never ran. A node is marked NotReady the way the node lifecycle controller does
it: its Ready condition Unknown, with a lastTransitionTime in the past.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import threading
import time
from typing import Any

import pytest
from kubernetes import client, config, watch

from bpfglobals.k8s.resources import (
    GROUP,
    LABEL_NODE,
    LABEL_PROGRAM,
    PROGRAM_NODES,
    VERSION,
    node_object_name,
)
from bpfglobals.k8s.resources import (
    NODES as BPF_NODES,
)
from tests.e2e.test_operator import xdp_drop, xdp_ids
from tests.support.node_view import asked
from tests.support.stack import Stack, running_stack, wait_for

NODES = 3


@pytest.fixture(scope="module")
def stack(control_plane, kubectl, tmp_path_factory, bpf_object):
    tmp = tmp_path_factory.mktemp("lifecycle")
    # two operators: only the Lease holder reconciles, the other stands by
    with running_stack(control_plane, kubectl, tmp, NODES, ("operator", "operator-2")) as s:
        s.elf_sha = s.publish_elf("xdp-drop", bpf_object("examples/xdp_drop.bpf.c"))
        s.ghosts = []
        s.on_close(lambda: s.ghosts and kubectl("delete", "node", *s.ghosts, check=False))
        yield s


def ghost(stack: Stack, suffix: str) -> str:
    """A Node selected by this stack's programs whose agent never runs."""
    name = f"ghost-{stack.tag}-{suffix}"
    stack.ghosts.append(name)
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"bpfglobals.io/e2e": stack.tag}},
    }
    stack.kubectl("apply", "-f", "-", input=json.dumps(node))
    return name


def mark_not_ready(stack: Stack, node: str, ago: float = 60) -> None:
    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=ago)
    stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    cond = {
        "type": "Ready",
        "status": "Unknown",
        "reason": "NodeStatusUnknown",
        "message": "Kubelet stopped posting node status.",
        "lastTransitionTime": stamp,
        "lastHeartbeatTime": stamp,
    }
    stack.kubectl(
        "patch",
        "node",
        node,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"conditions": [cond]}}),
    )


def objects(stack: Stack, label: str) -> list[dict]:
    out = stack.kubectl("get", "bpfprogramnodes", "-l", label, "-o", "json").stdout
    return json.loads(out)["items"]


def report(stack: Stack, program: str, node: str) -> dict:
    """A report as an agent that then vanished would have left it."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BpfProgramNode",
        "metadata": {
            "name": node_object_name(program, node),
            "labels": {LABEL_PROGRAM: program, LABEL_NODE: node},
        },
        "spec": {"bpfProgram": program, "nodeName": node, "configHash": "x"},
        "status": {"phase": "Ready", "configHash": "x"},
    }


def operators_alive(stack: Stack) -> None:
    for name in ("operator", "operator-2"):
        if name in stack.procs:
            assert stack.procs[name].poll() is None, stack.logs()


def test_node_objects_carry_ids_in_printer_columns_and_the_program_label(stack) -> None:
    stack.apply(xdp_drop(stack, "cols", {"drop_port": 7101}))
    stack.wait_ready("cols")
    table = stack.kubectl("get", "bpfprogramnodes", "-l", f"{LABEL_PROGRAM}=cols").stdout
    header, *rows = table.splitlines()
    assert header.split()[:8] == [
        "NAME",
        "NODE",
        "PROGRAM",
        "PHASE",
        "CONFIG",
        "PROGRAMS",
        "LINKS",
        "MAPS",
    ]
    assert len(rows) == NODES
    for obj in objects(stack, f"{LABEL_PROGRAM}=cols"):
        st = obj["status"]
        row = next(r for r in rows if r.startswith(obj["metadata"]["name"] + " "))
        prog_id = st["programs"][0]["id"]
        assert str(prog_id) in row.split() and st["programIds"] == str(prog_id)
        assert st["linkIds"] == str(st["programs"][0]["links"][0]["id"])
        assert f'"stats":{st["maps"]["stats"]}' in row  # the map IDs
        assert xdp_ids(stack.nodes[obj["spec"]["nodeName"]]["net"]) == [prog_id]
    stack.kubectl("delete", "bpfprogram", "cols", "--timeout=60s")


def test_deleted_node_loses_its_objects_and_a_blocked_rollout_completes(stack) -> None:
    """A node whose agent never ran holds the only rollout slot; deleting its Node deletes
    its BpfNode and the rollout goes on."""
    gone = ghost(stack, "a")
    stack.apply(xdp_drop(stack, "churn", {"drop_port": 7201}))
    wait_for("the ghost asked too", lambda: "churn" in asked(stack.kubectl, gone))
    wait_for(
        "the agents' nodes Ready",
        lambda: (stack.program("churn").get("status") or {}).get("readyNodes") == "3/4",
    )
    stack.apply(xdp_drop(stack, "churn", {"drop_port": 7202}))
    generation = stack.program("churn")["metadata"]["generation"]
    time.sleep(3)
    st = stack.program("churn")["status"]
    assert st["phase"] == "Progressing" and st["nodeCounts"]["updated"] == 1, st  # blocked
    assert {n["nodeName"] for n in st["laggingNodes"]} == {gone, *stack.nodes}
    stack.kubectl("delete", "node", gone)
    wait_for("its BpfNode gone", lambda: asked(stack.kubectl, gone) == {}, timeout=20)
    st = stack.wait_ready("churn", generation, timeout=60)
    assert st["readyNodes"] == f"{NODES}/{NODES}" and st["nodeCounts"]["selected"] == NODES
    operators_alive(stack)


def test_program_delete_does_not_wait_for_a_vanished_node(stack) -> None:
    """The issue's hang: a delete waits on a node that reported the program and then vanished
    (its Node still Ready as far as anyone knows); once its Node is deleted the BpfProgram is
    gone within seconds."""
    gone = ghost(stack, "b")
    wait_for("the ghost asked too", lambda: "churn" in asked(stack.kubectl, gone), timeout=30)
    stack.apply(report(stack, "churn", gone))
    stack.kubectl("delete", "bpfprogram", "churn", "--wait=false")
    time.sleep(3)
    assert stack.kubectl("get", "bpfprogram", "churn", check=False).returncode == 0  # waits
    assert [o["spec"]["nodeName"] for o in objects(stack, f"{LABEL_PROGRAM}=churn")] == [gone]
    stack.kubectl("delete", "node", gone)
    start = time.monotonic()
    wait_for(
        "the program gone",
        lambda: stack.kubectl("get", "bpfprogram", "churn", check=False).returncode != 0,
        timeout=15,
    )
    assert time.monotonic() - start < 15
    assert objects(stack, f"{LABEL_PROGRAM}=churn") == []
    for n in stack.nodes.values():
        assert xdp_ids(n["net"]) == []  # the live nodes' agents detached


def test_delete_skips_a_not_ready_node_and_its_agent_cleans_up_on_return(stack) -> None:
    node = sorted(stack.nodes)[1]
    n = stack.nodes[node]
    stack.apply(xdp_drop(stack, "stale", {"drop_port": 7301}))
    st = stack.wait_ready("stale")
    prog_id = next(x for x in st["nodes"] if x["nodeName"] == node)["programs"][0]["id"]
    stack.stop(node, sig=9)  # the agent dies; its programs stay attached
    mark_not_ready(stack, node, ago=60)  # past the operator's grace (Stack.NODE_GRACE)
    try:
        start = time.monotonic()
        stack.kubectl("delete", "bpfprogram", "stale", "--timeout=30s")
        assert time.monotonic() - start < 15
        assert objects(stack, f"{LABEL_PROGRAM}=stale") == []
        # nobody detached it on that node: it still runs there
        assert xdp_ids(n["net"]) == [prog_id]
        assert os.path.exists(f"{n['root']}/stale")
        stack.start_agent(node)  # the node comes back: its agent removes the stale program
        wait_for("the stale program removed", lambda: not os.path.exists(f"{n['root']}/stale"))
        assert xdp_ids(n["net"]) == []
        shown = subprocess.run(
            ["bpftool", "prog", "show", "id", str(prog_id)], capture_output=True, text=True
        )
        assert shown.returncode != 0  # no program left in the kernel
    finally:
        if node not in stack.procs:
            stack.start_agent(node)
        stack.kubectl(
            "patch",
            "node",
            node,
            "--subresource=status",
            "--type=json",
            "-p",
            '[{"op": "remove", "path": "/status/conditions"}]',
            check=False,
        )


def test_delete_waits_for_a_ready_node(stack) -> None:
    """The grace period is not a shortcut for reachable nodes: delete waits for their agent."""
    node = sorted(stack.nodes)[2]
    stack.apply(xdp_drop(stack, "wait", {"drop_port": 7401}))
    stack.wait_ready("wait")
    stack.stop(node, sig=9)
    try:
        stack.kubectl("delete", "bpfprogram", "wait", "--wait=false")
        time.sleep(4)
        left = objects(stack, f"{LABEL_PROGRAM}=wait")
        assert [o["spec"]["nodeName"] for o in left] == [node]  # its report stays
        assert "wait" not in asked(stack.kubectl, node)  # though it is no longer asked for
    finally:
        stack.start_agent(node)
    wait_for(
        "the program gone",
        lambda: stack.kubectl("get", "bpfprogram", "wait", check=False).returncode != 0,
    )
    assert not os.path.exists(f"{stack.nodes[node]['root']}/wait")


def test_bad_node_objects_are_handled(stack) -> None:
    """A report or a BpfNode for a node that does not exist is removed; a Node deleted and
    re-created under the same name gets its program again; the operators live on."""
    stack.apply(xdp_drop(stack, "bad", {"drop_port": 7501}))
    stack.wait_ready("bad")
    stack.apply(report(stack, "bad", "no-such-node"))
    made_up = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BpfNode",
        "metadata": {"name": "no-such-node"},
        "spec": {
            "nodeName": "no-such-node",
            "programs": {"bad": {"uid": "u", "configHash": "x", "program": {}}},
        },
    }
    stack.apply(made_up)
    wait_for(
        "the made-up report and BpfNode removed",
        lambda: (
            objects(stack, f"{LABEL_NODE}=no-such-node") == []
            and asked(stack.kubectl, "no-such-node") == {}
        ),
        timeout=30,
    )
    node = sorted(stack.nodes)[0]
    n = stack.nodes[node]
    node_doc = json.loads(stack.kubectl("get", "node", node, "-o", "json").stdout)
    stack.kubectl("delete", "node", node)
    # the Node went: its object is removed, and its (still running) agent detaches
    wait_for("detached", lambda: not os.path.exists(f"{n['root']}/bad"), timeout=30)
    recreated = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node, "labels": node_doc["metadata"]["labels"]},
    }
    stack.kubectl("apply", "-f", "-", input=json.dumps(recreated))
    st = wait_for(
        "the program back on the re-created node",
        lambda: (lambda s: s if s.get("readyNodes") == f"{NODES}/{NODES}" else None)(
            stack.program("bad").get("status") or {}
        ),
        timeout=60,
    )
    prog_id = next(x for x in st["nodes"] if x["nodeName"] == node)["programs"][0]["id"]
    assert xdp_ids(n["net"]) == [prog_id]
    operators_alive(stack)
    stack.kubectl("delete", "bpfprogram", "bad", "--timeout=60s")


class SpecRecorder:
    """Every change of what the nodes are asked to run of one program (their BpfNodes) and of
    what they report running (its BpfProgramNodes), as two watches deliver them, merged in
    the order the apiserver made them (resourceVersions are etcd revisions, one sequence for
    both resources): the sequence the test checks."""

    def __init__(self, kubeconfig: str, program: str) -> None:
        self.api = client.CustomObjectsApi(config.new_client_from_config(kubeconfig))
        self.program = program
        self.raw: list[tuple[int, str, str, Any]] = []
        self.watches: list[watch.Watch] = []
        self.stopped = False
        self.error: Exception | None = None

    def start(self, version: str) -> SpecRecorder:
        self.version = version
        self.threads = [
            threading.Thread(target=self._run, args=(plural,), daemon=True)
            for plural in (BPF_NODES, PROGRAM_NODES)
        ]
        for t in self.threads:
            t.start()
        return self

    def _run(self, plural: str) -> None:
        try:
            self._record(plural)
        except Exception as e:  # the stream closed by stop() ends here; anything else counts
            if not self.stopped:
                self.error = e

    def _record(self, plural: str) -> None:
        w = watch.Watch()
        self.watches.append(w)
        for ev in w.stream(
            self.api.list_cluster_custom_object,
            GROUP,
            VERSION,
            plural,
            label_selector="" if plural == BPF_NODES else f"{LABEL_PROGRAM}={self.program}",
            resource_version=self.version,
        ):
            o = ev["object"]
            rv = int(o["metadata"]["resourceVersion"])
            node = o["spec"]["nodeName"]
            if plural == BPF_NODES:
                entry = (o["spec"].get("programs") or {}).get(self.program)
                gone = ev["type"] == "DELETED" or entry is None
                self.raw.append((rv, node, "asked", None if gone else entry["configHash"]))
            else:
                st = o.get("status") or {}
                self.raw.append((rv, node, "runs", (st.get("configHash"), st.get("phase"))))

    @property
    def events(self) -> list[tuple[int, str, str | None, str | None, str | None]]:
        """(revision, node, asked hash, running hash, phase) after each change, in order."""
        state: dict[str, list] = {}
        out = []
        for rv, node, what, value in sorted(self.raw):
            s = state.setdefault(node, [None, None, None])
            if what == "asked":
                s[0] = value
            else:
                s[1], s[2] = value
            out.append((rv, node, *s))
        return out

    def stop(self) -> None:
        self.stopped = True
        for w in self.watches:
            w.stop()
        assert self.error is None, self.error  # the recording is complete


def half_applied_at_each_step(events, initial: dict, desired: str) -> list[int]:
    """After each recorded event: how many nodes were asked for `desired` but did not run it
    yet (a half-applied change)."""
    state = dict(initial)
    counts = []
    for _, node, spec, status, phase in events:
        state[node] = (spec, status, phase)
        counts.append(
            sum(
                1
                for s, h, p in state.values()
                if s == desired and not (h == desired and p == "Ready")
            )
        )
    return counts


def test_standby_finishes_a_rollout_when_the_leader_is_killed(stack) -> None:
    stack.apply(xdp_drop(stack, "lead", {"drop_port": 7601}, max_unavailable=1))
    stack.wait_ready("lead")
    listing = stack.kubectl(
        "get", "bpfprogramnodes", "-l", f"{LABEL_PROGRAM}=lead", "-o", "json"
    ).stdout
    items = json.loads(listing)
    initial = {
        o["spec"]["nodeName"]: (
            o["spec"]["configHash"],
            o["status"]["configHash"],
            o["status"]["phase"],
        )
        for o in items["items"]
    }
    recorder = SpecRecorder(stack.cp.kubeconfig, "lead").start(items["metadata"]["resourceVersion"])
    leader = next(
        name
        for name in ("operator", "operator-2")
        if "became leader" in (stack.tmp / f"{name}.log").read_text()
    )
    stack.apply(xdp_drop(stack, "lead", {"drop_port": 7602}, max_unavailable=1))
    generation = stack.program("lead")["metadata"]["generation"]
    old = next(iter(initial.values()))[0]
    wait_for(
        "the first node handed the change",
        lambda: any(spec not in (old, None) for _, _, spec, _, _ in recorder.events),
        timeout=30,
    )
    stack.procs[leader].kill()  # SIGKILL: no lease release, the standby must wait it out
    stack.procs.pop(leader).wait()
    # a quorum read: every write the killed leader made has a lower revision
    listed = stack.kubectl("get", "--raw", f"/apis/{GROUP}/{VERSION}/bpfnodes?limit=1").stdout
    killed_at = int(json.loads(listed)["metadata"]["resourceVersion"])
    standby = "operator-2" if leader == "operator" else "operator"
    st = stack.wait_ready("lead", generation, timeout=90)
    recorder.stop()
    desired = st["configHash"]
    assert "became leader" in (stack.tmp / f"{standby}.log").read_text()
    counts = half_applied_at_each_step(recorder.events, initial, desired)
    assert max(counts) <= 1, (recorder.events, counts)
    handed = [(rv, node) for rv, node, what, h in recorder.raw if what == "asked" and h == desired]
    assert len({node for _, node in handed}) == NODES
    assert any(rv > killed_at for rv, _ in handed)  # the standby did part of the rollout
    stack.start_operator("--no-webhook", name=leader)  # two operators again; this one standby
    stack.kubectl("delete", "bpfprogram", "lead", "--timeout=60s")
