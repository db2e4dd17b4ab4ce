"""The agent on a real apiserver (issue 12): it watches its own BpfNode by name, LISTs once,
then resumes each watch from the last resourceVersion it saw (bookmarks keep it current), and
lists again only when the apiserver answers 410 Gone. It reports each program in its own
BpfProgramNode, written only when the report changed and deleted once the program is gone.
The agent is the real `NodeAgent`; only its kernel work is the simulator's (`SimulatedNode`),
so these run without bpf(2)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from bpfglobals.k8s import informer
from bpfglobals.k8s.agent import NodeAgent
from bpfglobals.k8s.client import is_not_found
from bpfglobals.k8s.resources import (
    API_VERSION,
    LABEL_NODE,
    LABEL_PROGRAM,
    NODES,
    PROGRAM_NODES,
    node_object_name,
)
from bpfglobals.k8s.simulator import SimulatedNode, shared_api
from tests.support.stack import wait_for


@pytest.fixture
def api(control_plane):
    return shared_api(control_plane.kubeconfig, 8)


def entry(value: int, uid: str = "uid-1") -> dict:
    spec = {
        "elf": {"path": "/opt/x.bpf.o", "sha256": "ab" * 32},
        "programs": [{"name": "f", "attach": {"tracing": {}}}],
        "globals": {"v": value},
    }
    return {"uid": uid, "configHash": f"h{value}", "program": spec}


def bpfnode(node: str, **programs: dict) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": "BpfNode",
        "metadata": {"name": node, "labels": {LABEL_NODE: node}},
        "spec": {"nodeName": node, "programs": programs},
    }


def run_agent(api, node: str, version: str | None = None) -> NodeAgent:
    a = NodeAgent(api, node, SimulatedNode())  # type: ignore[arg-type]
    a.version = version
    threading.Thread(target=a.run, daemon=True).start()
    return a


def report(api, program: str, node: str) -> dict | None:
    try:
        return api.get(PROGRAM_NODES, node_object_name(program, node))
    except Exception as e:
        if is_not_found(e):
            return None
        raise


def ready(api, program: str, node: str) -> dict | None:
    r = report(api, program, node)
    st = (r or {}).get("status") or {}
    return st if st.get("phase") == "Ready" else None


def cleanup(api, node: str, *programs: str) -> None:
    for plural, name in [
        (NODES, node),
        *((PROGRAM_NODES, node_object_name(p, node)) for p in programs),
    ]:
        try:
            api.delete(plural, name)
        except Exception as e:
            if not is_not_found(e):
                raise


def test_watches_resume_from_their_version_without_listing(api, monkeypatch) -> None:
    monkeypatch.setattr(informer, "WATCH_SECONDS", (1, 2))  # many watch requests
    node = f"watch-{uuid.uuid4().hex[:6]}"
    api.create_obj(NODES, bpfnode(node, resume=entry(1)))
    a = NodeAgent(api, node, SimulatedNode(), watch_seconds=(1, 2))  # type: ignore[arg-type]
    threading.Thread(target=a.run, daemon=True).start()
    try:
        first = wait_for("applied", lambda: ready(api, "resume", node))
        time.sleep(7)  # several watch requests end and resume
        api.patch(NODES, node, [{"op": "add", "path": "/spec/programs/resume", "value": entry(2)}])
        second = wait_for(
            "the change applied",
            lambda: (lambda s: s if s and s["configHash"] != first["configHash"] else None)(
                ready(api, "resume", node)
            ),
        )
        assert second["programs"][0]["id"] != first["programs"][0]["id"]  # a new variant
        assert report(api, "resume", node)["spec"]["configHash"] == "h2"  # the ask it answers
        api.delete(NODES, node)
        wait_for("collected", lambda: a.node.names() == [] and not report(api, "resume", node))
        # the one LIST of its BpfNode and the one of its reports at start; every later watch
        # resumed
        assert a.lists == 2
    finally:
        a.close()
        cleanup(api, node, "resume")


def test_a_gone_resource_version_is_the_one_reason_to_relist(api) -> None:
    node = f"watch-{uuid.uuid4().hex[:6]}"
    api.create_obj(NODES, bpfnode(node, gone=entry(1)))
    a = run_agent(api, node, version="1")  # long compacted away: the apiserver says 410
    try:
        wait_for("applied after relisting", lambda: ready(api, "gone", node))
        assert a.lists == 2  # its BpfNode (after the 410) and its reports
        assert a.version not in (None, "1")
    finally:
        a.close()
        cleanup(api, node, "gone")


def test_each_program_has_its_own_report_written_only_when_it_changed(api) -> None:
    node = f"watch-{uuid.uuid4().hex[:6]}"
    bad = entry(3)
    bad["program"] = {**bad["program"], "programs": "not a list"}
    api.create_obj(NODES, bpfnode(node, a=entry(1, "uid-a"), b=entry(1, "uid-b"), bad=bad))
    agent = run_agent(api, node)
    try:
        wait_for("both reported", lambda: ready(api, "a", node) and ready(api, "b", node))
        failed = wait_for("the bad one reported", lambda: report(api, "bad", node))
        # one program failing stops neither the others nor its own report
        assert failed["status"]["phase"] == "Failed", failed
        assert "programs" in failed["status"]["message"], failed
        ra, rb = report(api, "a", node), report(api, "b", node)
        assert ra["metadata"]["labels"] == {LABEL_PROGRAM: "a", LABEL_NODE: node}
        assert (ra["spec"]["bpfProgram"], ra["spec"]["nodeName"]) == ("a", node)
        assert ra["status"]["programIds"] == str(ra["status"]["programs"][0]["id"])

        # b changes, a does not: a's report is not written again
        api.patch(
            NODES, node, [{"op": "add", "path": "/spec/programs/b", "value": entry(2, "uid-b")}]
        )
        wait_for(
            "b changed",
            lambda: (ready(api, "b", node) or {}).get("configHash") != rb["status"]["configHash"],
        )
        # a is dropped: detached, then its report deleted; b's report is untouched
        rb = report(api, "b", node)
        api.patch(NODES, node, [{"op": "remove", "path": "/spec/programs/a"}])
        wait_for("a's report gone", lambda: report(api, "a", node) is None)
        assert "a" not in agent.node.names()
        assert (
            report(api, "b", node)["metadata"]["resourceVersion"]
            == rb["metadata"]["resourceVersion"]
        )
        assert report(api, "a", node) is None and ra["metadata"]["resourceVersion"]
    finally:
        agent.close()
        cleanup(api, node, "a", "b", "bad")


def test_a_stale_report_is_deleted_when_the_agent_starts(api) -> None:
    """A report of a program the node no longer runs (left by an agent that died before it
    could delete it) would hold up a delete of that program: the agent deletes it."""
    node = f"watch-{uuid.uuid4().hex[:6]}"
    api.create_obj(NODES, bpfnode(node, keep=entry(1)))
    stale = {
        "apiVersion": API_VERSION,
        "kind": "BpfProgramNode",
        "metadata": {
            "name": node_object_name("old", node),
            "labels": {LABEL_PROGRAM: "old", LABEL_NODE: node},
        },
        "spec": {"bpfProgram": "old", "nodeName": node, "configHash": "x"},
        "status": {"phase": "Ready", "configHash": "x"},
    }
    api.create_obj(PROGRAM_NODES, stale)
    agent = run_agent(api, node)
    try:
        wait_for("the kept one reported", lambda: ready(api, "keep", node))
        wait_for("the stale report gone", lambda: report(api, "old", node) is None)
    finally:
        agent.close()
        cleanup(api, node, "keep", "old")


def test_a_report_deleted_by_hand_comes_back_when_the_agent_restarts(api) -> None:
    """The README's limit: the agent does not watch its reports, so one deleted by hand stays
    gone while nothing changes, and is written again by the next agent start."""
    node = f"watch-{uuid.uuid4().hex[:6]}"
    api.create_obj(NODES, bpfnode(node, kept=entry(1)))
    agent = run_agent(api, node)
    try:
        first = wait_for("reported", lambda: ready(api, "kept", node))
        api.delete(PROGRAM_NODES, node_object_name("kept", node))
        time.sleep(2)
        assert report(api, "kept", node) is None  # nothing changed: not rewritten
        agent.close()
        agent = run_agent(api, node)  # the restarted agent lists its reports: none for kept
        again = wait_for("reported again", lambda: ready(api, "kept", node))
        assert again["configHash"] == first["configHash"]
    finally:
        agent.close()
        cleanup(api, node, "kept")
