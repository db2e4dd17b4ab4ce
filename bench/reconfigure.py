"""Reconfiguration latency of an attached program: value change -> new behaviour live.

Run as root:  .venv/bin/python bench/reconfigure.py [--changes 200]

Attaches examples/xdp_drop.bpf.c (XDP, generic mode) to a veth in a test network namespace
with the node core, then measures, per change, the time for `apply` to return:
- a .rodata change (drop_port): new variant loaded, link swapped atomically, old released;
- a .data/.bss change (log_level): written into the live map, same program;
next to what per-configuration builds cost: clang recompiling the object plus bpftool loading
it (attaching not even included). Then the same .rodata change for examples/syscall_count.bpf.c
with three tracing links, which are replaced rather than updated.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.manifests import node_manifest, tracing  # noqa: E402
from tests.support.netns import net_pair  # noqa: E402
from tests.support.progs import clang_flags, compile_bpf  # noqa: E402

from bpfglobals.node.manifest import parse_manifest  # noqa: E402
from bpfglobals.node.reconcile import NodeReconciler  # noqa: E402


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def line(label: str, xs: list[float]) -> str:
    return (
        f"  {label:44s} median {statistics.median(xs) * 1000:7.2f} ms   "
        f"p99 {pct(xs, 99) * 1000:7.2f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=200)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bpfg-bench-"))
    src = ROOT / "examples" / "xdp_drop.bpf.c"
    obj = compile_bpf(src, tmp)
    root = f"/sys/fs/bpf/bench-{uuid.uuid4().hex[:8]}"
    node = NodeReconciler(root)
    with net_pair() as net:

        def doc(values: dict) -> dict:
            xdp = {"xdp": {"interface": net.host_if, "mode": "generic"}}
            return node_manifest("bench", obj, [{"name": "xdp_drop", "attach": xdp}], values)

        node.apply(parse_manifest(doc({"drop_port": 1})))
        rodata, live = [], []
        for i in range(args.changes):
            m = parse_manifest(doc({"drop_port": 2 + i % 1000, "log_level": 0}))
            t = time.perf_counter()
            assert node.apply(m).action == "reloaded"
            rodata.append(time.perf_counter() - t)
        for i in range(args.changes):
            m = parse_manifest(
                doc({"drop_port": 2 + (args.changes - 1) % 1000, "log_level": 1 + i})
            )
            t = time.perf_counter()
            assert node.apply(m).action == "updated-live"
            live.append(time.perf_counter() - t)
        node.delete("bench")
    tracing, trace_compile = tracing_swaps(tmp, root, args.changes)
    recompile = []
    for _ in range(max(10, args.changes // 10)):
        pin = f"/sys/fs/bpf/bench-{uuid.uuid4().hex[:8]}"
        t = time.perf_counter()
        subprocess.run(
            ["clang", *clang_flags(), "-c", str(src), "-o", str(tmp / "r.o")], check=True
        )
        subprocess.run(["bpftool", "prog", "loadall", str(tmp / "r.o"), pin], check=True)
        recompile.append(time.perf_counter() - t)
        shutil.rmtree(pin)
    shutil.rmtree(tmp)
    os.rmdir(root)  # empty once both objects are deleted
    print(f"xdp_drop attached (XDP generic) on a veth; {args.changes} changes each")
    print(line(".rodata change: new variant swapped in", rodata))
    print(line(".data/.bss change: live map write", live))
    print(line("clang recompile + bpftool load (no attach)", recompile))
    print("syscall_count: 3 tracing links (tracepoint, raw_tp, tp_btf), no BPF_LINK_UPDATE")
    print(line(".rodata change: new links, old unpinned", tracing))
    print(line("clang recompile only (no load, no attach)", trace_compile))
    r, d, c = (statistics.median(x) for x in (rodata, live, recompile))
    t, tc = statistics.median(tracing), statistics.median(trace_compile)
    print("ratios (median):")
    print(f"  recompile+load / .rodata swap:  {c / r:.1f}x")
    print(f"  recompile+load / .data update:  {c / d:.1f}x")
    print(f"  .rodata swap / .data update:    {r / d:.1f}x")
    print(f"  recompile alone / tracing swap: {tc / t:.1f}x")


def tracing_swaps(tmp: Path, root: str, changes: int) -> tuple[list[float], list[float]]:
    """Tracing links cannot swap programs: each change attaches new links and renames their
    pins over the old ones. Returns the apply times and, as the peer, clang's compile times."""
    src = ROOT / "examples" / "syscall_count.bpf.c"
    obj = compile_bpf(src, tmp)
    node = NodeReconciler(root)
    hooks = ("count_tp", "count_raw", "count_btf")

    def doc(tgid: int) -> dict:
        return node_manifest("trace", obj, tracing(*hooks), {"target_tgid": tgid})

    node.apply(parse_manifest(doc(1)))
    times = []
    for i in range(changes):
        m = parse_manifest(doc(2 + i))
        t = time.perf_counter()
        assert node.apply(m).action == "reloaded"
        times.append(time.perf_counter() - t)
    node.delete("trace")
    compiles = []
    for _ in range(max(10, changes // 10)):
        t = time.perf_counter()
        subprocess.run(
            ["clang", *clang_flags(), "-c", str(src), "-o", str(tmp / "t.o")], check=True
        )
        compiles.append(time.perf_counter() - t)
    return times, compiles


if __name__ == "__main__":
    main()
