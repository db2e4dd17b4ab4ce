"""The Helm chart: lint and render with the real helm, every manifest accepted by the real
apiserver, RBAC proven with `kubectl auth can-i`, the agent's own-node policy enforced, and the
agent's security context limited to the capabilities it needs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "bpfglobals"
NS = "bpfglobals-system"
RELEASE = "bpfg"
AGENT = f"system:serviceaccount:{NS}:{RELEASE}-agent"
OPERATOR = f"system:serviceaccount:{NS}:{RELEASE}-operator"


@pytest.fixture(scope="module")
def helm(control_plane):
    exe = Path(control_plane.bin_dir) / "helm"
    assert exe.exists(), "helm is built by tools/k8s/build.sh"
    return str(exe)


@pytest.fixture(scope="module")
def rendered(helm) -> list[dict]:
    out = subprocess.run(
        [
            helm,
            "template",
            RELEASE,
            str(CHART),
            "-n",
            NS,
            "--include-crds",
            "--kube-version",
            "1.35.4",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module")
def installed(kubectl, rendered):
    """The chart's objects applied for real (no kubelet here, so no pod ever runs)."""
    kubectl("create", "namespace", NS, check=False)
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        input="\n---\n".join(json.dumps(d) for d in rendered),
    )
    yield rendered
    kubectl(
        "delete",
        "-f",
        "-",
        "--ignore-not-found",
        "--wait=false",
        check=False,
        input="\n---\n".join(
            json.dumps(d) for d in rendered if d["kind"] != "CustomResourceDefinition"
        ),
    )


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def test_chart_lints(helm) -> None:
    r = subprocess.run([helm, "lint", str(CHART), "--strict"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_chart_ships_the_crds_from_crds_without_a_copy(rendered) -> None:
    assert (CHART / "crds").resolve() == (ROOT / "crds").resolve()
    shipped = {d["metadata"]["name"]: d for d in by_kind(rendered, "CustomResourceDefinition")}
    for f in sorted((ROOT / "crds").glob("*.yaml")):
        doc = yaml.safe_load(f.read_text())
        assert shipped[doc["metadata"]["name"]] == doc


def test_every_manifest_passes_server_side_dry_run(kubectl, rendered) -> None:
    kubectl("create", "namespace", NS, check=False)
    r = kubectl(
        "apply",
        "--dry-run=server",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        input="\n---\n".join(json.dumps(d) for d in rendered),
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("(server dry run)") == len(rendered)


def can_i(kubectl, who: str, *args: str) -> bool:
    r = kubectl("auth", "can-i", *args, f"--as={who}", check=False)
    return r.stdout.strip() == "yes"


AGENT_MAY = [
    ("list", "bpfprogramnodes.bpfglobals.io"),
    ("watch", "bpfprogramnodes.bpfglobals.io"),
    ("patch", "bpfprogramnodes.bpfglobals.io", "--subresource=status"),
    ("patch", "bpfprogramnodes.bpfglobals.io"),
    ("get", "bpfprograms.bpfglobals.io"),
    ("get", "configmaps", "-n", "default"),
]
AGENT_MAY_NOT = [
    ("update", "bpfprograms.bpfglobals.io"),
    ("patch", "bpfprograms.bpfglobals.io"),
    ("delete", "bpfprogramnodes.bpfglobals.io"),
    ("create", "bpfprogramnodes.bpfglobals.io"),
    ("get", "secrets", "-n", NS),
    ("list", "secrets", "-A"),
    ("list", "configmaps", "-A"),
    ("create", "pods"),
    ("patch", "nodes"),
    ("delete", "bpfprograms.bpfglobals.io"),
]
OPERATOR_MAY = [
    ("watch", "bpfprograms.bpfglobals.io"),
    ("patch", "bpfprograms.bpfglobals.io"),
    ("patch", "bpfprograms.bpfglobals.io", "--subresource=status"),
    ("create", "bpfprogramnodes.bpfglobals.io"),
    ("delete", "bpfprogramnodes.bpfglobals.io"),
    ("list", "nodes"),
    ("watch", "nodes"),
    ("get", "configmaps", "-n", "default"),
    ("create", "events", "-n", "default"),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
    ("create", "leases.coordination.k8s.io", "-n", NS),
    ("get", f"leases.coordination.k8s.io/{RELEASE}-operator", "-n", NS),
    ("update", f"leases.coordination.k8s.io/{RELEASE}-operator", "-n", NS),
]
OPERATOR_MAY_NOT = [
    # the Lease verbs are granted in the release namespace only, and only on its Lease
    ("create", "leases.coordination.k8s.io", "-n", "default"),
    ("update", f"leases.coordination.k8s.io/{RELEASE}-operator", "-n", "kube-system"),
    ("update", "leases.coordination.k8s.io/someone-else", "-n", NS),
    ("get", "leases.coordination.k8s.io", "-A"),
    ("delete", "bpfprograms.bpfglobals.io"),
    ("get", "secrets", "-n", NS),
    ("patch", "nodes"),
    ("create", "pods"),
    ("list", "configmaps", "-A"),
    ("patch", "bpfprogramnodes.bpfglobals.io", "--subresource=status"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
    ("patch", "customresourcedefinitions.apiextensions.k8s.io"),
]


@pytest.mark.parametrize(
    ("who", "allowed", "denied"),
    [(AGENT, AGENT_MAY, AGENT_MAY_NOT), (OPERATOR, OPERATOR_MAY, OPERATOR_MAY_NOT)],
)
def test_rbac_least_privilege(kubectl, installed, who, allowed, denied) -> None:
    assert [a for a in allowed if not can_i(kubectl, who, *a)] == []
    assert [d for d in denied if can_i(kubectl, who, *d)] == []


def test_agent_writes_only_its_own_nodes_objects(control_plane, kubectl, installed) -> None:
    for node in ("chart-node-a", "chart-node-b"):
        kubectl(
            "apply",
            "-f",
            "-",
            input=json.dumps(
                {
                    "apiVersion": "bpfglobals.io/v1alpha1",
                    "kind": "BpfProgramNode",
                    "metadata": {"name": f"p.{node}", "labels": {"bpfglobals.io/node": node}},
                    "spec": {"bpfProgram": "p", "nodeName": node, "configHash": "x", "program": {}},
                }
            ),
        )
    status = json.dumps({"status": {"phase": "Ready"}})

    def patch_as(node_name: str, target: str, *extra: str) -> subprocess.CompletedProcess:
        return kubectl(
            "patch",
            "bpfprogramnode",
            f"p.{target}",
            "--type=merge",
            "-p",
            status,
            "--subresource=status",
            f"--as={AGENT}",
            f"--as-user-extra=authentication.kubernetes.io/node-name={node_name}",
            *extra,
            check=False,
        )

    assert patch_as("chart-node-a", "chart-node-a").returncode == 0
    denied = patch_as("chart-node-a", "chart-node-b")
    assert (
        denied.returncode != 0
        and "only write the BpfProgramNodes of their own node" in denied.stderr
    )
    spec = kubectl(
        "patch",
        "bpfprogramnode",
        "p.chart-node-a",
        "--type=merge",
        "-p",
        '{"spec": {"configHash": "y"}}',
        f"--as={AGENT}",
        "--as-user-extra=authentication.kubernetes.io/node-name=chart-node-a",
        check=False,
    )
    assert spec.returncode != 0 and "may not change a BpfProgramNode's spec" in spec.stderr
    kubectl("delete", "bpfprogramnode", "p.chart-node-a", "p.chart-node-b")


def test_agent_pod_security(rendered) -> None:
    ds = by_kind(rendered, "DaemonSet")[0]["spec"]["template"]["spec"]
    c = ds["containers"][0]
    sc = c["securityContext"]
    assert sc.get("privileged") is False and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"], "add": ["BPF", "NET_ADMIN", "PERFMON"]}
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}  # enough on a real node
    assert ds["hostNetwork"] is True
    env = {e["name"]: e for e in c["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["bpffs"]["mountPath"] == "/sys/fs/bpf"
    assert mounts["bpffs"]["mountPropagation"] == "HostToContainer"
    assert mounts["tracefs"] == {
        "name": "tracefs",
        "mountPath": "/sys/kernel/tracing",
        "readOnly": True,
    }
    vols = {v["name"]: v for v in ds["volumes"]}
    assert vols["bpffs"]["hostPath"]["path"] == "/sys/fs/bpf"
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    op = by_kind(rendered, "Deployment")[0]["spec"]["template"]["spec"]
    assert op["securityContext"]["runAsNonRoot"] is True
    assert op["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert not any("privileged: true" in yaml.safe_dump(d) for d in rendered)


def test_the_operator_runs_two_replicas_with_leader_election_and_a_pdb(rendered) -> None:
    dep = by_kind(rendered, "Deployment")[0]
    assert dep["spec"]["replicas"] == 2
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--leader-elect" in args
    assert {
        "--leader-elect-lease-duration=15",
        "--leader-elect-renew-deadline=10",
        "--leader-elect-retry-period=2",
        f"--leader-elect-resource-name={RELEASE}-operator",
    } <= set(args)
    pdb = by_kind(rendered, "PodDisruptionBudget")[0]
    assert pdb["metadata"]["namespace"] == NS and pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]


def test_the_image_packages_the_project(tmp_path) -> None:
    """What the Dockerfile's build stage does: a wheel with the package, its generated cffi
    module and the console script (the image itself needs a container engine to build)."""
    text = (ROOT / "Dockerfile").read_text()
    stages = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
    assert stages == ["${BASE}", "${BASE}"]
    # the public default base is pinned to a release (`make image` passes a local base)
    base = next(line for line in text.splitlines() if line.startswith("ARG BASE="))
    assert re.fullmatch(r"ARG BASE=python:3\.\d+\.\d+-slim-bookworm", base), base
    assert "USER 65532" in text
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("bpfglobals-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "bpfglobals/kernel/abi_ool.py" in names and "bpfglobals/k8s/agent.py" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "bpfglobals = bpfglobals.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
