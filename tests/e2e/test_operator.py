"""End to end: the operator and three node agents (separate processes, each a simulated node
with its own Node object, bpffs root and network namespace) on a real apiserver and kernel."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from bpfglobals.devcluster.cluster import free_port
from tests.support.bpftool import bpftool, percpu_sum, section_vars
from tests.support.node_view import program_on_nodes
from tests.support.stack import Stack, running_stack, wait_for
from tests.support.tcp_proxy import TcpProxy

NODES = 3


@pytest.fixture(scope="module")
def stack(control_plane, kubectl, tmp_path_factory, bpf_object):
    # without its webhook: these tests show the status-side validation (the backstop when the
    # webhook could not check an object; tests/e2e/test_webhook.py has the rest)
    with running_stack(
        control_plane,
        kubectl,
        tmp_path_factory.mktemp("stack"),
        NODES,
        operator_flags=("--no-webhook",),
    ) as s:
        s.elf_sha = s.publish_elf("xdp-drop", bpf_object("examples/xdp_drop.bpf.c"))
        s.prune_sha = s.publish_elf("prune", bpf_object("prune"))
        yield s


def cluster_program(
    stack: Stack,
    name: str,
    config_map: str,
    sha: str,
    programs: list[dict],
    globals_: dict,
    max_unavailable: int | str = 1,
) -> dict:
    """A BpfProgram whose ELF is key `config_map`.bpf.o of ConfigMap `config_map`-TAG,
    selecting this stack's nodes."""
    return {
        "apiVersion": "bpfglobals.io/v1alpha1",
        "kind": "BpfProgram",
        "metadata": {"name": name},
        "spec": {
            "elf": {
                "configMap": {
                    "namespace": "default",
                    "name": f"{config_map}-{stack.tag}",
                    "key": f"{config_map.replace('-', '_')}.bpf.o",
                },
                "sha256": sha,
            },
            "programs": programs,
            "globals": globals_,
            "nodeSelector": {"bpfglobals.io/e2e": stack.tag},
            "rollout": {"maxUnavailable": max_unavailable},
        },
    }


def xdp_drop(
    stack: Stack, name: str, globals_: dict, max_unavailable: int = 1, sha: str | None = None
) -> dict:
    xdp = {"xdp": {"interface": "bpfg0", "mode": "generic"}}
    return cluster_program(
        stack,
        name,
        "xdp-drop",
        sha or stack.elf_sha,
        [{"name": "xdp_drop", "attach": xdp}],
        globals_,
        max_unavailable,
    )


def node_status(prog: dict) -> dict[str, dict]:
    return {n["nodeName"]: n for n in prog["status"]["nodes"]}


def xdp_ids(net) -> list[int]:
    """bpftool's view of the XDP programs on the node's interface (inside its namespace)."""
    shown = subprocess.run(
        ["ip", "netns", "exec", net.host_ns, "bpftool", "-j", "net", "show", "dev", net.host_if],
        capture_output=True,
        text=True,
        check=True,
    )
    return [x["id"] for x in json.loads(shown.stdout)[0]["xdp"]]


def stats(root: str, program: str) -> dict[int, int]:
    return percpu_sum(f"{root}/{program}/maps/stats")


def test_apply_rolls_out_to_every_node(stack) -> None:
    stack.apply(xdp_drop(stack, "web", {"drop_port": 7001}))
    stack.kubectl("wait", "--for=condition=Ready", "bpfprogram/web", "--timeout=90s")
    table = stack.kubectl("get", "bpfprograms", "web").stdout.split()
    assert table[:5] == ["NAME", "PHASE", "READY", "CONFIG", "AGE"]
    assert table[5:8] == ["web", "Ready", f"{NODES}/{NODES}"], stack.logs()
    prog = stack.program("web")
    nodes = node_status(prog)
    assert set(nodes) == set(stack.nodes)
    for node, n in stack.nodes.items():
        st = nodes[node]
        # the map IDs in status are the node's real maps, per bpftool
        for pin, kernel_name in (("maps/stats", "stats"), ("maps/_bss", "xdp_drop.bss")):
            shown = bpftool("map", "show", "pinned", f"{n['root']}/web/{pin}")
            assert st["maps"][kernel_name] == shown["id"]
        assert xdp_ids(n["net"]) == [st["programs"][0]["id"]]
        # the configured value is in the node's frozen .rodata map
        variant = max(os.listdir(f"{n['root']}/web/variants"))
        rodata = f"{n['root']}/web/variants/{variant}/maps/_rodata"
        assert section_vars(rodata, ".rodata")["drop_port"] == 7001
        assert (
            st["maps"]["xdp_drop.rodata"]
            == bpftool("map", "show", "pinned", f"{n['root']}/web/variants/{variant}/maps/_rodata")[
                "id"
            ]
        )
        # and the program filters real traffic on that node
        sent = n["net"].send_udp_wait(7001, 100)
        assert stats(n["root"], "web")[1] == sent
    cond = {c["type"]: c for c in prog["status"]["conditions"]}
    assert cond["Ready"]["status"] == "True"
    assert cond["Ready"]["observedGeneration"] == prog["metadata"]["generation"]
    assert cond["Reconciling"]["status"] == cond["Stalled"]["status"] == "False"  # kstatus: Current


def test_rodata_change_rolls_one_node_at_a_time(stack) -> None:
    before = node_status(stack.program("web"))
    net0 = stack.nodes[sorted(stack.nodes)[0]]
    before_count = sum(stats(net0["root"], "web").values())
    sender = net0["net"].send_udp(8000, 20000, pace=32)
    stack.apply(xdp_drop(stack, "web", {"drop_port": 7002}))
    generation = stack.program("web")["metadata"]["generation"]
    max_in_flight, saw_partial = 0, False
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        view = program_on_nodes(stack.kubectl, "web")
        desired = stack.program("web")["status"].get("configHash")
        specs = [v.asked for v in view.values()]
        done = [v for v in view.values() if v.running == v.asked and v.phase == "Ready"]
        in_flight = len(view) - len(done)
        max_in_flight = max(max_in_flight, in_flight)
        saw_partial |= len(set(specs)) > 1
        st = stack.program("web").get("status") or {}
        if (
            st.get("observedGeneration") == generation
            and st.get("phase") == "Ready"
            and all(s == desired for s in specs)
        ):
            break
        time.sleep(0.05)
    stack.wait_ready("web", generation)
    assert max_in_flight <= 1
    assert saw_partial  # some nodes had the new spec while others still had the old one
    after = node_status(stack.program("web"))
    for node in stack.nodes:
        old, new = before[node]["programs"][0], after[node]["programs"][0]
        assert new["id"] != old["id"]  # a new variant
        assert new["links"][0]["id"] == old["links"][0]["id"]  # the same link
    out, _ = sender.communicate(timeout=60)
    counted = sum(stats(net0["root"], "web").values()) - before_count
    assert counted == int(out)  # traffic never interrupted: every packet seen by a variant


def test_data_change_keeps_programs(stack) -> None:
    before = node_status(stack.program("web"))
    stack.apply(xdp_drop(stack, "web", {"drop_port": 7002, "log_level": 2}))
    generation = stack.program("web")["metadata"]["generation"]
    stack.wait_ready("web", generation)
    after = node_status(stack.program("web"))
    for node in stack.nodes:
        assert after[node]["programs"][0]["id"] == before[node]["programs"][0]["id"]


def events_for(stack: Stack, name: str) -> str:
    return stack.kubectl(
        "get", "events", "-A", "--field-selector", f"involvedObject.name={name}", "-o", "json"
    ).stdout


@pytest.mark.parametrize(
    ("globals_", "sha", "cause"),
    [
        ({"drop_prot": 1}, None, "no global variable 'drop_prot'"),
        ({"drop_port": 70000}, None, "70000 is out of range"),
        ({"drop_port": 7003}, "0" * 64, "sha256 mismatch"),
    ],
)
def test_bad_input_is_reported_and_the_old_config_keeps_running(
    stack, globals_, sha, cause
) -> None:
    running = node_status(stack.program("web"))
    stack.apply(xdp_drop(stack, "web", globals_, sha=sha))
    generation = stack.program("web")["metadata"]["generation"]

    def degraded():
        st = stack.program("web").get("status") or {}
        return (
            st
            if st.get("observedGeneration") == generation and st.get("phase") == "Degraded"
            else None
        )

    st = wait_for("Degraded", degraded)
    cond = {c["type"]: c for c in st["conditions"]}
    assert cond["Ready"]["status"] == "False" and cause in cond["Degraded"]["message"]
    assert cond["Stalled"]["status"] == "True"  # kstatus: Failed
    assert cause in events_for(stack, "web")
    for node, n in node_status(stack.program("web")).items():
        assert n["programs"][0]["id"] == running[node]["programs"][0]["id"]
    stack.apply(xdp_drop(stack, "web", {"drop_port": 7002, "log_level": 2}))
    stack.wait_ready("web", stack.program("web")["metadata"]["generation"])


def wait_degraded(stack: Stack, name: str) -> dict:
    """The status once the operator has judged the current generation Degraded."""
    generation = stack.program(name)["metadata"]["generation"]

    def degraded():
        st = stack.program(name).get("status") or {}
        return (
            st
            if st.get("observedGeneration") == generation and st.get("phase") == "Degraded"
            else None
        )

    return wait_for(f"{name} Degraded", degraded)


def test_verifier_rejection_stops_the_rollout(stack) -> None:
    tcx = {"tcx": {"interface": "bpfg0", "direction": "ingress"}}
    doc = cluster_program(
        stack,
        "guard",
        "prune",
        stack.prune_sha,
        [{"name": "guarded", "attach": tcx}],
        {"answer": 1},
    )
    # guarded is an XDP program: attaching it with tcx is refused on the node
    stack.apply(doc)
    st = wait_degraded(stack, "guard")
    assert "tcx attach needs" in st["message"], (st, stack.logs())
    doc["spec"]["programs"][0]["attach"] = {"xdp": {"interface": "lo", "mode": "generic"}}
    stack.apply(doc)
    ok = stack.wait_ready("guard", stack.program("guard")["metadata"]["generation"])
    running = {n["nodeName"]: n["programs"][0]["id"] for n in ok["nodes"]}
    doc["spec"]["globals"] = {"unsafe_path": True}
    stack.apply(doc)
    st = wait_degraded(stack, "guard")
    assert "rejected by the verifier" in st["message"], (st, stack.logs())
    time.sleep(2)  # the rollout must not go on to other nodes
    view = program_on_nodes(stack.kubectl, "guard")
    phases = sorted(v.phase or "" for v in view.values())
    assert phases == ["Failed", "Ready", "Ready"], (view, stack.logs())
    for n in stack.program("guard")["status"]["nodes"]:
        assert n["programs"][0]["id"] == running[n["nodeName"]]  # old variant still runs
    stack.kubectl("delete", "bpfprogram", "guard", "--timeout=60s")


def test_selection_follows_node_labels(stack) -> None:
    """Unlabel a node: it leaves the selection, its agent detaches; label it again: back."""
    node = sorted(stack.nodes)[0]
    n = stack.nodes[node]

    def ready_on(count: int):
        st = stack.program("web").get("status") or {}
        return st if st.get("phase") == "Ready" and st["readyNodes"] == f"{count}/{count}" else None

    stack.kubectl("label", "node", node, "bpfglobals.io/e2e-")
    try:
        st = wait_for("the node deselected", lambda: ready_on(NODES - 1))
        assert node not in {x["nodeName"] for x in st["nodes"]}
        wait_for("detached", lambda: not os.path.exists(f"{n['root']}/web"))
        assert xdp_ids(n["net"]) == []
    finally:
        stack.kubectl("label", "node", node, f"bpfglobals.io/e2e={stack.tag}")
    st = wait_for("the node selected again", lambda: ready_on(NODES))
    assert xdp_ids(n["net"]) == [node_status(stack.program("web"))[node]["programs"][0]["id"]]


def test_apiserver_outage_keeps_programs_running(stack) -> None:
    """One agent loses the apiserver (its connections reset, new ones refused): its programs
    keep filtering traffic, it stays up and healthy, and a change made meanwhile lands when the
    apiserver is back."""
    node = sorted(stack.nodes)[2]
    n = stack.nodes[node]
    server = urlsplit(stack.cp.server)
    proxy = TcpProxy((server.hostname, server.port)).start()
    stack.on_close(proxy.cut)
    config = yaml.safe_load(Path(stack.cp.kubeconfig).read_text())
    for c in config["clusters"]:
        c["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    kubeconfig = stack.tmp / f"kubeconfig-{node}"
    kubeconfig.write_text(yaml.safe_dump(config))
    health = free_port()
    attached = xdp_ids(n["net"])
    stack.stop(node)  # SIGTERM, as kubelet does: a graceful stop leaves the programs attached
    assert xdp_ids(n["net"]) == attached != []
    stack.start_agent(node, kubeconfig=str(kubeconfig), health_port=health)
    stack.wait_ready("web")
    running = node_status(stack.program("web"))[node]["programs"]
    bss_pin = f"{n['root']}/web/maps/_bss"  # `log_level = 0` in C: a .bss variable
    assert section_vars(bss_pin, ".bss")["log_level"] == 2

    proxy.cut()
    stack.apply(xdp_drop(stack, "web", {"drop_port": 7002, "log_level": 3}))
    generation = stack.program("web")["metadata"]["generation"]

    def handed_to_the_node():
        on = program_on_nodes(stack.kubectl, "web")[node]
        return on.asked != on.running

    wait_for("the change handed to the cut-off node", handed_to_the_node)
    time.sleep(3)
    assert stack.procs[node].poll() is None, stack.logs()  # the agent did not give up
    with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=5) as r:
        assert r.status == 200  # kubelet would not restart it
    assert handed_to_the_node()  # it could not see the change...
    before = stats(n["root"], "web").get(1, 0)
    sent = n["net"].send_udp_wait(7002, 100)
    assert stats(n["root"], "web")[1] - before == sent  # ...and its program kept dropping
    assert section_vars(bss_pin, ".bss")["log_level"] == 2
    assert stack.program("web")["status"]["phase"] != "Ready"

    proxy.start()  # the apiserver is back: the agent relists and catches up
    stack.wait_ready("web", generation)
    assert node_status(stack.program("web"))[node]["programs"] == running  # live .bss update
    assert section_vars(bss_pin, ".bss")["log_level"] == 3


def test_agent_restart_readopts_without_double_attach(stack) -> None:
    node = sorted(stack.nodes)[1]
    n = stack.nodes[node]
    before = node_status(stack.program("web"))[node]
    stack.stop(node, sig=9)
    stack.start_agent(node)
    time.sleep(3)
    stack.wait_ready("web")
    after = node_status(stack.program("web"))[node]
    assert after["programs"] == before["programs"]  # same program, same link
    assert len(os.listdir(f"{n['root']}/web/links")) == 1
    assert len(os.listdir(f"{n['root']}/web/variants")) == 1


def test_tracing_programs_roll_out_and_swap(stack, bpf_object) -> None:
    """Tracing hooks through the cluster path: every node counts this process's getpid()
    calls in its own .bss; a .rodata change replaces every node's links."""
    elf = bpf_object("examples/syscall_count.bpf.c")
    stack.kubectl(
        "create",
        "configmap",
        f"syscall-count-{stack.tag}",
        "-n",
        "default",
        f"--from-file=syscall_count.bpf.o={elf}",
    )
    programs = [
        {"name": "count_tp", "attach": {"tracing": {}}},
        {"name": "count_raw", "attach": {"tracing": {"target": "sys_enter"}}},
    ]
    sha = hashlib.sha256(elf.read_bytes()).hexdigest()
    doc = cluster_program(
        stack, "count", "syscall-count", sha, programs, {"target_tgid": os.getpid()}, "100%"
    )
    both = json.loads(json.dumps(doc))
    both["spec"]["programs"][0]["attach"]["xdp"] = {"interface": "bpfg0"}
    refused = stack.kubectl("apply", "-f", "-", input=yaml.safe_dump(both), check=False)
    assert refused.returncode != 0 and "exactly one of attach.xdp" in refused.stderr

    stack.apply(doc)
    stack.wait_ready("count", stack.program("count")["metadata"]["generation"])
    first = node_status(stack.program("count"))
    for _ in range(100):
        os.getpid()
    for node, n in stack.nodes.items():
        hits = section_vars(f"{n['root']}/count/maps/_bss", ".bss")
        assert hits["tp_hits"] >= 100 and hits["raw_hits"] >= 100, (node, hits)
        links = [link["type"] for p in first[node]["programs"] for link in p["links"]]
        assert sorted(links) == ["perf_event", "raw_tracepoint"]

    doc["spec"]["globals"]["syscall_nr"] = 110  # a .rodata change: new variant, new links
    stack.apply(doc)
    stack.wait_ready("count", stack.program("count")["metadata"]["generation"])
    second = node_status(stack.program("count"))
    live = {link["id"] for link in bpftool("link", "show")}
    for node in stack.nodes:
        old = {link["id"] for p in first[node]["programs"] for link in p["links"]}
        new = {link["id"] for p in second[node]["programs"] for link in p["links"]}
        assert new <= live and not old & live, node
    stack.kubectl("delete", "bpfprogram", "count", "--timeout=60s")
    for n in stack.nodes.values():
        assert not os.path.exists(f"{n['root']}/count")


def test_delete_detaches_everywhere(stack) -> None:
    stack.kubectl("delete", "bpfprogram", "web", "--timeout=60s")
    assert stack.kubectl("get", "bpfprogramnodes", "-o", "name").stdout.strip() == ""
    assert stack.kubectl("get", "bpfnodes", "-o", "name").stdout.strip() == ""
    for n in stack.nodes.values():
        assert not os.path.exists(f"{n['root']}/web")
        assert xdp_ids(n["net"]) == []
