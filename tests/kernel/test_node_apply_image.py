"""Node-local `bpfglobals apply` of an object pulled from a registry: `bpfglobals push` to a
real docker-registry on loopback, a manifest naming the image by digest, the program in the
kernel dropping real traffic, the maps named after the object's file in the image."""

from __future__ import annotations

import json
import subprocess

from tests.kernel.test_node_apply import CLI, receive_count, xdp_on
from tests.support.bpftool import bpftool
from tests.support.netns import net_pair
from tests.support.registry import push, registry


def test_apply_pulls_the_image_by_digest_and_drops_the_configured_port(
    bpf_object, node_root, tmp_path
) -> None:
    elf = bpf_object("examples/xdp_drop.bpf.c")
    with registry(tmp_path / "registry") as addr, net_pair() as net:
        ref = push(elf, f"{addr}/bpf/xdp-drop:v1")
        doc = {
            "apiVersion": "bpfglobals.io/v1alpha1",
            "kind": "BpfProgram",
            "metadata": {"name": "fromimage"},
            "spec": {
                "elf": {"image": {"reference": ref}},
                "programs": [
                    {
                        "name": "xdp_drop",
                        "attach": {"xdp": {"interface": net.host_if, "mode": "generic"}},
                    }
                ],
                "globals": {"drop_port": 7001},
            },
        }
        f = tmp_path / "m.yaml"
        f.write_text(json.dumps(doc))
        r = subprocess.run(
            [CLI, "apply", "-f", str(f), "--bpffs-root", node_root], capture_output=True, text=True
        )
        assert r.returncode == 0 and "bpfprogram/fromimage created" in r.stdout, r.stderr
        try:
            got = json.loads(
                subprocess.run(
                    [CLI, "get", "fromimage", "-o", "json", "--bpffs-root", node_root],
                    capture_output=True, text=True, check=True,
                ).stdout
            )  # fmt: skip
            assert xdp_on(net.host_if) == [got["programs"][0]["id"]]
            assert bpftool("map", "show", "id", str(got["maps"]["xdp_drop.rodata"]))
            assert receive_count(net, 7001, 20) == 0  # dropped by the pulled program
            assert receive_count(net, 7002, 20) == 20
        finally:
            subprocess.run([CLI, "delete", "fromimage", "--bpffs-root", node_root], check=False)
        assert xdp_on(net.host_if) == []
        tag_only = json.loads(f.read_text())
        tag_only["spec"]["elf"]["image"]["reference"] = f"{addr}/bpf/xdp-drop:v1"
        f.write_text(json.dumps(tag_only))
        r = subprocess.run(
            [CLI, "apply", "-f", str(f), "--bpffs-root", node_root], capture_output=True, text=True
        )
        assert r.returncode != 0 and "a tag alone can move" in r.stderr
