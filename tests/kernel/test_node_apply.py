"""The node core on real interfaces: veth pairs across network namespaces, real traffic."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from bpfglobals.attach.targets import AttachError
from bpfglobals.errors import ValueEncodingError
from bpfglobals.kernel.objects import link_info, obj_get, prog_info
from bpfglobals.kernel.progs import prog_test_run
from bpfglobals.loader import VerifierError
from bpfglobals.node.manifest import parse_manifest
from bpfglobals.node.reconcile import NodeReconciler
from tests.support.bpftool import bpftool, percpu_sum, section_vars
from tests.support.manifests import node_manifest
from tests.support.netns import net_pair

CLI = str(Path(sys.executable).parent / "bpfglobals")
XDP_DROP, XDP_PASS = 1, 2


@pytest.fixture
def root(node_root):
    return node_root


@pytest.fixture
def net():
    with net_pair() as n:
        yield n


def manifest(name: str, elf: Path, program: str, attach: dict, globals_: dict) -> dict:
    return node_manifest(name, elf, [{"name": program, "attach": attach}], globals_)


def receive_count(net, port: int, count: int) -> int:
    """Send `count` datagrams from the namespace and count what a socket here receives."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((net.host_ip, port))
        s.settimeout(0.5)
        net.send_udp_wait(port, count)
        got = 0
        with contextlib.suppress(TimeoutError):
            while got < count:
                s.recv(64)
                got += 1
        return got


def xdp_on(dev: str) -> list[int]:
    shown = bpftool("net", "show", "dev", dev)[0]["xdp"]
    return [x["id"] for x in shown]


def test_xdp_filter_drops_the_configured_port(bpf_object, root, net) -> None:
    node = NodeReconciler(root)
    elf = bpf_object("examples/xdp_drop.bpf.c")
    m = manifest(
        "drop",
        elf,
        "xdp_drop",
        {"xdp": {"interface": net.host_if, "mode": "generic"}},
        {"drop_port": 7001},
    )
    result = node.apply(parse_manifest(m))
    assert result.action == "created"
    status = result.status
    assert xdp_on(net.host_if) == [status.programs[0].id]
    # real traffic from the namespace: port 7001 dropped, 7002 passes
    sent_drop = net.send_udp_wait(7001, 300)
    sent_pass = net.send_udp_wait(7002, 200)
    stats = percpu_sum(f"{root}/drop/maps/stats")
    assert stats == {0: sent_pass, 1: sent_drop}
    # the .bss variable the program writes: the peer's address, in network order
    bss = section_vars(f"{root}/drop/maps/_bss", ".bss")
    assert bss["last_dropped_saddr"] == int.from_bytes(
        bytes(int(x) for x in net.peer_ip.split(".")), "little"
    )


def test_get_json_shape_and_delete_detaches(bpf_object, root, net, tmp_path) -> None:
    elf = bpf_object("examples/xdp_drop.bpf.c")
    doc = manifest(
        "shape",
        elf,
        "xdp_drop",
        {"xdp": {"interface": net.host_if, "mode": "generic"}},
        {"drop_port": 53},
    )
    f = tmp_path / "shape.yaml"
    f.write_text(json.dumps(doc))
    if True:
        r = subprocess.run(
            [CLI, "apply", "-f", str(f), "--bpffs-root", root], capture_output=True, text=True
        )
        assert r.returncode == 0 and "bpfprogram/shape created" in r.stdout, r.stderr
        r = subprocess.run(
            [CLI, "get", "shape", "-o", "json", "--bpffs-root", root],
            capture_output=True,
            text=True,
        )
        got = json.loads(r.stdout)
        assert got["name"] == "shape" and got["globals"] == {"drop_port": 53}
        prog = got["programs"][0]
        assert {"name", "id", "tag", "links"} <= set(prog)
        link = prog["links"][0]
        assert bpftool("link", "show", "id", str(link["id"]))["prog_id"] == prog["id"]
        assert (link["type"], link["target"]) == ("xdp", f"{net.host_if} (generic)")
        assert {"xdp_drop.rodata", "xdp_drop.bss", "stats"} <= set(got["maps"])
        assert bpftool("map", "show", "id", str(got["maps"]["stats"]))["name"] == "stats"
        table = subprocess.run(
            [CLI, "get", "--bpffs-root", root], capture_output=True, text=True
        ).stdout
        assert table.split()[:5] == ["NAME", "PROGRAM", "PROG", "ID", "LINKS"]
        r = subprocess.run(
            [CLI, "delete", "shape", "--bpffs-root", root], capture_output=True, text=True
        )
        assert r.returncode == 0
        assert xdp_on(net.host_if) == [] and not os.path.exists(f"{root}/shape")
        with pytest.raises(subprocess.CalledProcessError):
            bpftool("link", "show", "id", str(link["id"]))


def test_zero_loss_under_200_replacements(bpf_object, root, net) -> None:
    node = NodeReconciler(root)
    elf = bpf_object("examples/xdp_drop.bpf.c")
    attach = {"xdp": {"interface": net.host_if, "mode": "generic"}}
    first = node.apply(parse_manifest(manifest("zl", elf, "xdp_drop", attach, {"drop_port": 1})))
    link_id = first.status.programs[0].links[0].id
    backlog = Path("/proc/sys/net/core/netdev_max_backlog")
    old_backlog = backlog.read_text()
    backlog.write_text("100000")
    try:
        total = 100_000
        sender = net.send_udp(9000, total, pace=64)
        prog_ids = set()
        swaps = 0
        while swaps < 200 or sender.poll() is None:
            port = 9000 if swaps % 2 == 0 else 1
            res = node.apply(
                parse_manifest(manifest("zl", elf, "xdp_drop", attach, {"drop_port": port}))
            )
            assert res.action == "reloaded"
            p = res.status.programs[0]
            assert p.links[0].id == link_id  # the link stays; the program changes
            prog_ids.add(p.id)
            # the new behaviour is what the link runs now
            with obj_get(f"{root}/zl/links/{os.listdir(f'{root}/zl/links')[0]}") as link:
                assert link_info(link).prog_id == p.id
            with obj_get(
                f"{root}/zl/variants/{res.status.extra['variant']}/programs/xdp_drop"
            ) as fd:
                from examples.packet import frame

                want = XDP_DROP if port == 9000 else XDP_PASS
                assert prog_test_run(fd, frame("udp", 9000)).retval == want
            swaps += 1
            if swaps > 5000:
                break
        out, err = sender.communicate(timeout=60)
        assert int(out) == total, err
    finally:
        backlog.write_text(old_backlog)
    stats = percpu_sum(f"{root}/zl/maps/stats")
    # every packet counted by exactly one variant (plus the one test run after each swap,
    # which runs the same program and so counts too)
    assert stats[0] + stats[1] == total + swaps
    assert stats[0] > 0 and stats[1] > 0  # both behaviours saw traffic: swaps during the stream
    assert swaps >= 200 and len(prog_ids) == swaps
    assert len(os.listdir(f"{root}/zl/variants")) == 1  # old variants released


def test_data_change_is_live_same_program(bpf_object, root, net) -> None:
    node = NodeReconciler(root)
    elf = bpf_object("live")
    attach = {"xdp": {"interface": net.host_if, "mode": "generic"}}
    a = node.apply(parse_manifest(manifest("live", elf, "live_xdp", attach, {"verdict": 2})))
    net.send_udp_wait(7000, 50)
    b = node.apply(parse_manifest(manifest("live", elf, "live_xdp", attach, {"verdict": 1})))
    assert b.action == "updated-live"
    assert b.status.programs[0].id == a.status.programs[0].id
    net.send_udp_wait(7000, 30)
    counts = percpu_sum(f"{root}/live/maps/verdicts")
    assert (counts[2], counts[1]) == (50, 30)
    # .bss state survives a .rodata change (new variant), and so do the user map's counters
    c = node.apply(
        parse_manifest(
            manifest("live", elf, "live_xdp", attach, {"verdict": 1, "forced_verdict": 2})
        )
    )
    assert c.action == "reloaded" and c.status.programs[0].id != a.status.programs[0].id
    net.send_udp_wait(7000, 20)
    counts = percpu_sum(f"{root}/live/maps/verdicts")
    assert (counts[2], counts[1]) == (70, 30)
    assert section_vars(f"{root}/live/maps/_bss", ".bss")["seen"] == 100


def test_failure_keeps_the_old_program(bpf_object, root, net) -> None:
    node = NodeReconciler(root)
    elf = bpf_object("prune")
    attach = {"xdp": {"interface": net.host_if, "mode": "generic"}}
    ok = node.apply(parse_manifest(manifest("keep", elf, "guarded", attach, {"answer": 2})))
    running = ok.status.programs[0].id
    with pytest.raises(VerifierError, match="rejected by the verifier") as e:
        node.apply(parse_manifest(manifest("keep", elf, "guarded", attach, {"unsafe_path": True})))
    assert "invalid access to packet" in e.value.log
    with pytest.raises(ValueEncodingError, match="answer"):
        node.apply(parse_manifest(manifest("keep", elf, "guarded", attach, {"answer": -1})))
    with pytest.raises(AttachError, match="no network interface"):
        node.apply(
            parse_manifest(
                manifest(
                    "keep",
                    elf,
                    "guarded",
                    {"xdp": {"interface": "nope0", "mode": "generic"}},
                    {"answer": 3},
                )
            )
        )
    assert xdp_on(net.host_if) == [running]
    assert node.get("keep").programs[0].id == running
    assert os.listdir(f"{root}/keep/variants") == [str(ok.status.extra["variant"])]
    assert net.send_udp_wait(7000, 10) == 10  # still passing (answer 2 = XDP_PASS)


CRASHER = textwrap.dedent("""
    import json, os, signal, sys
    from bpfglobals.node import reconcile
    from bpfglobals.node.manifest import parse_manifest
    root, where, doc = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    def die(*a, **k):
        os.kill(os.getpid(), signal.SIGKILL)
    if where == "before-swap":
        reconcile.NodeReconciler._attach_or_swap = die
    elif where == "before-record":
        reconcile.write_record = die
    reconcile.NodeReconciler(root).apply(parse_manifest(doc))
""")


@pytest.mark.parametrize("where", ["before-swap", "before-record"])
@pytest.mark.parametrize("first_time", [True, False])
def test_sigkill_mid_apply_then_rerun_converges(bpf_object, root, net, where, first_time) -> None:
    elf = bpf_object("examples/xdp_drop.bpf.c")
    attach = {"xdp": {"interface": net.host_if, "mode": "generic"}}
    node = NodeReconciler(root)
    if not first_time:
        node.apply(parse_manifest(manifest("rs", elf, "xdp_drop", attach, {"drop_port": 1})))
    doc = manifest("rs", elf, "xdp_drop", attach, {"drop_port": 2})
    r = subprocess.run(
        [sys.executable, "-c", CRASHER, root, where, json.dumps(doc)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == -9, r.stderr
    result = node.apply(parse_manifest(doc))
    again = node.apply(parse_manifest(doc))
    assert again.action == "unchanged"
    prog = result.status.programs[0]
    assert xdp_on(net.host_if) == [prog.id]  # attached once, running the desired variant
    assert len(os.listdir(f"{root}/rs/links")) == 1
    assert os.listdir(f"{root}/rs/variants") == [str(result.status.extra["variant"])]
    with obj_get(f"{root}/rs/variants/{result.status.extra['variant']}/programs/xdp_drop") as fd:
        assert prog_info(fd)[0].id == prog.id
    # no leaked programs: every xdp_drop program in the kernel is ours and attached
    leaked = [
        p
        for p in bpftool("prog", "show")
        if p.get("name") == "xdp_drop" and p["id"] != prog.id and p.get("pinned")
    ]
    assert leaked == []


def test_tcx_and_cgroup_attach(bpf_object, root, net) -> None:
    node = NodeReconciler(root)
    elf = bpf_object("live")
    tcx_attach = {"tcx": {"interface": net.host_if, "direction": "ingress"}}
    tcx = node.apply(parse_manifest(manifest("tcx", elf, "tcx_pass", tcx_attach, {})))
    link = tcx.status.programs[0].links[0]
    shown = bpftool("link", "show", "id", str(link.id))  # bpftool 7.1 prints tcx as type 11
    assert (shown["type"], shown["prog_id"]) == (11, tcx.status.programs[0].id)
    assert receive_count(net, 7100, 20) == 20  # TC_ACT_OK: delivered
    node.apply(parse_manifest(manifest("tcx", elf, "tcx_pass", tcx_attach, {"forced_verdict": 1})))
    assert receive_count(net, 7100, 20) == 0  # TC_ACT_SHOT: dropped at tcx ingress
    node.delete("tcx")
    cg = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
    path = os.path.join(cg, f"bgt-{uuid.uuid4().hex[:6]}")
    os.mkdir(path)
    try:
        res = node.apply(
            parse_manifest(
                manifest(
                    "cg",
                    elf,
                    "cg_ingress",
                    {"cgroup": {"path": path, "type": "cgroup_skb/ingress"}},
                    {},
                )
            )
        )
        shown = bpftool("cgroup", "show", path)
        assert [p["id"] for p in shown] == [res.status.programs[0].id]
        with pytest.raises(AttachError, match="needs a cgroup_skb program"):
            node.apply(
                parse_manifest(
                    manifest(
                        "cg2",
                        elf,
                        "live_xdp",
                        {"cgroup": {"path": path, "type": "cgroup_skb/ingress"}},
                        {},
                    )
                )
            )
        node.delete("cg")
        assert bpftool("cgroup", "show", path) in ([], None)
    finally:
        node.delete("cg")
        os.rmdir(path)


def test_gc_removes_what_no_manifest_owns(bpf_object, root, net) -> None:
    node = NodeReconciler(root)
    elf = bpf_object("examples/xdp_drop.bpf.c")
    node.apply(
        parse_manifest(
            manifest(
                "a", elf, "xdp_drop", {"xdp": {"interface": net.host_if, "mode": "generic"}}, {}
            )
        )
    )
    assert node.names() == ["a"]
    assert node.gc({"a"}) == []
    assert node.gc(set()) == ["a"]
    assert node.names() == [] and xdp_on(net.host_if) == []


def test_attach_point_change_moves_the_running_program(bpf_object, root) -> None:
    node = NodeReconciler(root)
    elf = bpf_object("live")
    cg = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
    a, b = (os.path.join(cg, f"bgt-{uuid.uuid4().hex[:6]}") for _ in range(2))
    os.mkdir(a)
    os.mkdir(b)
    try:

        def at(path: str) -> dict:
            attach = {"cgroup": {"path": path, "type": "cgroup_skb/ingress"}}
            return manifest("mv", elf, "cg_ingress", attach, {})

        first = node.apply(parse_manifest(at(a)))
        moved = node.apply(parse_manifest(at(b)))
        prog = moved.status.programs[0].id
        assert moved.action == "reattached" and prog == first.status.programs[0].id
        assert [p["id"] for p in bpftool("cgroup", "show", b)] == [prog]
        assert bpftool("cgroup", "show", a) in ([], None)  # the old link went with its pin
        # a link removed behind our back is put back on the next apply, same program
        os.unlink(f"{root}/mv/links/{os.listdir(f'{root}/mv/links')[0]}")
        again = node.apply(parse_manifest(at(b)))
        assert again.action == "reattached" and again.status.programs[0].id == prog
        assert [p["id"] for p in bpftool("cgroup", "show", b)] == [prog]
        assert node.apply(parse_manifest(at(b))).action == "unchanged"
    finally:
        node.delete("mv")
        os.rmdir(a)
        os.rmdir(b)


def test_a_failure_after_the_first_swap_undoes_every_step(bpf_object, root, net) -> None:
    """The apply transaction: the second link's swap fails (an injected ENOMEM), so the first
    swap is swapped back, the live .data write restored, the new variant removed."""
    import errno

    from bpfglobals.kernel.constants import Cmd
    from bpfglobals.kernel.syscall import inject_fault

    node = NodeReconciler(root)
    elf = bpf_object("live")
    programs = [
        {"name": "live_xdp", "attach": {"xdp": {"interface": net.host_if, "mode": "generic"}}},
        {"name": "tcx_pass", "attach": {"tcx": {"interface": net.host_if}}},
    ]
    first = node.apply(parse_manifest(node_manifest("tx", elf, programs, {"verdict": 2})))
    running = {p.name: p.id for p in first.status.programs}
    wanted = parse_manifest(node_manifest("tx", elf, programs, {"verdict": 1, "forced_verdict": 2}))
    with inject_fault(Cmd.LINK_UPDATE, errno.ENOMEM, after=1), pytest.raises(AttachError):
        node.apply(wanted)
    for p in node.get("tx").programs:  # what the links run, read back from the kernel
        assert bpftool("link", "show", "id", str(p.links[0].id))["prog_id"] == running[p.name]
    assert section_vars(f"{root}/tx/maps/_data", ".data")["verdict"] == 2  # restored
    assert os.listdir(f"{root}/tx/variants") == [str(first.status.extra["variant"])]
    assert node.get("tx").globals == {"verdict": 2}
    again = node.apply(wanted)  # without the fault the same change goes through
    assert again.action == "reloaded"
    assert all(p.id != running[p.name] for p in again.status.programs)
    assert section_vars(f"{root}/tx/maps/_data", ".data")["verdict"] == 1
