"""How many simulated agents one process holds: time until N agents are connected, and the
simulator's memory and CPU (connecting, then idle).

Run:  .venv/bin/python bench/sim_connect.py --nodes 5000

Starts a local control plane (etcd + kube-apiserver, the CRDs from crds/) and the node
simulator (`bpfglobals.k8s.simulator`: N Node objects, N real `NodeAgent`s, each watching its
own BpfNode). No operator and no BpfNode: this measures the agents' own cost. The last line of
output is one JSON object: nodes, connected_s (start of the simulator until every agent has
listed its BpfNode and its reports, Node registration included), peak_rss_mib, cpu_s (both
at that moment), idle_cpu_s and idle_lists (over the next --idle seconds), threads.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "operator"))

from bench.local_cluster import local_cluster  # noqa: E402
from tests.support.scale_sim import proc_usage  # noqa: E402


def connect(kubeconfig: str, nodes: int, tmp: Path, timeout: float, idle: float) -> dict:
    stats = tmp / "stats.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator"), "BPFGLOBALS_LOG_LEVEL": "warning"}
    argv = [sys.executable, "-m", "bpfglobals.k8s.simulator", "--nodes", str(nodes)]
    argv += ["--stats", str(stats), "--kubeconfig", kubeconfig]
    with open(tmp / "sim.log", "wb") as log:
        sim = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < timeout:
            time.sleep(1)
            if sim.poll() is not None:
                raise SystemExit(f"the simulator exited: {(tmp / 'sim.log').read_text()[-2000:]}")
            s = json.loads(stats.read_text()) if stats.exists() else {"connected": 0}
            if s["connected"] == nodes:
                break
        else:
            raise SystemExit(f"only {s['connected']} of {nodes} agents connected")
        connected_s = time.monotonic() - t0
        rss, cpu = proc_usage(sim.pid)
        time.sleep(idle)
        rss_idle, cpu_idle = proc_usage(sim.pid)
        return {
            "nodes": nodes,
            "connected_s": round(connected_s, 1),
            "peak_rss_mib": round(rss),
            "cpu_s": round(cpu, 1),
            "idle_cpu_s": round(cpu_idle - cpu, 1),
            "idle_lists": json.loads(stats.read_text())["lists"] - s["lists"],
            "peak_rss_mib_idle": round(rss_idle),
            "threads": len(os.listdir(f"/proc/{sim.pid}/task")),
        }
    finally:
        sim.terminate()
        sim.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--timeout", type=float, default=900, help="seconds to connect")
    ap.add_argument("--idle", type=float, default=60, help="seconds measured idle")
    args = ap.parse_args()
    with local_cluster("bpfg-sim-connect-") as (info, tmp):
        result = connect(info.kubeconfig, args.nodes, tmp, args.timeout, args.idle)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
