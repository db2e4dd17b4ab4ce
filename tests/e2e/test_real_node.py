"""The chart on a real node: this machine joins the local control plane with containerd and a
kubelet (`dev-cluster up --node`), `make image` builds the image with buildah and pushes it to
the cluster's registry, `helm install` runs the operator Deployment and the agent DaemonSet as
containers, and the cluster example drops UDP on a veth of this node while the agent is
upgraded, killed mid-rollout, and while its kubelet is restarted.

Oracles independent of the project: a UDP socket that must receive nothing on the dropped port,
bpftool for attached programs and map IDs, /proc for the container's capabilities.
A missing part (package, binary, image) fails the test; nothing is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from bpfglobals.devcluster import ClusterInfo, ControlPlaneError, DevCluster
from bpfglobals.devcluster.cluster import free_port
from tests.support.bpftool import bpftool, percpu_sum
from tests.support.kubectl import Kubectl, kubectl_for
from tests.support.netns import NetPair, net_pair
from tests.support.procs import listening
from tests.support.stack import wait_for

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "bpfglobals"
NS = "bpfglobals-system"
RELEASE = "bpfg"
PORT = 9999  # the example's drop_port
VERSION = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
AGENT = "app.kubernetes.io/component=agent"
NUMBERS: dict[str, float] = {}  # measured here, printed at the end of the module


def timed(what: str, start: float) -> float:
    NUMBERS[what] = round(time.monotonic() - start, 2)
    return NUMBERS[what]


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[tuple[DevCluster, ClusterInfo]]:
    cluster = DevCluster(str(tmp_path_factory.mktemp("realnode") / "state"))
    start = time.monotonic()
    try:
        info = cluster.up(node=True)
    except ControlPlaneError as e:
        cluster.down()
        pytest.fail(f"dev-cluster up --node failed: {e}")
    timed("dev-cluster up --node (s)", start)
    try:
        yield cluster, info
    finally:
        cluster.down()
        print("\nreal-node numbers:", json.dumps(NUMBERS, indent=1))


@pytest.fixture(scope="module")
def k(node) -> Kubectl:
    return kubectl_for(node[1])


def make_image(info: ClusterInfo, image: str | None = None) -> str:
    env = {**os.environ, "BPFGLOBALS_REGISTRY": info.registry}
    if image:
        env["IMAGE"] = image
    r = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "image"], capture_output=True, text=True, env=env
    )
    assert r.returncode == 0, f"make image failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def images(node) -> Iterator[dict[str, str]]:
    """The image built twice from the Dockerfile: the version tag and an upgrade tag."""
    info = node[1]
    start = time.monotonic()
    first = make_image(info)
    timed("make image (s)", start)
    assert first == f"{info.registry}/bpfglobals:{VERSION}"
    upgrade = make_image(info, f"{info.registry}/bpfglobals:{VERSION}-upgrade")
    out = subprocess.run(
        ["buildah", "inspect", "--type", "image", first], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    layers = json.loads(json.loads(out.stdout)["Manifest"])["layers"]
    NUMBERS["image size (MB)"] = round(sum(x["size"] for x in layers) / 1e6, 1)
    yield {"first": first, "upgrade": upgrade}
    # the tags name this run's registry port; the layers stay cached for the next build
    subprocess.run(["buildah", "rmi", first, upgrade], capture_output=True)


def helm(info: ClusterInfo, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [str(Path(info.bin_dir) / "helm"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": info.kubeconfig},
    )
    if check:
        assert r.returncode == 0, f"helm {' '.join(args)}: {r.stderr}"
    return r


def agent_pods(k: Kubectl) -> list[dict]:
    return json.loads(k("get", "pods", "-n", NS, "-l", AGENT, "-o", "json").stdout)["items"]


def ready(pod: dict) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return pod.get("metadata", {}).get("deletionTimestamp") is None and any(
        c["type"] == "Ready" and c["status"] == "True" for c in conds
    )


def agent_ready(k: Kubectl, image: str | None = None) -> dict | None:
    pods = agent_pods(k)
    ok = [
        p
        for p in pods
        if ready(p) and (image is None or p["spec"]["containers"][0]["image"] == image)
    ]
    return ok[0] if len(ok) == 1 and len(pods) == 1 else None


@pytest.fixture(scope="module")
def release(node, k, images) -> Iterator[dict]:
    """`helm install` with the chart's default tag (the project version)."""
    info = node[1]
    host, port = info.server.removeprefix("https://").rsplit(":", 1)
    root = f"/sys/fs/bpf/bgt-node-{uuid.uuid4().hex[:8]}"
    start = time.monotonic()
    helm(
        info,
        "install",
        RELEASE,
        str(CHART),
        "-n",
        NS,
        "--create-namespace",
        f"--set=image.repository={info.registry}/bpfglobals",
        # no kube-proxy here: pods reach the apiserver on the node bridge's gateway
        f"--set=apiServer.host={host}",
        f"--set=apiServer.port={port}",
        f"--set=agent.bpffsRoot={root}",
        # hostNetwork: ports of their own on a machine shared with other processes
        f"--set=agent.metricsPort={free_port()}",
        f"--set=agent.healthPort={free_port()}",
    )
    try:
        wait_for("the agent pod Ready", lambda: agent_ready(k, images["first"]), 180)
        timed("helm install -> agent Ready (s)", start)
        yield {"root": root}
    finally:
        if Path(info.state_dir).exists():  # not yet taken down by the last test
            helm(info, "uninstall", RELEASE, "-n", NS, "--wait", "--timeout=60s", check=False)
        subprocess.run(["rm", "-rf", root], check=False)


@pytest.fixture(scope="module")
def veth() -> Iterator[NetPair]:
    with net_pair() as net:
        yield net


class Receiver:
    """A UDP socket on the node's veth address: what the XDP program lets through."""

    def __init__(self, net: NetPair, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((net.host_ip, port))
        self.sock.setblocking(False)

    def drain(self) -> int:
        n = 0
        while True:
            try:
                self.sock.recv(64)
            except BlockingIOError:
                return n
            n += 1


@pytest.fixture(scope="module")
def program(node, k, release, veth, bpf_object) -> Iterator[dict]:
    """The cluster example (examples/xdp_drop-cluster.yaml) applied for this node's veth."""
    info = node[1]
    obj = bpf_object("examples/xdp_drop.bpf.c")
    k("-n", "default", "create", "configmap", "xdp-drop", f"--from-file=xdp_drop.bpf.o={obj}")
    k("label", "node", info.node["name"], "bpfglobals.io/demo=true", "--overwrite")
    text = (ROOT / "examples" / "xdp_drop-cluster.yaml").read_text()
    text = text.replace("SHA256", hashlib.sha256(obj.read_bytes()).hexdigest())
    text = text.replace("interface: bpfg-demo0", f"interface: {veth.host_if}")
    doc = yaml.safe_load(text)
    assert doc["spec"]["globals"]["drop_port"] == PORT
    receiver = Receiver(veth, PORT)
    start = time.monotonic()
    k("apply", "-f", "-", input=json.dumps(doc))

    def dropping() -> bool:
        before = drops(release["root"])
        sent = veth.send_udp_wait(PORT, 20)
        return drops(release["root"]) - before == sent and receiver.drain() == 0

    wait_for("the example dropping traffic", dropping, 60)
    timed("kubectl apply -> traffic dropped (s)", start)
    yield {"doc": doc, "receiver": receiver, "root": release["root"]}
    receiver.sock.close()


def drops(root: str) -> int:
    pin = f"{root}/xdp-drop/maps/stats"
    return percpu_sum(pin).get(1, 0) if os.path.exists(pin) else 0


def xdp_ids(net: NetPair) -> list[int]:
    shown = bpftool("net", "show", "dev", net.host_if)
    return [x["id"] for x in shown[0]["xdp"]]


def status(k: Kubectl) -> dict:
    st = json.loads(k("get", "bpfprogram", "xdp-drop", "-o", "json").stdout)["status"]
    return st["nodes"][0]


def traffic_during(net: NetPair, action: Callable[[], object]) -> int:
    """Send datagrams to the dropped port in batches for as long as `action` runs (in a
    thread), and once more after it; the number sent."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    sent = 0
    while t.is_alive():
        sent += net.send_udp_wait(PORT, 500)
    t.join()
    sent += net.send_udp_wait(PORT, 500)
    if errors:
        raise errors[0]
    return sent


def assert_all_dropped(program: dict, net: NetPair, action: Callable[[], object]) -> None:
    before = drops(program["root"])
    sent = traffic_during(net, action)
    assert program["receiver"].drain() == 0  # not one datagram of the port got through
    assert drops(program["root"]) - before == sent  # and the XDP program counted each


# -- the tests, in the order a user goes ------------------------------------------------------


def test_up_node_is_idempotent_and_listens_only_on_loopback_and_its_bridge(node) -> None:
    cluster, info = node
    assert {"containerd", "kubelet", "scheduler", "kcm", "registry"} <= set(info.pids)
    again = cluster.up(node=True)
    assert again.pids == info.pids  # reused, not restarted
    env = cluster.env()
    assert f"export BPFGLOBALS_REGISTRY={info.registry}" in env
    assert info.registry.startswith("127.0.0.1:")
    gateway = info.node["prefix"] + ".1"
    for name, pid in info.pids.items():
        addrs = listening(pid)
        assert all(a.startswith(("127.0.0.1:", f"{gateway}:")) for a in addrs), (name, addrs)
    assert listening(info.pids["apiserver"]) == [info.server.removeprefix("https://")]


def test_helm_install_runs_the_operator_and_the_agent_as_containers(node, k, release) -> None:
    info = node[1]
    deploy = json.loads(k("get", "deploy", "-n", NS, f"{RELEASE}-operator", "-o", "json").stdout)
    assert deploy["spec"]["replicas"] == 2  # the chart's default: a leader and a standby
    wait_for(
        "both operator replicas available (the standby answers /healthz too)",
        lambda: (
            json.loads(k("get", "deploy", "-n", NS, f"{RELEASE}-operator", "-o", "json").stdout)[
                "status"
            ].get("availableReplicas")
            == 2
        ),
        120,
    )
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"].endswith(f":{VERSION}")
    pod = agent_ready(k)
    assert pod["spec"]["nodeName"] == info.node["name"]
    # In the running container: exactly CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON, uid 0, the
    # runtime's default seccomp filter, a read-only root (kubectl exec reaches the kubelet
    # over loopback).
    script = (
        "import os;s=dict(l.split(':\\t') for l in open('/proc/self/status').read().splitlines()"
        " if ':\\t' in l);print(s['CapEff'].strip(),os.getuid(),s['Seccomp'].strip());"
        "open('/probe','w')"
    )
    r = k("exec", "-n", NS, pod["metadata"]["name"], "--", "python3", "-c", script, check=False)
    cap_eff, uid, seccomp = r.stdout.split()
    assert seccomp == "2"  # filtered by the runtime's default profile, not unconfined
    assert int(cap_eff, 16) == (1 << 39) | (1 << 38) | (1 << 12), cap_eff  # BPF, PERFMON, NET_ADMIN
    assert uid == "0"
    assert "Read-only file system" in r.stderr
    wait_connected(k, pod, 0)
    assert f"for {info.node['name']}" in k("logs", "-n", NS, pod["metadata"]["name"]).stdout


def test_cluster_example_drops_the_port_on_a_veth_of_the_node(k, program, veth) -> None:
    assert_all_dropped(program, veth, lambda: None)
    # the node drops as soon as its agent applied; the operator then aggregates the status
    k("wait", "--for=condition=Ready", "bpfprogram/xdp-drop", "--timeout=60s")
    table = k("get", "bpfprograms").stdout.split()
    assert table[:4] == ["NAME", "PHASE", "READY", "CONFIG"]
    assert table[5:8] == ["xdp-drop", "Ready", "1/1"], table
    st = status(k)
    assert xdp_ids(veth) == [st["programs"][0]["id"]]
    root = program["root"]
    for pin, name in (("maps/stats", "stats"), ("maps/_bss", "xdp_drop.bss")):
        assert st["maps"][name] == bpftool("map", "show", "pinned", f"{root}/xdp-drop/{pin}")["id"]
    variant = max(os.listdir(f"{root}/xdp-drop/variants"), key=int)
    rodata = bpftool("map", "show", "pinned", f"{root}/xdp-drop/variants/{variant}/maps/_rodata")
    assert st["maps"]["xdp_drop.rodata"] == rodata["id"]
    # other ports pass: the filter is the configured one, not a blanket drop
    passed = Receiver(veth, PORT + 1)
    try:
        assert veth.send_udp_wait(PORT + 1, 50) == 50
        assert wait_for("datagrams on another port", passed.drain, 10) == 50
    finally:
        passed.sock.close()
    # the chart's admission webhook (the operator pod, through its Service, with the
    # certificate the operator issued) refuses a bad value at apply; nothing is stored
    bad = json.loads(json.dumps(program["doc"]))
    bad["spec"]["globals"]["drop_port"] = 70000
    r = k("apply", "-f", "-", input=json.dumps(bad), check=False)
    assert r.returncode != 0
    assert 'admission webhook "bpfprograms.bpfglobals.io" denied the request' in r.stderr
    assert "variable 'drop_port' (const volatile __u16 in .rodata): 70000" in r.stderr
    stored = json.loads(k("get", "bpfprogram", "xdp-drop", "-o", "json").stdout)
    assert stored["spec"]["globals"]["drop_port"] == PORT


def wait_connected(k: Kubectl, pod: dict, objects: int) -> None:
    """Until the agent says it listed its node's objects (/healthz answers a little earlier)."""
    line = f"connected: {objects} program(s)"
    name = pod["metadata"]["name"]
    wait_for(line, lambda: line in k("logs", "-n", NS, name).stdout, 60)


def helm_upgrade(info: ClusterInfo, tag: str) -> None:
    helm(info, "upgrade", RELEASE, str(CHART), "-n", NS, "--reuse-values", f"--set=image.tag={tag}")


def rollout(info: ClusterInfo, k: Kubectl, image: str) -> None:
    helm_upgrade(info, image.rsplit(":", 1)[1])
    wait_for("the upgraded agent Ready", lambda: agent_ready(k, image), 180)


def test_helm_upgrade_restarts_the_agent_and_the_port_stays_dropped(
    node, k, images, program, veth
) -> None:
    info = node[1]
    before_pod = agent_ready(k)
    before = status(k)
    start = time.monotonic()
    assert_all_dropped(program, veth, lambda: rollout(info, k, images["upgrade"]))
    timed("helm upgrade -> new agent Ready (s)", start)
    after_pod = agent_ready(k, images["upgrade"])
    assert after_pod["metadata"]["uid"] != before_pod["metadata"]["uid"]  # restarted
    # the new agent re-adopted the pins: same program, same link, nothing reloaded
    wait_connected(k, after_pod, 1)
    assert status(k)["programs"] == before["programs"]
    assert xdp_ids(veth) == [before["programs"][0]["id"]]


def test_agent_pod_killed_mid_rollout_is_restarted_and_readopts(
    node, k, images, program, veth
) -> None:
    info = node[1]
    before = status(k)
    old_uid = agent_ready(k)["metadata"]["uid"]

    def upgrade_and_kill() -> None:
        helm_upgrade(info, VERSION)

        def new_pod() -> dict | None:
            pods = [p for p in agent_pods(k) if p["metadata"]["uid"] != old_uid]
            return pods[0] if pods else None

        # killed as soon as the rollout created it (the rollout completes only when it is Ready)
        victim = wait_for("the rollout's new agent pod", new_pod, 60)
        k("delete", "pod", "-n", NS, victim["metadata"]["name"], "--wait=false")
        wait_for("the DaemonSet's replacement Ready", lambda: agent_ready(k, images["first"]), 180)
        replacement = agent_ready(k)
        assert replacement["metadata"]["uid"] not in (old_uid, victim["metadata"]["uid"])
        r = k("rollout", "status", "-n", NS, f"ds/{RELEASE}-agent", "--timeout=60s")
        assert "successfully rolled out" in r.stdout

    assert_all_dropped(program, veth, upgrade_and_kill)
    pod = agent_ready(k)
    wait_connected(k, pod, 1)
    assert status(k)["programs"] == before["programs"]
    assert xdp_ids(veth) == [before["programs"][0]["id"]]


def test_kubelet_stopped_and_restarted_keeps_programs_running(node, k, program, veth) -> None:
    cluster, info = node
    pod = agent_ready(k)
    prog_id = xdp_ids(veth)

    def restart_kubelet() -> None:
        cluster.stop_process(info, "kubelet")
        time.sleep(5)  # the node without its kubelet: containers and programs stay
        cluster.start_kubelet(info)
        cluster.wait_node_ready(info, 120)
        wait_for("the agent Ready again", lambda: agent_ready(k), 120)

    assert_all_dropped(program, veth, restart_kubelet)
    # the kubelet found the running container again: same pod, no restart
    after = agent_ready(k)
    assert after["metadata"]["uid"] == pod["metadata"]["uid"]
    assert (
        after["status"]["containerStatuses"][0]["restartCount"]
        == (pod["status"]["containerStatuses"][0]["restartCount"])
    )
    assert xdp_ids(veth) == prog_id


def test_helm_uninstall_leaves_the_program_pinned(node, k, program, veth) -> None:
    info = node[1]
    prog_id = xdp_ids(veth)
    helm(info, "uninstall", RELEASE, "-n", NS, "--wait", "--timeout=60s")
    wait_for("the agent pod gone", lambda: agent_pods(k) == [], 60)
    assert xdp_ids(veth) == prog_id
    assert os.path.exists(f"{program['root']}/xdp-drop/links")
    assert_all_dropped(program, veth, lambda: None)


def host_state(info: ClusterInfo) -> dict[str, object]:
    """What `up --node` put on the host, as `down` must find none of it."""
    spec = info.node
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f]
    return {
        "processes": [p for p in info.pids.values() if Path(f"/proc/{p}").exists()],
        "bridge": Path(f"/sys/class/net/{spec['bridge']}").exists(),
        "cgroups": [str(p) for p in Path("/sys/fs/cgroup").glob(f"*{spec['cgroup_root']}")],
        "mounts": [m for m in mounts if m.startswith(info.state_dir)],
        "netns": [m for m in mounts if "/netns/cni-" in m and m.startswith("/run")],
        "state dir": Path(info.state_dir).exists(),
        # the pods' veths on the bridge
        "ports": [p.name for p in Path(f"/sys/class/net/{spec['bridge']}/brif").glob("*")],
    }


def test_down_removes_containers_cgroups_mounts_and_the_bridge(node, k) -> None:
    """Last: `down` with a pod still running on the bridge (its own netns, cgroup, rootfs)."""
    cluster, info = node
    k("run", "leftover", f"--image={info.registry}/pause:1", "--restart=Never")
    wait_for(
        "a pod on the bridge Running",
        lambda: k("get", "pod", "leftover", "-o", "jsonpath={.status.phase}").stdout == "Running",
        60,
    )
    during = host_state(info)
    assert during["bridge"] and during["cgroups"] and during["mounts"] and during["processes"]
    assert during["ports"]
    netns_before = during["netns"]
    cluster.down()
    after = host_state(info)
    assert after == {
        "processes": [],
        "bridge": False,
        "cgroups": [],
        "mounts": [],
        "netns": netns_before,  # pod namespaces live under the state dir, never in /run/netns
        "state dir": False,
        "ports": [],
    }
    assert not [p for p in during["ports"] if Path(f"/sys/class/net/{p}").exists()]
