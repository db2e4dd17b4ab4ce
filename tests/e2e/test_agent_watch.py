"""The agent's watch on a real apiserver (issue 12): it LISTs once, then resumes each watch
from the last resourceVersion it saw (bookmarks keep it current), and lists again only when
the apiserver answers 410 Gone. The agent is the real `NodeAgent`; only its kernel work is the
simulator's (`SimulatedNode`), so these run without bpf(2)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from bpfglobals.k8s import informer
from bpfglobals.k8s.agent import NodeAgent
from bpfglobals.k8s.resources import (
    API_VERSION,
    LABEL_NODE,
    LABEL_PROGRAM,
    PROGRAM_NODES,
    node_object_name,
)
from bpfglobals.k8s.simulator import SimulatedNode, shared_api
from tests.support.stack import wait_for


@pytest.fixture
def api(control_plane):
    return shared_api(control_plane.kubeconfig, 8)


def node_object(program: str, node: str, value: int) -> dict:
    spec = {
        "elf": {"path": "/opt/x.bpf.o", "sha256": "ab" * 32},
        "programs": [{"name": "f", "attach": {"tracing": {}}}],
        "globals": {"v": value},
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "BpfProgramNode",
        "metadata": {
            "name": node_object_name(program, node),
            "labels": {LABEL_PROGRAM: program, LABEL_NODE: node},
        },
        "spec": {"bpfProgram": program, "nodeName": node, "configHash": "x", "program": spec},
    }


def run_agent(api, node: str, version: str | None = None) -> NodeAgent:
    a = NodeAgent(api, node, SimulatedNode())  # type: ignore[arg-type]
    a.version = version
    threading.Thread(target=a.run, daemon=True).start()
    return a


def applied_value(api, name: str):
    st = api.get(PROGRAM_NODES, name).get("status") or {}
    return st.get("phase") == "Ready" and st


def test_watches_resume_from_their_version_without_listing(api, monkeypatch) -> None:
    monkeypatch.setattr(informer, "WATCH_SECONDS", (1, 2))  # many watch requests
    node, program = f"watch-{uuid.uuid4().hex[:6]}", "resume"
    name = node_object_name(program, node)
    a = run_agent(api, node)
    try:
        api.create_obj(PROGRAM_NODES, node_object(program, node, 1))
        first = wait_for("applied", lambda: applied_value(api, name))
        time.sleep(7)  # several watch requests end and resume
        api.patch(PROGRAM_NODES, name, {"spec": {"program": {"globals": {"v": 2}}}})
        second = wait_for(
            "the change applied",
            lambda: (lambda s: s if s and s["configHash"] != first["configHash"] else None)(
                applied_value(api, name)
            ),
        )
        assert second["programs"][0]["id"] != first["programs"][0]["id"]  # a new variant
        api.delete(PROGRAM_NODES, name)
        wait_for("collected", lambda: a.node.names() == [])
        assert a.lists == 1  # the one LIST at start; every later watch resumed
    finally:
        a.stop.set()


def test_a_gone_resource_version_is_the_one_reason_to_relist(api) -> None:
    node, program = f"watch-{uuid.uuid4().hex[:6]}", "gone"
    name = node_object_name(program, node)
    api.create_obj(PROGRAM_NODES, node_object(program, node, 1))
    a = run_agent(api, node, version="1")  # long compacted away: the apiserver says 410
    try:
        wait_for("applied after relisting", lambda: applied_value(api, name))
        assert a.lists == 1
        assert a.version not in (None, "1")
    finally:
        a.stop.set()
        api.delete(PROGRAM_NODES, name)
