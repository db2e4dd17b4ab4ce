"""`bpfglobals get` and `load` run for real (a program applied and attached, the example
loaded and pinned) import none of the modules their start-up budget excludes (issue 16)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

from tests.support.imports import GET_NEVER, HEAVY, LOAD_NEVER, modules_for
from tests.support.manifests import node_manifest

MAIN = "import sys; from bpfglobals.cli import main; sys.exit(main())"


def test_load_of_the_example_imports_neither_co_re_nor_the_cffi_parser(bpf_object):
    obj = bpf_object("examples/xdp_drop.bpf.c")
    pin = f"/sys/fs/bpf/bgt-startup-{uuid.uuid4().hex[:8]}"
    try:
        mods, out = modules_for("load", str(obj), "--pin", pin)
        assert "xdp_drop" in out and f"{pin}/programs/xdp_drop" in out  # it did load
        # the example has no CO-RE records: the CO-RE machinery stays out
        core = ("bpfglobals.loader.core", "bpfglobals.elf.core_relo", "bpfglobals.elf.core_spec")
        for name in (*LOAD_NEVER, *HEAVY, *core, "bpfglobals.node", "bpfglobals.k8s"):
            assert name not in mods, name
    finally:
        subprocess.run(["rm", "-rf", pin], check=False)


def test_get_of_an_attached_program_imports_no_costly_module(bpf_object, node_root, tmp_path):
    obj = bpf_object("examples/xdp_drop.bpf.c")
    dev = f"bgt-g{uuid.uuid4().hex[:6]}"
    veth = ["ip", "link", "add", dev, "type", "veth", "peer", "name", dev + "p"]
    subprocess.run(veth, check=True)
    manifest = tmp_path / "m.json"
    attach = {"xdp": {"interface": dev, "mode": "generic"}}
    doc = node_manifest("startup", obj, [{"name": "xdp_drop", "attach": attach}], {})
    manifest.write_text(json.dumps(doc))
    cli = [sys.executable, "-c", MAIN]
    try:
        subprocess.run(
            [*cli, "apply", "-f", str(manifest), "--bpffs-root", node_root],
            check=True,
            capture_output=True,
        )
        mods, out = modules_for("get", "--bpffs-root", node_root)
        assert "startup" in out and f"{dev} (generic)" in out  # the program and its link
        for name in (*GET_NEVER, *HEAVY, "bpfglobals.elf", "bpfglobals.loader"):
            assert name not in mods, name
    finally:
        subprocess.run([*cli, "delete", "startup", "--bpffs-root", node_root], check=False)
        subprocess.run(["ip", "link", "del", dev], check=False)
