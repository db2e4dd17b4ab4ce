"""End to end: the operator's admission webhook on a real apiserver (`kubectl apply` refused
with the codec's message, nothing stored; the failure policy with the operator down), and
per-node values on two simulated nodes (each node's .rodata read back with bpftool)."""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import os

import pytest

from bpfglobals.k8s.webhook_config import LOCAL_NAME
from tests.e2e.test_operator import cluster_program
from tests.support.bpftool import section_vars
from tests.support.node_view import asked, program_on_nodes
from tests.support.stack import Stack, wait_for

ZONE = "topology.kubernetes.io/zone"


@pytest.fixture(scope="module")
def stack(control_plane, kubectl, tmp_path_factory, bpf_object):
    s = Stack(control_plane, kubectl, tmp_path_factory.mktemp("webhook"))
    try:
        for i in range(2):
            node = s.add_node(i)
            ip = f"10.77.0.{i + 1}"
            addresses = [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": node},
            ]
            kubectl(
                "patch", "node", node, "--subresource=status", "--type=merge",
                "-p", json.dumps({"status": {"addresses": addresses}}),
            )  # fmt: skip
            kubectl("label", "node", node, f"{ZONE}=zone-{i}", f"pool=p{i}")
            s.start_agent(node)
        s.start_operator()  # with its webhook, registered by itself: no flag
        elf = bpf_object("globals")
        s.elf_sha = hashlib.sha256(elf.read_bytes()).hexdigest()
        kubectl(
            "create", "configmap", f"globals-{s.tag}", "-n", "default",
            f"--from-file=globals.bpf.o={elf}",
        )  # fmt: skip
        s.on_close(lambda: kubectl("delete", "configmap", f"globals-{s.tag}", check=False))
        wait_for("the webhook registered", lambda: webhook_url(kubectl))
        yield s
    finally:
        s.close()


def webhook_url(kubectl) -> str | None:
    r = kubectl("get", "validatingwebhookconfiguration", LOCAL_NAME, "-o", "json", check=False)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)["webhooks"][0]["clientConfig"]["url"]


def program(stack: Stack, name: str, globals_: dict, **spec) -> dict:
    """A BpfProgram of tests/progs/globals.bpf.c (from a ConfigMap) on this stack's nodes."""
    xdp = {"xdp": {"interface": "bpfg0", "mode": "generic"}}
    doc = cluster_program(
        stack, name, "globals", stack.elf_sha, [{"name": "config_ret", "attach": xdp}], globals_
    )
    doc["spec"].update(spec)
    return doc


def apply(stack: Stack, doc: dict, *flags: str):
    return stack.kubectl("apply", *flags, "-f", "-", input=json.dumps(doc), check=False)


def stored(stack: Stack, name: str) -> bool:
    return stack.kubectl("get", "bpfprogram", name, check=False).returncode == 0


def rodata(stack: Stack, node: str, name: str) -> dict:
    root = f"{stack.nodes[node]['root']}/{name}/variants"
    variant = max(os.listdir(root), key=lambda v: os.stat(f"{root}/{v}").st_mtime)
    return section_vars(f"{root}/{variant}/maps/_rodata", ".rodata")


BAD = [
    ("unknown variable", {"ro_u16x": 1}, None, "no global variable 'ro_u16x'"),
    (
        "out of range",
        {"ro_u16": 70000},
        None,
        "variable 'ro_u16' (const volatile __u16 in .rodata): 70000 is out of range",
    ),
    ("wrong type", {"ro_bool": "yes"}, None, "expected true or false, got 'yes'"),
    ("enum member", {"ro_mode": "MODE_DORP"}, None, "MODE_DORP"),
    ("string too long", {"ro_name": "x" * 16}, None, "variable 'ro_name'"),
    ("missing program", {}, "no_such_prog", "no program 'no_such_prog'"),
    ("wrong digest", {}, "digest", "sha256 mismatch"),
]


@pytest.mark.parametrize(("what", "globals_", "other", "message"), BAD, ids=[b[0] for b in BAD])
def test_each_bad_input_is_refused_at_apply_and_nothing_is_stored(
    stack, what, globals_, other, message
) -> None:
    name = f"bad-{what.replace(' ', '-')}"
    doc = program(stack, name, globals_)
    if other == "digest":
        doc["spec"]["elf"]["sha256"] = "0" * 64
    elif other:
        doc["spec"]["programs"][0]["name"] = other
    for flags in ((), ("--dry-run=server",)):
        r = apply(stack, doc, *flags)
        assert r.returncode != 0, (what, r.stdout)
        assert 'admission webhook "bpfprograms.bpfglobals.io" denied the request' in r.stderr
        assert message in r.stderr, r.stderr
        assert not stored(stack, name)
    fixed = program(stack, name, {"ro_u16": 80})  # the same document, fixed
    r = apply(stack, fixed, "--dry-run=server")
    assert r.returncode == 0 and "(server dry run)" in r.stdout, r.stderr
    assert not stored(stack, name)  # a dry run stores nothing


def test_a_gitops_style_valid_change_still_rolls_out(stack) -> None:
    doc = program(stack, "gitops", {"ro_u16": 80})
    assert apply(stack, doc).returncode == 0
    stack.wait_ready("gitops")
    doc["spec"]["globals"] = {"ro_u16": 81, "ro_mode": "MODE_DROP"}
    r = apply(stack, doc)
    assert r.returncode == 0 and "configured" in r.stdout, r.stderr
    stack.wait_ready("gitops", stack.program("gitops")["metadata"]["generation"])
    for node in stack.nodes:
        assert rodata(stack, node, "gitops")["ro_u16"] == 81
    bad = copy.deepcopy(doc)
    bad["spec"]["globals"]["ro_u16"] = 70000
    assert apply(stack, bad).returncode != 0
    assert stack.program("gitops")["spec"]["globals"]["ro_u16"] == 81  # nothing stored
    stack.kubectl("delete", "bpfprogram", "gitops", "--timeout=60s")


def test_an_object_that_cannot_be_fetched_is_allowed_with_a_warning(stack) -> None:
    doc = program(stack, "unfetched", {"ro_u16": 70000})
    doc["spec"]["elf"]["configMap"]["name"] = "no-such-configmap"
    # an object the webhook has not seen (a digest it already holds needs no fetch)
    doc["spec"]["elf"]["sha256"] = "ab" * 32
    r = apply(stack, doc)
    assert r.returncode == 0, r.stderr
    assert "Warning: not checked: spec.elf configMap default/no-such-configmap" in r.stderr
    assert "the operator validates it after it is stored" in r.stderr

    def degraded():
        st = stack.program("unfetched").get("status") or {}
        return st if st.get("phase") == "Degraded" else None

    assert "no-such-configmap" in wait_for("the backstop", degraded)["message"]
    stack.kubectl("delete", "bpfprogram", "unfetched", "--timeout=60s")


def test_operator_down_fails_closed_and_nothing_is_lost(stack) -> None:
    """failurePolicy Fail: with the operator gone (killed, its registration left behind) a
    change is refused, not stored unchecked; what runs keeps running; once the operator is
    back the same apply goes through and rolls out."""
    doc = program(stack, "steady", {"ro_u16": 90})
    assert apply(stack, doc).returncode == 0
    running = stack.wait_ready("steady")
    stack.stop("operator", sig=9)
    try:
        doc["spec"]["globals"]["ro_u16"] = 91
        r = apply(stack, doc)
        assert r.returncode != 0
        assert 'failed calling webhook "bpfprograms.bpfglobals.io"' in r.stderr, r.stderr
        assert stack.program("steady")["spec"]["globals"]["ro_u16"] == 90  # not stored
        assert stack.program("steady")["status"]["phase"] == "Ready"
        for node in stack.nodes:  # still loaded, still the old value
            assert rodata(stack, node, "steady")["ro_u16"] == 90
        assert [n["programs"] for n in stack.program("steady")["status"]["nodes"]] == [
            n["programs"] for n in running["nodes"]
        ]
    finally:
        stack.start_operator()
    wait_for("the webhook back", lambda: apply(stack, doc).returncode == 0, timeout=60)
    stack.wait_ready("steady", stack.program("steady")["metadata"]["generation"])
    for node in stack.nodes:
        assert rodata(stack, node, "steady")["ro_u16"] == 91
    stack.kubectl("delete", "bpfprogram", "steady", "--timeout=60s")


def be32(ip: str) -> int:
    """How bpftool shows a __be32 holding `ip` (its bytes read as a host integer)."""
    return int.from_bytes(ipaddress.IPv4Address(ip).packed, "little")


def test_per_node_values_each_node_runs_its_own(stack) -> None:
    n0, n1 = sorted(stack.nodes)
    doc = program(
        stack,
        "pernode",
        {
            "ro_addr_be": {"fromNode": {"address": "InternalIP"}},
            "ro_name": {"fromNode": {"label": ZONE}, "default": "nowhere"},
            "ro_u16": 1,
            "ro_u32": {"fromNode": {"annotation": "example.com/id"}, "default": 5},
        },
        nodeOverrides=[{"nodeSelector": {"pool": "p1"}, "globals": {"ro_u16": 2}}],
    )
    r = apply(stack, doc)
    assert r.returncode == 0, r.stderr
    st = stack.wait_ready("pernode")
    per_node = {n["nodeName"]: n for n in st["nodes"]}
    for i, node in enumerate((n0, n1)):
        ro = rodata(stack, node, "pernode")
        assert ro["ro_addr_be"] == be32(f"10.77.0.{i + 1}")
        assert ro["ro_name"] == f"zone-{i}"
        assert ro["ro_u16"] == (2 if i == 1 else 1)  # the override for pool p1
        assert ro["ro_u32"] == 5
        assert per_node[node]["globals"]["ro_addr_be"] == f"10.77.0.{i + 1}"
        assert per_node[node]["globals"]["ro_name"] == f"zone-{i}"
    objs = {n: asked(stack.kubectl, n)["pernode"] for n in (n0, n1)}
    before = {
        n: json.loads(stack.kubectl("get", "bpfnode", n, "-o", "json").stdout) for n in (n0, n1)
    }
    assert objs[n0]["configHash"] != objs[n1]["configHash"]
    assert objs[n0]["program"]["globals"]["ro_addr_be"] == "10.77.0.1"
    assert "nodeOverrides" not in objs[n0]["program"]

    # relabel one node: that node alone rolls out
    stack.kubectl("label", "node", n0, f"{ZONE}=zone-9", "--overwrite")

    def moved():
        on = program_on_nodes(stack.kubectl, "pernode")[n0]
        return (
            on if on.running == on.asked != objs[n0]["configHash"] and on.phase == "Ready" else None
        )

    wait_for("node 0 re-resolved and applied", moved)
    assert rodata(stack, n0, "pernode")["ro_name"] == "zone-9"
    assert rodata(stack, n1, "pernode")["ro_name"] == "zone-1"
    other = json.loads(stack.kubectl("get", "bpfnode", n1, "-o", "json").stdout)
    # the other node's BpfNode was not written at all
    assert other["metadata"]["generation"] == before[n1]["metadata"]["generation"]
    assert other["spec"] == before[n1]["spec"]
    stack.wait_ready("pernode")

    # a label that does not parse as the variable's type fails that node only, clearly
    stack.kubectl("annotate", "node", n1, "example.com/id=not-a-number")

    def n1_failed():
        st = stack.program("pernode").get("status") or {}
        nodes = {n["nodeName"]: n for n in st.get("nodes", [])}
        return nodes if nodes.get(n1, {}).get("phase") == "Failed" else None

    nodes = wait_for("node 1 Failed", n1_failed)
    assert f"node {n1}: variable 'ro_u32'" in nodes[n1]["message"]
    assert "not-a-number" in nodes[n1]["message"]
    assert nodes[n0]["phase"] == "Ready"
    assert rodata(stack, n1, "pernode")["ro_u32"] == 5  # its running values stay
    stack.kubectl("annotate", "node", n1, "example.com/id-")
    stack.kubectl("delete", "bpfprogram", "pernode", "--timeout=60s")


def test_per_node_mistakes_are_refused_at_apply(stack) -> None:
    doc = program(
        stack,
        "pernode-bad",
        {"ro_cfg": {"fromNode": {"label": ZONE}}},
        nodeOverrides=[{"nodeSelector": {"pool": "p1"}, "globals": {"ro_u8": 256}}],
    )
    r = apply(stack, doc)
    assert r.returncode != 0
    assert "spec.nodeOverrides[0].globals: variable 'ro_u8'" in r.stderr
    assert "spec.globals.ro_cfg: fromNode.label" in r.stderr
    doc["spec"]["globals"] = {"ro_u8": {"fromNode": {"labels": ZONE}}}
    r = apply(stack, doc)
    assert r.returncode != 0 and "unknown field 'labels'" in r.stderr
    assert not stored(stack, "pernode-bad")


def chart_objects(stack: Stack, kubectl, tag: str) -> tuple[str, str, str, str]:
    """What the chart installs for the webhook: a namespace, an empty Secret, the
    configuration (no caBundle) for a Service; removed when the stack closes."""
    from bpfglobals.k8s.webhook_config import WebhookTarget, configuration

    ns, svc, secret, name = f"{tag}-{stack.tag}", "wh", "wh-tls", f"bpfg-{tag}-{stack.tag}"
    kubectl("create", "namespace", ns)
    stack.on_close(lambda: kubectl("delete", "namespace", ns, "--wait=false", check=False))
    kubectl("create", "secret", "generic", secret, "-n", ns)
    # Ignore: the Service has no endpoints here; other tests' applies must not wait on it
    target = WebhookTarget(service_namespace=ns, service_name=svc)
    kubectl("apply", "-f", "-", input=json.dumps(configuration(name, target, None, "Ignore")))
    stack.on_close(lambda: kubectl("delete", "validatingwebhookconfiguration", name, check=False))
    return ns, svc, secret, name


def put_secret(kubectl, ns: str, secret: str, cert) -> None:
    import base64

    data = {"ca.crt": cert.ca_pem, "tls.crt": cert.cert_pem, "tls.key": cert.key_pem}
    patch = {"data": {k: base64.b64encode(v).decode() for k, v in data.items()}}
    kubectl("patch", "secret", secret, "-n", ns, "--type=merge", "-p", json.dumps(patch))


def served_certificate(port: int, ca: bytes, server_name: str) -> bytes:
    """The certificate the webhook serves, verified against `ca` under `server_name`."""
    import socket
    import ssl

    ctx = ssl.create_default_context(cadata=ca.decode())
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        return ssl.DER_cert_to_PEM_cert(tls.getpeercert(binary_form=True)).encode()


def test_chart_mode_issues_and_renews_its_certificate_and_writes_the_ca_bundle(
    stack, kubectl
) -> None:
    """As the chart runs it: the configuration and an empty Secret exist; the operator finds
    a certificate there that is due (expires within 30 days), issues a new one for the
    Service's names, stores it, writes its CA into the configuration, and serves it."""
    import base64
    import datetime
    import http.client
    import ssl
    import subprocess

    from cryptography import x509

    from bpfglobals.devcluster.cluster import free_port
    from bpfglobals.k8s.webhook_tls import issue
    from tests.support.stack import CLI

    ns, svc, secret, name = chart_objects(stack, kubectl, "wh")
    due = issue([f"{svc}.{ns}.svc"], valid=datetime.timedelta(days=10))
    put_secret(kubectl, ns, secret, due)
    port = free_port()
    log = open(stack.tmp / "operator-chart-mode.log", "ab")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(
        [
            CLI, "operator", "--listen", "127.0.0.1", "--metrics-port", "0", "--health-port", "0",
            f"--webhook-config={name}", f"--webhook-service={ns}/{svc}",
            f"--webhook-secret={ns}/{secret}", "--webhook-listen=127.0.0.1",
            f"--webhook-port={port}",
        ],
        stdout=log, stderr=subprocess.STDOUT, env=stack.env(),
    )  # fmt: skip
    log.close()
    try:

        def bundle() -> str | None:
            r = kubectl("get", "validatingwebhookconfiguration", name, "-o", "json")
            return json.loads(r.stdout)["webhooks"][0]["clientConfig"].get("caBundle")

        ca = base64.b64decode(wait_for("the CA written into the configuration", bundle))
        data = json.loads(kubectl("get", "secret", secret, "-n", ns, "-o", "json").stdout)["data"]
        stored = {k: base64.b64decode(v) for k, v in data.items()}
        assert stored["ca.crt"] == ca and stored["tls.crt"] != due.cert_pem  # renewed
        cert = x509.load_pem_x509_certificate(stored["tls.crt"])
        left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
        assert left > datetime.timedelta(days=300)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert f"{svc}.{ns}.svc" in names.get_values_for_type(x509.DNSName)
        # what it serves is that certificate, trusted through the caBundle under the
        # Service's name (as the apiserver checks it)
        served = served_certificate(port, ca, f"{svc}.{ns}.svc")
        assert x509.load_pem_x509_certificate(served) == cert
        ctx = ssl.create_default_context(cadata=ca.decode())
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
        conn.sock = ctx.wrap_socket(
            __import__("socket").create_connection(("127.0.0.1", port), timeout=10),
            server_hostname=f"{svc}.{ns}.svc",
        )
        doc = program(stack, "chart-mode", {"ro_u16": 70000})
        review = {"request": {"uid": "1", "operation": "CREATE", "object": doc}}
        conn.request("POST", "/validate-bpfprogram", json.dumps(review))
        answer = json.loads(conn.getresponse().read())["response"]
        assert answer["allowed"] is False and "70000 is out of range" in answer["status"]["message"]
        conn.close()
    finally:
        proc.terminate()
        proc.wait(30)
    # the chart's configuration is the chart's: a stopping operator leaves it alone
    assert kubectl("get", "validatingwebhookconfiguration", name, check=False).returncode == 0


def test_a_running_operator_renews_a_due_certificate_and_trusts_both_cas_meanwhile(
    stack, kubectl, control_plane
) -> None:
    """The periodic check of a running operator (chart mode), driven once by hand: the
    certificate it serves (and keeps in the Secret) has become due; it issues a new one, stores
    it, puts the new CA beside the old one in the caBundle, and serves the new one."""
    import base64
    import datetime

    from cryptography import x509
    from kubernetes import config

    from bpfglobals.k8s.webhook import Webhook, WebhookOptions
    from bpfglobals.k8s.webhook_tls import issue

    ns, svc, secret, name = chart_objects(stack, kubectl, "rot")
    config.load_kube_config(config_file=control_plane.kubeconfig)
    opts = WebhookOptions(config_name=name, service=f"{ns}/{svc}", secret=f"{ns}/{secret}")
    hook = Webhook(opts)
    hook.start()
    try:
        first = hook.cert
        assert not hook.check_certificate()  # a year left: nothing to do
        due = issue(hook._hosts(), valid=datetime.timedelta(days=10))
        put_secret(kubectl, ns, secret, due)  # as if eleven months had passed
        hook.server.use(due)
        hook.cert = due
        assert hook.check_certificate()
        new = hook.cert
        assert new.cert_pem not in (due.cert_pem, first.cert_pem) and not new.due()
        data = json.loads(kubectl("get", "secret", secret, "-n", ns, "-o", "json").stdout)
        assert base64.b64decode(data["data"]["tls.crt"]) == new.cert_pem
        bundle = json.loads(
            kubectl("get", "validatingwebhookconfiguration", name, "-o", "json").stdout
        )["webhooks"][0]["clientConfig"]["caBundle"]
        trusted = x509.load_pem_x509_certificates(base64.b64decode(bundle))
        expected = [x509.load_pem_x509_certificate(c) for c in (new.ca_pem, due.ca_pem)]
        assert trusted == expected
        served = served_certificate(hook.server.port, new.ca_pem, f"{svc}.{ns}.svc")
        assert x509.load_pem_x509_certificate(served) == x509.load_pem_x509_certificate(
            new.cert_pem
        )
    finally:
        hook.stop()


def test_validate_fetch_reads_the_configmap_through_the_kubeconfig(stack, tmp_path) -> None:
    """`bpfglobals validate --fetch`: a ConfigMap source read from the cluster, offline
    otherwise (no webhook, no apply): the same messages as the webhook."""
    import subprocess

    import yaml

    from tests.support.stack import CLI

    bad = program(stack, "validate-fetch", {"ro_u16": 70000})
    good = program(stack, "validate-fetch-ok", {"ro_u16": 7})
    f = tmp_path / "gitops.yaml"
    f.write_text(yaml.safe_dump_all([good, bad]))
    r = subprocess.run(
        [CLI, "validate", "-f", str(f), "--fetch"], capture_output=True, text=True, env=stack.env()
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout.splitlines() == [
        f"{f}:1: bpfprogram/validate-fetch: spec.globals: variable 'ro_u16' (const volatile "
        "__u16 in .rodata): 70000 is out of range for 16-bit unsigned integer [0, 65535]"
    ]
    assert not stored(stack, "validate-fetch")


def test_a_clean_stop_removes_the_local_registration(stack, kubectl) -> None:
    """SIGTERM (as `make demo` and kubelet stop it): the operator removes the configuration
    it registered, so an apiserver left behind does not refuse BpfPrograms; it registers again
    when it starts."""
    assert webhook_url(kubectl) is not None
    stack.stop("operator")
    assert webhook_url(kubectl) is None
    stack.start_operator()
    wait_for("registered again", lambda: webhook_url(kubectl))
