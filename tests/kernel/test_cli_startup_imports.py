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


def test_a_load_of_an_object_seen_before_reads_its_parse_from_the_cache_without_pyelftools(
    bpf_object, tmp_path, monkeypatch
):
    READER_MODULES = ("reader", "programs", "maps", "legacy_maps", "func_linkage")
    """The first `load` parses the ELF with pyelftools and caches the parse; the second reads
    the parse back (no pyelftools, no parser, no dataclasses) and loads the same program."""
    obj = bpf_object("examples/xdp_drop.bpf.c")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    pin = f"/sys/fs/bpf/bgt-startup-{uuid.uuid4().hex[:8]}"
    runs = []
    try:
        for _ in range(2):
            mods, out = modules_for("load", str(obj), "--pin", pin)
            runs.append((mods, out))
            subprocess.run(["rm", "-rf", pin], check=True)
    finally:
        subprocess.run(["rm", "-rf", pin], check=False)
    (cold, first), (warm, second) = runs
    assert "elftools.elf.elffile" in cold and "bpfglobals.elf.reader" in cold
    assert len(list((tmp_path / "xdg" / "bpfglobals" / "objects").iterdir())) == 1
    parser = ("elftools", "dataclasses", *(f"bpfglobals.elf.{m}" for m in READER_MODULES))
    lazy = ("bpfglobals.values.kconfig", "bpfglobals.loader.kernel_btf", "inspect")
    for name in (*parser, *lazy, *LOAD_NEVER, *HEAVY):
        assert name not in warm, name

    def shape(table: str) -> list[list[str]]:  # both tables without the kernel's ID column
        rows = [line.split() for line in table.splitlines() if line.strip()]
        return [row[:3] + row[4:] for row in rows]

    # the same program (its tag: a hash of the instructions) and the same maps
    assert shape(first) == shape(second)
    assert shape(second)[1][:3] == ["xdp_drop", "xdp", "xdp"] and len(shape(second)[1][3]) == 16
