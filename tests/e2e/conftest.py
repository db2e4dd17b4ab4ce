"""A real control plane (etcd + kube-apiserver, built by tools/k8s) for the e2e tests.

Session-scoped, on free loopback ports in a temp state dir, so it never collides with a
developer's `bpfglobals dev-cluster`. A missing binary or a failed start FAILS the tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from bpfglobals.devcluster import ClusterInfo, ControlPlaneError, DevCluster
from tests.support.kubectl import Kubectl, kubectl_for


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory) -> Iterator[ClusterInfo]:
    cluster = DevCluster(str(tmp_path_factory.mktemp("devcluster") / "state"))
    try:
        info = cluster.up(controller_manager=True)
    except ControlPlaneError as e:
        pytest.fail(f"the local control plane did not start: {e}")
    yield info
    cluster.down()


@pytest.fixture(scope="session")
def kubectl(control_plane) -> Kubectl:
    return kubectl_for(control_plane)


@pytest.fixture(scope="session")
def make_nodes(kubectl) -> Callable[..., list[str]]:
    """Create Node objects for simulated nodes (no kubelet: just the API objects)."""

    def make(*names: str, labels: dict[str, str] | None = None) -> list[str]:
        for name in names:
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "labels": {"kubernetes.io/hostname": name, **(labels or {})},
                },
            }
            kubectl("apply", "-f", "-", input=json.dumps(node))
        return list(names)

    return make
