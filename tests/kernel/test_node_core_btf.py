"""`spec.btf` through the node core: a BpfProgram's CO-RE relocations resolved against a BTF
file on the node (libbpf's btf_custom_path) instead of the running kernel's."""

from __future__ import annotations

import pytest

from bpfglobals.kernel.objects import fd_by_id
from bpfglobals.kernel.progs import prog_test_run
from bpfglobals.loader.core import CoreRelocationError
from bpfglobals.node.manifest import parse_manifest
from bpfglobals.node.reconcile import NodeReconciler
from tests.support.core_target import compile_target, point_packet
from tests.support.manifests import node_manifest
from tests.support.netns import net_pair


def _manifest(elf, interface: str, btf: str | None) -> dict:
    attach = {"xdp": {"interface": interface, "mode": "generic"}}
    doc = node_manifest("core-btf", elf, [{"name": "read_point", "attach": attach}], {})
    if btf is not None:
        doc["spec"]["btf"] = {"path": btf}
    return doc


def _run(prog_id: int, packet: bytes) -> int:
    with fd_by_id("prog", prog_id) as fd:
        return prog_test_run(fd, packet).retval


def test_spec_btf_relocates_against_the_nodes_file_and_a_new_target_reloads(
    bpf_object, node_root, tmp_path
) -> None:
    elf = bpf_object("core_custom")
    target = compile_target(tmp_path)
    packet, expected = point_packet(target, x=77, y=5, kind=3)
    node = NodeReconciler(node_root)
    with net_pair() as net:
        first = node.apply(parse_manifest(_manifest(elf, net.host_if, str(target))))
        assert first.action == "created"
        prog_id = first.status.programs[0].id
        assert _run(prog_id, packet) == expected
        # without spec.btf the running kernel is the target, and it has no `struct point`:
        # refused with the relocation named, and the running variant stays
        with pytest.raises(CoreRelocationError, match=r"struct point\.x"):
            node.apply(parse_manifest(_manifest(elf, net.host_if, None)))
        assert node.get("core-btf").programs[0].id == prog_id
        again = node.apply(parse_manifest(_manifest(elf, net.host_if, str(target))))
        assert again.action == "unchanged"
        # the same BTF under another path is another target: a new variant, same result
        other = tmp_path / "elsewhere.o"
        other.write_bytes(target.read_bytes())
        moved = node.apply(parse_manifest(_manifest(elf, net.host_if, str(other))))
        assert moved.action == "reloaded"
        assert moved.status.config_hash != first.status.config_hash
        assert moved.status.programs[0].id != prog_id
        assert _run(moved.status.programs[0].id, packet) == expected
        node.delete("core-btf")
