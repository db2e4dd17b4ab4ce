"""Load-time benchmark: bpfglobals vs bpftool (libbpf) vs recompiling with clang.

Run as root:  .venv/bin/python bench/load.py [--runs N] [--object examples/xdp_drop.bpf.c]

1. whole process: `bpfglobals load OBJ --pin P` vs `bpftool prog loadall OBJ P` (each run
   then unpinned), median wall time and ratio;
2. in process: reconfigure-and-load with our loader (parse once, configure + load per
   value) vs what this project replaces: clang recompiling the object for a new value
   (`-D` override of the default) — and vs parse+configure+load from scratch.
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

from bench.timing import ms, timed  # noqa: E402
from tests.support.progs import clang_flags, compile_bpf  # noqa: E402

from bpfglobals.elf import read_object  # noqa: E402
from bpfglobals.kernel.bpffs import ensure_bpffs  # noqa: E402
from bpfglobals.loader import load  # noqa: E402

CLI = str(Path(sys.executable).parent / "bpfglobals")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--object", default="examples/xdp_drop.bpf.c")
    args = ap.parse_args()
    ensure_bpffs()
    tmp = Path(tempfile.mkdtemp(prefix="bpfg-bench-"))
    src = ROOT / args.object
    obj_path = compile_bpf(src, tmp)

    pins: list[str] = []

    def ours_process() -> None:
        pins.append(f"/sys/fs/bpf/bench-{uuid.uuid4().hex[:8]}")
        subprocess.run(
            [CLI, "load", str(obj_path), "--pin", pins[-1], "--no-cache"],
            check=True,
            capture_output=True,
        )

    def bpftool_process() -> None:
        pins.append(f"/sys/fs/bpf/bench-{uuid.uuid4().hex[:8]}")
        subprocess.run(
            ["bpftool", "prog", "loadall", str(obj_path), pins[-1]], check=True, capture_output=True
        )

    spec = read_object(obj_path)
    var = next(v for v in spec.variables() if v.section == ".rodata")
    counter = iter(range(1, 10**9))

    def ours_reconfigure() -> None:
        with load(spec, {var.name: next(counter) % 200}):
            pass

    def ours_from_scratch() -> None:
        with load(read_object(obj_path), {var.name: next(counter) % 200}):
            pass

    def clang_recompile() -> None:
        # what a per-configuration build does: rebuild the object with a new constant
        out = tmp / "recompiled"
        out.mkdir(exist_ok=True)
        subprocess.run(
            ["clang", *clang_flags(), "-c", str(src), "-o", str(out / "x.o")],
            check=True,
            capture_output=True,
        )

    rows = [
        ("ours_cli", "bpfglobals load (whole process)", ours_process),
        ("bpftool", "bpftool prog loadall (whole process)", bpftool_process),
        ("ours_hot", "bpfglobals configure+load (in process)", ours_reconfigure),
        ("ours_cold", "bpfglobals parse+configure+load (in process)", ours_from_scratch),
        ("clang", "clang recompile per configuration", clang_recompile),
    ]
    med = {}
    print(f"object: {args.object}, runs: {args.runs}, median wall time")
    for key, label, fn in rows:
        times = timed(fn, args.runs)
        for pin in pins:  # unpinning is not part of the load being measured
            shutil.rmtree(pin, ignore_errors=True)
        pins.clear()
        med[key] = statistics.median(times)
        print(f"  {label:46s} {ms(times)}")
    print("ratios (median):")
    print(f"  ours (CLI) / bpftool, whole process:  {med['ours_cli'] / med['bpftool']:.1f}x")
    print(f"  bpftool / ours (in process):          {med['bpftool'] / med['ours_hot']:.1f}x")
    print(f"  clang / ours configure+load:         {med['clang'] / med['ours_hot']:.1f}x")
    print(f"  clang / ours parse+configure+load:   {med['clang'] / med['ours_cold']:.1f}x")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
