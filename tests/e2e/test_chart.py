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
    ("get", "bpfnodes.bpfglobals.io"),
    ("list", "bpfnodes.bpfglobals.io"),
    ("watch", "bpfnodes.bpfglobals.io"),
    ("list", "bpfprogramnodes.bpfglobals.io"),
    ("watch", "bpfprogramnodes.bpfglobals.io"),
    ("create", "bpfprogramnodes.bpfglobals.io"),
    ("patch", "bpfprogramnodes.bpfglobals.io"),
    ("delete", "bpfprogramnodes.bpfglobals.io"),
    ("get", "configmaps", "-n", "default"),
]
AGENT_MAY_NOT = [
    ("create", "bpfnodes.bpfglobals.io"),
    ("patch", "bpfnodes.bpfglobals.io"),
    ("delete", "bpfnodes.bpfglobals.io"),
    ("get", "bpfprograms.bpfglobals.io"),
    ("update", "bpfprograms.bpfglobals.io"),
    ("patch", "bpfprograms.bpfglobals.io"),
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
    ("create", "bpfnodes.bpfglobals.io"),
    ("patch", "bpfnodes.bpfglobals.io"),
    ("delete", "bpfnodes.bpfglobals.io"),
    ("watch", "bpfnodes.bpfglobals.io"),
    ("watch", "bpfprogramnodes.bpfglobals.io"),
    ("delete", "bpfprogramnodes.bpfglobals.io"),
    ("list", "nodes"),
    ("watch", "nodes"),
    ("get", "configmaps", "-n", "default"),
    ("create", "events", "-n", "default"),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
    # the webhook: its one Secret (serving certificate) and its one configuration (caBundle)
    ("get", f"secrets/{RELEASE}-webhook-tls", "-n", NS),
    ("update", f"secrets/{RELEASE}-webhook-tls", "-n", NS),
    ("patch", f"validatingwebhookconfigurations.admissionregistration.k8s.io/{RELEASE}-bpfglobals"),
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
    ("create", "bpfprogramnodes.bpfglobals.io"),
    ("patch", "bpfprogramnodes.bpfglobals.io"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
    ("patch", "customresourcedefinitions.apiextensions.k8s.io"),
    ("get", "secrets/other", "-n", NS),
    ("patch", "validatingwebhookconfigurations.admissionregistration.k8s.io/other"),
    ("create", "validatingwebhookconfigurations.admissionregistration.k8s.io"),
]


@pytest.mark.parametrize(
    ("who", "allowed", "denied"),
    [(AGENT, AGENT_MAY, AGENT_MAY_NOT), (OPERATOR, OPERATOR_MAY, OPERATOR_MAY_NOT)],
)
def test_rbac_least_privilege(kubectl, installed, who, allowed, denied) -> None:
    assert [a for a in allowed if not can_i(kubectl, who, *a)] == []
    assert [d for d in denied if can_i(kubectl, who, *d)] == []


def test_agent_writes_only_its_own_nodes_objects(control_plane, kubectl, installed) -> None:
    def report(node: str) -> str:
        return json.dumps(
            {
                "apiVersion": "bpfglobals.io/v1alpha1",
                "kind": "BpfProgramNode",
                "metadata": {"name": f"p.{node}", "labels": {"bpfglobals.io/node": node}},
                "spec": {"bpfProgram": "p", "nodeName": node, "configHash": "x"},
                "status": {"phase": "Ready"},
            }
        )

    def as_agent(node_name: str, *args: str, input: str | None = None):
        return kubectl(
            *args,
            f"--as={AGENT}",
            f"--as-user-extra=authentication.kubernetes.io/node-name={node_name}",
            input=input,
            check=False,
        )

    own = "only write the BpfProgramNodes of their own node"
    # create: only a report naming its own node
    assert (
        as_agent("chart-node-a", "create", "-f", "-", input=report("chart-node-a")).returncode == 0
    )
    denied = as_agent("chart-node-a", "create", "-f", "-", input=report("chart-node-b"))
    assert denied.returncode != 0 and own in denied.stderr
    kubectl("create", "-f", "-", input=report("chart-node-b"))  # as an administrator

    def patch(node_name: str, target: str, body: dict):
        return as_agent(
            node_name, "patch", "bpfprogramnode", f"p.{target}", "--type=merge", "-p",
            json.dumps(body),
        )  # fmt: skip

    # update (the agent's one merge patch of spec and status): only its own node's reports
    mine = {"spec": {"configHash": "y"}, "status": {"phase": "Failed"}}
    assert patch("chart-node-a", "chart-node-a", mine).returncode == 0
    denied = patch("chart-node-a", "chart-node-b", mine)
    assert denied.returncode != 0 and own in denied.stderr
    moved = patch("chart-node-a", "chart-node-a", {"spec": {"nodeName": "chart-node-b"}})
    assert moved.returncode != 0 and "may not change a BpfProgramNode's spec.nodeName" in (
        moved.stderr
    )
    # delete: only its own node's reports
    denied = as_agent("chart-node-a", "delete", "bpfprogramnode", "p.chart-node-b")
    assert denied.returncode != 0 and own in denied.stderr
    assert as_agent("chart-node-a", "delete", "bpfprogramnode", "p.chart-node-a").returncode == 0
    kubectl("delete", "bpfprogramnode", "p.chart-node-b")


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


def test_signature_policy_reads_secrets_in_one_namespace_only(helm, kubectl) -> None:
    """policy.requireSignatures passes --require-signatures to the operator and the agents,
    and images.secretsNamespace grants `get` on Secrets there and nowhere else."""
    argv = [helm, "template", "sig", str(CHART), "-n", NS, "--kube-version", "1.35.4"]
    r = subprocess.run(
        [*argv, "--set", "policy.requireSignatures=true"], capture_output=True, text=True
    )
    assert r.returncode != 0 and "needs images.secretsNamespace" in r.stderr
    ns = "bpf-images-chart"
    values = ["--set", "policy.requireSignatures=true", "--set", f"images.secretsNamespace={ns}"]
    docs = [d for d in yaml.safe_load_all(subprocess.run(
        [*argv, *values], capture_output=True, text=True, check=True).stdout) if d]  # fmt: skip
    containers = [c for d in docs if d["kind"] in ("Deployment", "DaemonSet")
                  for c in d["spec"]["template"]["spec"]["containers"]]  # fmt: skip
    assert len(containers) == 2
    assert all("--require-signatures" in c["args"] for c in containers)
    kubectl("create", "namespace", NS, check=False)
    kubectl("create", "namespace", ns, check=False)
    rbac = [d for d in docs if d["kind"] in ("Role", "RoleBinding", "ServiceAccount")]
    kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(d) for d in rbac))
    try:
        for who in (
            f"system:serviceaccount:{NS}:sig-agent",
            f"system:serviceaccount:{NS}:sig-operator",
        ):
            assert can_i(kubectl, who, "get", "secrets", "-n", ns)
            assert not can_i(kubectl, who, "list", "secrets", "-n", ns)
            assert not can_i(kubectl, who, "get", "secrets", "-n", NS)
            assert not can_i(kubectl, who, "get", "secrets", "-n", "default")
    finally:
        kubectl("delete", "-f", "-", "--ignore-not-found", check=False,
                input="\n---\n".join(json.dumps(d) for d in rbac))  # fmt: skip
        kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_the_webhook_intercepts_only_bpfprograms_without_side_effects(rendered) -> None:
    [config] = by_kind(rendered, "ValidatingWebhookConfiguration")
    [hook] = config["webhooks"]
    assert hook["rules"] == [
        {
            "apiGroups": ["bpfglobals.io"],
            "apiVersions": ["*"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["bpfprograms"],
            "scope": "Cluster",
        }
    ]
    assert (hook["sideEffects"], hook["failurePolicy"], hook["timeoutSeconds"]) == (
        "None",
        "Fail",
        10,
    )
    service = hook["clientConfig"]["service"]
    assert service == {
        "namespace": NS,
        "name": f"{RELEASE}-webhook",
        "path": "/validate-bpfprogram",
        "port": 443,
    }
    [svc] = [s for s in by_kind(rendered, "Service") if s["metadata"]["name"] == service["name"]]
    assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "operator"
    [operator] = [d for d in by_kind(rendered, "Deployment")]
    args = operator["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--webhook-config={RELEASE}-bpfglobals" in args
    assert f"--webhook-secret={NS}/{RELEASE}-webhook-tls" in args


def test_cert_manager_mode_mounts_its_certificate(helm) -> None:
    out = subprocess.run(
        [helm, "template", RELEASE, str(CHART), "-n", NS, "--kube-version", "1.35.4",
         "--set", "webhook.certManager.enabled=true"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    docs = [d for d in yaml.safe_load_all(out) if d]
    [config] = by_kind(docs, "ValidatingWebhookConfiguration")
    annotation = config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    assert annotation == f"{NS}/{RELEASE}-webhook-tls"
    [cert] = by_kind(docs, "Certificate")
    assert cert["spec"]["secretName"] == f"{RELEASE}-webhook-tls"
    assert f"{RELEASE}-webhook.{NS}.svc" in cert["spec"]["dnsNames"]
    assert not by_kind(docs, "Secret")  # cert-manager writes it, the operator does not
    [operator] = by_kind(docs, "Deployment")
    pod = operator["spec"]["template"]["spec"]
    assert "--webhook-cert-dir=/run/bpfglobals/webhook-tls" in pod["containers"][0]["args"]
    assert pod["volumes"] == [
        {"name": "webhook-tls", "secret": {"secretName": cert["spec"]["secretName"]}}
    ]
