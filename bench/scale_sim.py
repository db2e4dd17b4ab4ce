"""Scale with simulated nodes: the real operator and apiserver, N simulated agents.

Run:  .venv/bin/python bench/scale_sim.py --nodes 1000 --programs 10

Starts a local control plane (etcd + kube-apiserver), the operator (a process) and the node
simulator (one process playing N agents: `bpfglobals.k8s.simulator`), then: create P
BpfPrograms selecting every node -> all Ready; change a .rodata value of every program with
maxUnavailable 10% -> all Ready; delete 10% of the nodes; delete every program -> all gone.
The last line of output is one JSON object: nodes, programs, create_s, rollout_s, delete_s
(seconds), node_delete_s, writes_per_node_change (apiserver mutating requests on
bpfglobals.io per node and program during the change, from apiserver_request_total),
lists_per_agent_hour, max_object_bytes (largest bpfglobals object read back through the API),
operator_peak_rss_mib, operator_cpu_s, stuck (objects that never finished: must be 0).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "operator"))

from bench.local_cluster import local_cluster  # noqa: E402
from tests.support.scale_sim import Scenario  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--programs", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per phase")
    args = ap.parse_args()
    with local_cluster("bpfg-scale-sim-") as (info, tmp):
        scenario = Scenario(info, args.nodes, args.programs, tmp)
        try:
            result = scenario.run(timeout=args.timeout)
        finally:
            scenario.stop()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
