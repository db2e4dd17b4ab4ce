"""The node core with the map kinds libbpf makes: prog arrays belong to one variant (their
slots hold that variant's programs), other user maps are taken over by the next variant."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from bpfglobals.kernel.objects import fd_by_id, obj_get, prog_info
from bpfglobals.kernel.progs import prog_test_run
from bpfglobals.node.layout import Layout
from bpfglobals.node.manifest import parse_manifest
from bpfglobals.node.reconcile import NodeReconciler
from tests.support.libbpf_load import fd_slots, slot_ids
from tests.support.manifests import node_manifest
from tests.support.netns import net_pair

XDP_DROP, XDP_PASS, XDP_TX = 1, 2, 3


@pytest.fixture
def root():
    path = f"/sys/fs/bpf/bgt-node-{uuid.uuid4().hex[:8]}"
    yield path
    subprocess.run(["rm", "-rf", path], check=False)


def _variant_prog_ids(lay: Layout, n: int) -> dict[str, int]:
    d = os.path.join(lay.variant(n), "programs")
    out = {}
    for name in os.listdir(d):
        with obj_get(os.path.join(d, name)) as fd:
            out[name] = prog_info(fd)[0].id
    return out


def test_each_variant_has_its_own_prog_array_holding_its_own_programs(bpf_object, root) -> None:
    node = NodeReconciler(root)
    elf = bpf_object("maps_tail_calls")
    lay = Layout(root, "tails")
    with net_pair() as net:
        attach = {"xdp": {"interface": net.host_if, "mode": "generic"}}

        def apply(start: int):
            programs = [{"name": "dispatch", "attach": attach}]
            m = node_manifest("tails", elf, programs, {"start_slot": start})
            return node.apply(parse_manifest(m))

        first = apply(0)
        (v1,) = lay.variant_numbers()
        table1 = first.status.maps["jmp_table"]
        # the tail-call targets were loaded with the attached program, and the slots hold them
        progs1 = _variant_prog_ids(lay, v1)
        assert fd_slots(table1) == {0: "tail_tx", 2: "tail_drop"}
        assert slot_ids(table1) == {0: progs1["tail_tx"], 2: progs1["tail_drop"]}
        assert not os.path.exists(lay.map_pin("jmp_table")), "prog arrays are per variant"

        second = apply(2)  # a .rodata change: a new variant
        assert second.action == "reloaded"
        (v2,) = lay.variant_numbers()
        table2 = second.status.maps["jmp_table"]
        progs2 = _variant_prog_ids(lay, v2)
        assert v2 != v1 and table2 != table1
        assert slot_ids(table2) == {0: progs2["tail_tx"], 2: progs2["tail_drop"]}
        assert not set(progs2.values()) & set(progs1.values())
        with fd_by_id("prog", second.status.programs[0].id) as fd:
            # start_slot 2: a 64-byte packet goes to slot 2, 66 bytes to slot 4 (none)
            assert prog_test_run(fd, bytes(64)).retval == XDP_DROP
            assert prog_test_run(fd, bytes(66)).retval == XDP_PASS
            assert prog_test_run(fd, bytes(67)).retval == XDP_PASS  # slot 5: none either
        node.delete("tails")


def test_map_in_map_outer_maps_are_taken_over_with_their_inner_maps(bpf_object, root) -> None:
    node = NodeReconciler(root)
    elf = bpf_object("maps_in_maps")
    walk = 2 | 2 << 4 | 2 << 6  # the slots libbpf's initialisers fill
    with net_pair() as net:
        attach = {"xdp": {"interface": net.host_if, "mode": "generic"}}
        programs = [{"name": "walk_maps", "attach": attach}]
        first = node.apply(parse_manifest(node_manifest("mim", elf, programs, {"bias": 0})))
        before = {n: first.status.maps[n] for n in ("outer_arr", "outer_hash", "inner_a")}
        assert fd_slots(before["outer_arr"]) == {0: "inner_a", 2: "inner_b"}
        second = node.apply(parse_manifest(node_manifest("mim", elf, programs, {"bias": 1})))
        assert second.action == "reloaded"
        assert second.status.programs[0].id != first.status.programs[0].id
        assert {n: second.status.maps[n] for n in before} == before
        assert fd_slots(before["outer_arr"]) == {0: "inner_a", 2: "inner_b"}
        with fd_by_id("prog", second.status.programs[0].id) as fd:
            assert prog_test_run(fd, bytes(64)).retval == walk + 1
        node.delete("mim")
