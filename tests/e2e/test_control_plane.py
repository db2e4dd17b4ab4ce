"""The local control plane is a real one: version, CRDs with schema and CEL, the status
subresource, printer columns, watches, loopback only, and dev-cluster up/down semantics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bpfglobals.devcluster import DevCluster
from tests.support.procs import listening

CLI = str(Path(sys.executable).parent / "bpfglobals")

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.test.bpfglobals.io"},
    "spec": {
        "group": "test.bpfglobals.io",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["color"],
                                "properties": {
                                    "color": {"type": "string", "enum": ["red", "blue"]},
                                    "size": {"type": "integer", "minimum": 0},
                                },
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "self.color != 'red' || self.size <= 10",
                                        "message": "red widgets are small",
                                    }
                                ],
                            },
                            "status": {
                                "type": "object",
                                "properties": {"phase": {"type": "string"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


def widget(name: str, **spec) -> str:
    return json.dumps(
        {
            "apiVersion": "test.bpfglobals.io/v1",
            "kind": "Widget",
            "metadata": {"name": name, "namespace": "default"},
            "spec": spec,
        }
    )


@pytest.fixture(scope="module")
def widgets(kubectl):
    kubectl("apply", "-f", "-", input=json.dumps(CRD))
    kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/widgets.test.bpfglobals.io"
    )
    yield
    kubectl("delete", "crd", "widgets.test.bpfglobals.io", "--wait=false", check=False)


def test_server_version(kubectl) -> None:
    v = json.loads(kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert (v["major"], v["minor"], v["gitVersion"]) == ("1", "35", "v1.35.4")


def test_schema_and_cel_reject_invalid_objects(kubectl, widgets) -> None:
    kubectl("apply", "-f", "-", input=widget("ok", color="blue", size=50))
    r = kubectl("apply", "-f", "-", input=widget("bad-enum", color="green"), check=False)
    assert r.returncode != 0 and "Unsupported value" in r.stderr
    r = kubectl("apply", "-f", "-", input=widget("no-color", size=1), check=False)
    assert r.returncode != 0 and "Required value" in r.stderr
    r = kubectl("apply", "-f", "-", input=widget("big-red", color="red", size=11), check=False)
    assert r.returncode != 0 and "red widgets are small" in r.stderr


def test_status_subresource_and_generation(kubectl, widgets) -> None:
    kubectl("apply", "-f", "-", input=widget("st", color="blue", size=1))
    get = lambda: json.loads(kubectl("get", "widget", "st", "-o", "json").stdout)  # noqa: E731
    gen = get()["metadata"]["generation"]
    kubectl(
        "patch",
        "widget",
        "st",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status": {"phase": "Ready"}, "spec": {"size": 7}}',
    )
    w = get()
    assert w["status"] == {"phase": "Ready"} and w["spec"]["size"] == 1  # spec ignored
    assert w["metadata"]["generation"] == gen  # status does not bump generation
    kubectl(
        "patch",
        "widget",
        "st",
        "--type=merge",
        "-p",
        '{"spec": {"size": 2}, "status": {"phase": "Gone"}}',
    )
    w = get()
    assert w["spec"]["size"] == 2 and w["status"] == {"phase": "Ready"}
    assert w["metadata"]["generation"] == gen + 1
    table = kubectl("get", "widget", "st").stdout.split()
    # with printer columns declared, kubectl shows exactly those after NAME
    assert table == ["NAME", "COLOR", "PHASE", "st", "blue", "Ready"]


def test_a_watch_sees_changes(control_plane, kubectl, widgets) -> None:
    kubectl("apply", "-f", "-", input=widget("watched", color="blue", size=1))
    watch = subprocess.Popen(
        [
            control_plane.kubectl,
            f"--kubeconfig={control_plane.kubeconfig}",
            "get",
            "widget",
            "watched",
            "--watch-only",
            "-o",
            'jsonpath={.spec.size}{"\\n"}',
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1)
        kubectl("patch", "widget", "watched", "--type=merge", "-p", '{"spec": {"size": 5}}')
        assert watch.stdout.readline().strip() == "5"
    finally:
        watch.kill()
        watch.wait()


def test_only_loopback_listens(control_plane) -> None:
    for name, pid in control_plane.pids.items():
        addrs = listening(pid)
        assert addrs, name
        assert all(a.startswith("127.0.0.1:") for a in addrs), (name, addrs)


def test_dev_cluster_cli_up_is_idempotent_and_down_stops_everything(tmp_path) -> None:
    state = str(tmp_path / "dc")
    r = subprocess.run(
        [CLI, "dev-cluster", "up", "--state-dir", state], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    first = DevCluster(state).info()
    r = subprocess.run(
        [CLI, "dev-cluster", "up", "--state-dir", state], capture_output=True, text=True
    )
    assert r.returncode == 0 and DevCluster(state).info().pids == first.pids  # reused
    env = subprocess.run(
        [CLI, "dev-cluster", "env", "--state-dir", state], capture_output=True, text=True
    ).stdout
    assert f"export KUBECONFIG={first.kubeconfig}" in env
    r = subprocess.run(
        [CLI, "dev-cluster", "down", "--state-dir", state], capture_output=True, text=True
    )
    assert r.returncode == 0
    for pid in first.pids.values():
        status = Path(f"/proc/{pid}/status")
        assert not status.exists() or "zombie" in status.read_text()
    assert not os.path.exists(state)
