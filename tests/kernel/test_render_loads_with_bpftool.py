"""Compile-once templates: a rendered object loaded by libbpf (bpftool) holds the new values."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from bpfglobals.elf import read_object
from bpfglobals.values import configure
from tests.support.bpftool import bpftool, map_info, map_value, prog_map_ids


def test_rendered_defaults_reach_the_kernel(bpf_object, tmp_path) -> None:
    src = bpf_object("globals")
    out = tmp_path / "tmpl.bpf.o"
    values = {"ro_u32": 4242, "ro_name": "veth7", "ro_addr_be": "10.0.0.9", "data_delta": -77}
    cli = [str(Path(sys.executable).parent / "bpfglobals"), "render", str(src), "-o", str(out)]
    cli += [f"--set={k}={v}" for k, v in values.items()]
    subprocess.run(cli, check=True, capture_output=True)
    pin = f"/sys/fs/bpf/bpfg-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["bpftool", "prog", "loadall", str(out), pin], check=True, capture_output=True)
    try:
        prog = bpftool("prog", "show", "pinned", f"{pin}/config_ret")
        maps = {map_info(i)["name"]: i for i in prog_map_ids(prog["id"])}
        expected = configure(read_object(src), values)
        assert map_value(maps["tmpl.rodata"]) == expected[".rodata"]
        assert map_value(maps["tmpl.data"]) == expected[".data"]
        assert map_info(maps["tmpl.rodata"])["frozen"] == 1
    finally:
        subprocess.run(["rm", "-rf", pin], check=False)
