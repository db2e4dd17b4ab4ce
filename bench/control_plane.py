"""Start-up time and memory of the local control plane (`bpfglobals dev-cluster`).

Run:  .venv/bin/python bench/control_plane.py [--runs 3]
Times `up` to /readyz ok (and CRDs installed), without and with kube-controller-manager, and
reports the resident memory (VmRSS) of each process right after start-up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bpfglobals.devcluster import DevCluster


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    for kcm in (False, True):
        times, mem = [], {}
        for _ in range(args.runs):
            cluster = DevCluster(tempfile.mkdtemp(prefix="bpfg-cp-") + "/state")
            t = time.perf_counter()
            info = cluster.up(controller_manager=kcm)
            times.append(time.perf_counter() - t)
            time.sleep(2)  # let start-up settle before reading memory
            for name, pid in info.pids.items():
                mem.setdefault(name, []).append(rss_mib(pid))
            cluster.down()
        label = "etcd + kube-apiserver" + (" + kube-controller-manager" if kcm else "")
        print(
            f"{label}: up -> readyz in median {statistics.median(times):.2f} s "
            f"(runs: {', '.join(f'{x:.2f}' for x in times)})"
        )
        for name, xs in mem.items():
            print(f"  RSS {name:10s} {statistics.median(xs):7.1f} MiB")
        print(f"  RSS total      {sum(statistics.median(x) for x in mem.values()):7.1f} MiB")


if __name__ == "__main__":
    main()
