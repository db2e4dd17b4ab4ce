"""A real control plane (etcd + kube-apiserver, built by tools/k8s) for the e2e tests.

Session-scoped, on free loopback ports in a temp state dir, so it never collides with a
developer's `bpfglobals dev-cluster`. A missing binary or a failed start FAILS the tests.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator

import pytest

from bpfglobals.devcluster import ClusterInfo, ControlPlaneError, DevCluster


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
def kubectl(control_plane) -> Callable[..., subprocess.CompletedProcess]:
    def run(
        *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess:
        r = subprocess.run(
            [control_plane.kubectl, f"--kubeconfig={control_plane.kubeconfig}", *args],
            capture_output=True,
            text=True,
            input=input,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {r.stderr}")
        return r

    return run


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
