"""Extern resolution cost: what kconfig externs and kfuncs add to a load, next to bpftool.

Run as root:  .venv/bin/python bench/externs.py [--runs N]

Per object (tests/progs/kconfig, kfunc, corpus_ct_filter): the first load in a fresh process
(reads the kernel config, indexes vmlinux BTF for kfuncs), then the median of in-process
parse + load, and the median of a whole `bpftool prog loadall` process for the same object.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.progs import PROGS, compile_bpf  # noqa: E402

from bpfglobals.elf import read_object  # noqa: E402
from bpfglobals.kernel.bpffs import ensure_bpffs  # noqa: E402
from bpfglobals.loader import load  # noqa: E402

OBJECTS = ("kconfig", "kfunc", "corpus_ct_filter")


def once(path: Path) -> float:
    t = time.perf_counter()
    with load(read_object(path)):
        pass
    return time.perf_counter() - t


def bpftool_once(path: Path) -> float:
    pin = f"/sys/fs/bpf/bgt-bench-ext-{uuid.uuid4().hex[:8]}"
    t = time.perf_counter()
    subprocess.run(["bpftool", "prog", "loadall", str(path), pin], check=True, capture_output=True)
    took = time.perf_counter() - t
    subprocess.run(["rm", "-rf", pin], check=True)
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()
    ensure_bpffs()
    tmp = Path(tempfile.mkdtemp(prefix="bpfg-bench-ext-"))
    print(f"{'object':18} {'first load':>12} {'ours, median':>14} {'bpftool, median':>16}  ratio")
    for name in OBJECTS:
        path = compile_bpf(PROGS / f"{name}.bpf.c", tmp)
        first = once(path)  # cold: config file read, vmlinux BTF indexed (cached afterwards)
        ours = statistics.median(once(path) for _ in range(args.runs))
        theirs = statistics.median(bpftool_once(path) for _ in range(args.runs))
        print(
            f"{name:18} {first * 1000:9.2f} ms {ours * 1000:11.2f} ms {theirs * 1000:13.2f} ms"
            f"  {theirs / ours:5.2f}x"
        )


if __name__ == "__main__":
    main()
