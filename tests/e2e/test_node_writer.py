"""The operator's BpfNode writer on a real apiserver: every program's pending change to a node
goes out in one request, removing the last program deletes the BpfNode, and a BpfNode deleted
behind its back is written again."""

from __future__ import annotations

import uuid

import pytest
from kubernetes import client, config

from bpfglobals.k8s.client import Api, is_not_found
from bpfglobals.k8s.node_writer import NodeWriter
from bpfglobals.k8s.resources import NODES
from tests.support.stack import wait_for


@pytest.fixture
def api(control_plane):
    c = config.new_client_from_config(control_plane.kubeconfig)
    return Api(client.CoreV1Api(c), client.CustomObjectsApi(c))


def entry(h: str) -> dict:
    return {"uid": "u", "configHash": h, "program": {"elf": {"path": "/x.o"}}}


def programs(api, node: str) -> dict | None:
    try:
        return api.get(NODES, node)["spec"]["programs"]
    except Exception as e:
        if is_not_found(e):
            return None
        raise


def test_changes_to_one_node_are_coalesced_into_one_request(api) -> None:
    node = f"w-{uuid.uuid4().hex[:6]}"
    w = NodeWriter(api, lambda n: None, workers=2, linger=0.3)
    try:
        for p in ("a", "b", "c"):
            w.set(node, p, entry(f"h-{p}"))
        wait_for("the BpfNode", lambda: w.idle() and programs(api, node))
        assert w.writes == 1  # one create carried all three
        assert {p: e["configHash"] for p, e in programs(api, node).items()} == {
            "a": "h-a",
            "b": "h-b",
            "c": "h-c",
        }
        assert api.get(NODES, node)["metadata"]["labels"]["bpfglobals.io/node"] == node

        w.set(node, "a", entry("h-a2"))  # a rollout wave of one program
        w.drop(node, "b")  # and another program deleted: the same request
        w.drop(node, "zz")  # not there: nothing to remove, no error
        wait_for("the patch", lambda: w.idle() and "b" not in (programs(api, node) or {}))
        assert w.writes == 2
        assert {p: e["configHash"] for p, e in programs(api, node).items()} == {
            "a": "h-a2",
            "c": "h-c",
        }

        w.drop(node, "a")
        w.drop(node, "c")
        wait_for("the BpfNode gone", lambda: w.idle() and programs(api, node) is None)
        assert w.writes == 3  # the last program's removal deletes the BpfNode

        w.set(node, "d", entry("h-d"))  # asked again: created again
        wait_for("the new BpfNode", lambda: w.idle() and programs(api, node))
        api.delete(NODES, node)  # deleted behind the writer's back
        w.set(node, "e", entry("h-e"))
        wait_for("written again", lambda: w.idle() and programs(api, node))
        assert set(programs(api, node)) == {"e"}
    finally:
        w.close()
        try:
            api.delete(NODES, node)
        except Exception as e:
            if not is_not_found(e):
                raise


def test_a_deleted_node_loses_its_bpfnode_and_pending_changes(api) -> None:
    node = f"w-{uuid.uuid4().hex[:6]}"
    w = NodeWriter(api, lambda n: None, workers=1, linger=0.2)
    try:
        w.set(node, "a", entry("h"))
        wait_for("the BpfNode", lambda: w.idle() and programs(api, node))
        w.set(node, "b", entry("h"))
        w.node_gone(node)  # the Node went while a change was pending: no write but the delete
        wait_for("gone", lambda: w.idle() and programs(api, node) is None)
        assert w.writes == 2
    finally:
        w.close()
