"""CO-RE load-time benchmark: our CO-RE vs the kernel's CO-RE vs `bpftool prog loadall`.

Run as root:  .venv/bin/python bench/core_load.py [--runs N]

Object: tests/progs/core_task.bpf.c (the largest CO-RE fixture: every relocation kind clang
emits, 33 records), compiled with the running kernel's layout facts.

1. vmlinux BTF: cold cost of indexing /sys/kernel/btf/vmlinux (read + one pass + name
   index), and of a full parse into the model for comparison; warm cost (cached per process).
2. whole process, one load each: `bpfglobals load OBJ --pin P` vs `bpftool prog loadall OBJ P`
   (both read and index vmlinux BTF from scratch), median wall time and ratio;
3. in process, vmlinux already indexed: load with our CO-RE vs the kernel's (PROG_LOAD with
   core_relos), and the CO-RE resolution step alone.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.timing import ms, ratio, timed  # noqa: E402
from tests.support.kernel_facts import core_task_defines  # noqa: E402
from tests.support.progs import PROGS, compile_bpf  # noqa: E402

from bpfglobals.elf import read_object  # noqa: E402
from bpfglobals.elf.btf_parse import parse_btf  # noqa: E402
from bpfglobals.elf.kernel_btf import LazyBtf  # noqa: E402
from bpfglobals.kernel.bpffs import ensure_bpffs  # noqa: E402
from bpfglobals.loader import load  # noqa: E402
from bpfglobals.loader.core import core_target, relocate_object  # noqa: E402
from bpfglobals.loader.kernel_btf import VMLINUX_BTF, vmlinux_btf  # noqa: E402

CLI = str(Path(sys.executable).parent / "bpfglobals")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=11)
    args = ap.parse_args()
    ensure_bpffs()
    tmp = Path(tempfile.mkdtemp(prefix="bpfg-core-bench-"))
    obj_path = compile_bpf(PROGS / "core_task.bpf.c", tmp, core_task_defines())
    spec = read_object(obj_path)
    n_relos = sum(len(p.core_relos) for p in spec.programs)
    print(f"object: {obj_path.name}, {n_relos} CO-RE records, {spec.programs[0].insn_count} insns")

    def index_cold() -> None:
        with open(VMLINUX_BTF, "rb") as f:
            btf = LazyBtf.from_bytes(f.read())
        btf.ids_by_essential_name("task_struct")

    def parse_full() -> None:
        with open(VMLINUX_BTF, "rb") as f:
            parse_btf(f.read())

    cold = timed(index_cold, args.runs)
    full = timed(parse_full, 3)
    vmlinux_btf().ids_by_essential_name("task_struct")
    warm = timed(vmlinux_btf, args.runs)
    print("\n1. vmlinux BTF")
    print(f"   lazy index, cold (read + index + names) {ms(cold)}")
    print(f"   full parse into the model               {ms(full)}  ({ratio(full, cold)} the index)")
    print(f"   cached, per later load                  {statistics.median(warm) * 1e6:8.2f} us")

    pins: list[str] = []

    def process(cmd: list[str]) -> None:
        pins.append(f"/sys/fs/bpf/bench-core-{uuid.uuid4().hex[:8]}")
        subprocess.run([*cmd, pins[-1]], check=True, capture_output=True)

    try:
        ours_p = timed(lambda: process([CLI, "load", str(obj_path), "--pin"]), args.runs)
        tool_p = timed(lambda: process(["bpftool", "prog", "loadall", str(obj_path)]), args.runs)
    finally:
        for p in pins:
            shutil.rmtree(p, ignore_errors=True)
    print("\n2. whole process (cold vmlinux BTF in both)")
    print(f"   bpfglobals load           {ms(ours_p)}")
    print(f"   bpftool prog loadall      {ms(tool_p)}")
    print(f"   ratio ours/bpftool        {ratio(ours_p, tool_p)}")

    def ours_load() -> None:
        with load(spec):
            pass

    def kernel_load() -> None:
        with load(spec, core_in_kernel=True):
            pass

    def resolve_only() -> None:
        relocate_object(spec, spec.programs, core_target(None))

    ours_l = timed(ours_load, args.runs)
    kern_l = timed(kernel_load, args.runs)
    res = timed(resolve_only, args.runs)
    print("\n3. in process, vmlinux BTF cached")
    print(f"   load, our CO-RE           {ms(ours_l)}")
    print(f"   load, kernel's CO-RE      {ms(kern_l)}")
    print(f"   ratio ours/kernel         {ratio(ours_l, kern_l)}")
    print(f"   CO-RE resolution alone    {ms(res)}  ({n_relos} records, fresh candidate cache)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
