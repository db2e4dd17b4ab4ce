"""An object with kconfig externs and kfunc calls through the node core: attached to a real
interface, it counts real traffic; a .rodata change swaps in a new variant, whose .kconfig
map is filled again from the running kernel and frozen, while the counters carry over."""

from __future__ import annotations

import glob
import subprocess
import uuid

import pytest

from bpfglobals.node.manifest import parse_manifest
from bpfglobals.node.reconcile import NodeReconciler
from tests.support.bpftool import bpftool, percpu_sum
from tests.support.manifests import node_manifest
from tests.support.netns import net_pair

STAT_PASS = 0


@pytest.fixture
def root():
    path = f"/sys/fs/bpf/bgt-extnode-{uuid.uuid4().hex[:8]}"
    yield path
    subprocess.run(["rm", "-rf", path], check=False)


def test_kconfig_and_kfunc_object_runs_and_reloads_on_a_node(bpf_object, root) -> None:
    node = NodeReconciler(root)
    elf = bpf_object("corpus_ct_filter")
    with net_pair() as net:
        attach = {"xdp": {"interface": net.host_if, "mode": "generic"}}

        def apply(port: int):
            doc = node_manifest(
                "ct", elf, [{"name": "ct_filter_xdp", "attach": attach}], {"guarded_port": port}
            )
            return node.apply(parse_manifest(doc))

        first = apply(80)
        assert first.action == "created"
        sent = net.send_udp_wait(7001, 100)  # UDP: not a guarded TCP SYN, so it passes
        assert percpu_sum(f"{root}/ct/maps/stats")[STAT_PASS] == sent
        second = apply(443)
        assert second.action == "reloaded"
        sent += net.send_udp_wait(7001, 50)
        assert percpu_sum(f"{root}/ct/maps/stats")[STAT_PASS] == sent  # counters carried over
        kconfigs = sorted(glob.glob(f"{root}/ct/variants/*/maps/_kconfig"))
        assert kconfigs, "each variant pins its own .kconfig map"
        shown = bpftool("map", "show", "pinned", kconfigs[-1])
        assert shown["name"] == "corpus_.kconfig" and shown["frozen"] == 1
        assert shown["flags"] == 0x480
        prog = second.status.programs[0].id
        assert shown["id"] in bpftool("prog", "show", "id", str(prog))["map_ids"]
