"""Differential test: our loader vs libbpf (bpftool) on the same object and values.

libbpf loads `bpfglobals render` output (the values baked in as ELF defaults); we load the
original with the values. The kernel's translated instructions must be the same instruction
for instruction (map ids normalised to map names), and so must BPF_PROG_TEST_RUN results.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bpfglobals.elf import read_object
from bpfglobals.loader import load
from tests.support.xlated import assert_same_as_pinned

CLI = str(Path(sys.executable).parent / "bpfglobals")

CASES = {
    "globals": {"ro_u32": 99, "ro_name": "x", "data_counter_limit": 3, "ro_mode": "MODE_DROP"},
    "calls": {"base": 33, "scale": 4},
    "prune": {"answer": 5},
    "examples/xdp_drop.bpf.c": {"drop_port": 53, "drop_icmp": True},
    "maps": {"limit": 9},
    "hidden_subprog": {"bonus": 2},
    # objects with externs: values set through render/configure, externs resolved by each loader
    "corpus_ct_filter": {"guarded_port": 22, "log_only": True},
    "corpus_runqlat_style": {"targ_ms": True, "targ_tgid": 1},
}


@pytest.mark.parametrize("fixture", sorted(CASES))
def test_same_instructions_and_results_as_libbpf(bpf_object, fixture, tmp_path) -> None:
    src = bpf_object(fixture)
    values = CASES[fixture]
    rendered = tmp_path / src.name  # same file name: same internal map names
    cli = [CLI, "render", str(src), "-o", str(rendered)]
    subprocess.run(cli + [f"--set={k}={v}" for k, v in values.items()], check=True)
    pin = f"/sys/fs/bpf/bgt-diff-{uuid.uuid4().hex[:8]}"
    by_name_pins = [f"/sys/fs/bpf/{m.name}" for m in read_object(src).maps if m.pinning == 1]
    assert not any(os.path.exists(p) for p in by_name_pins), "stale pin from an earlier run"
    subprocess.run(
        ["bpftool", "prog", "loadall", str(rendered), pin], check=True, capture_output=True
    )
    try:
        with load(read_object(src), values) as ours:
            for prog in ours.programs.values():
                assert_same_as_pinned(prog, pin, tmp_path)
    finally:
        subprocess.run(["rm", "-rf", pin, *by_name_pins], check=False)
