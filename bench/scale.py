"""Scale: many BpfPrograms on several agents, on the real apiserver and kernel.

Run as root:  .venv/bin/python bench/scale.py [--programs 100] [--nodes 5]

Starts a local control plane, the operator and NODES agent processes (each a simulated node
with its own network namespace and bpffs root), applies PROGRAMS BpfPrograms at once (each a
tcx program on the node's interface, so they can share it), and reports the time from apply
to all Ready and the writes the apiserver served (its own apiserver_request_total counter,
mutating verbs on our resources), per BpfProgram and node.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.kubectl import kubectl_for  # noqa: E402
from tests.support.progs import compile_bpf  # noqa: E402
from tests.support.scale_sim import WRITE_VERBS, apiserver_requests  # noqa: E402
from tests.support.stack import Stack, wait_for  # noqa: E402

from bpfglobals.devcluster import DevCluster  # noqa: E402
from bpfglobals.node.manifest import config_hash, parse_spec  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--programs", type=int, default=100)
    ap.add_argument("--nodes", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bpfg-scale-"))
    cluster = DevCluster(str(tmp / "cluster"))
    info = cluster.up()

    kubectl = kubectl_for(info)
    stack = Stack(info, kubectl, tmp)
    try:
        for i in range(args.nodes):
            stack.start_agent(stack.add_node(i))
        stack.start_operator()
        elf = compile_bpf(ROOT / "tests" / "progs" / "live.bpf.c", tmp)
        sha = hashlib.sha256(elf.read_bytes()).hexdigest()
        docs = [
            {
                "apiVersion": "bpfglobals.io/v1alpha1",
                "kind": "BpfProgram",
                "metadata": {"name": f"scale-{i}"},
                "spec": {
                    "elf": {"path": str(elf), "sha256": sha},
                    "programs": [
                        {
                            "name": "tcx_pass",
                            # tcx takes at most 64 programs per interface and direction
                            "attach": {
                                "tcx": {
                                    "interface": "bpfg0",
                                    "direction": ("ingress", "egress")[i % 2],
                                }
                            },
                        }
                    ],
                    "globals": {"forced_verdict": 0, "verdict": i % 3},
                    "nodeSelector": {"bpfglobals.io/e2e": stack.tag},
                    "rollout": {"maxUnavailable": "100%"},
                },
            }
            for i in range(args.programs)
        ]
        stack.wait_agents_connected()
        time.sleep(2)  # the operator's watches too
        pairs = args.programs * args.nodes
        print(f"{args.programs} BpfPrograms x {args.nodes} agents ({pairs} program-node pairs)")
        rollout(kubectl, docs, "create", pairs)
        for d in docs:  # a .rodata change: a new variant on every node, swapped atomically
            d["spec"]["globals"]["forced_verdict"] = 2
        rollout(kubectl, docs, ".rodata change", pairs)
    finally:
        stack.close()
        cluster.down()
        shutil.rmtree(tmp, ignore_errors=True)


def rollout(kubectl, docs: list[dict], what: str, pairs: int) -> None:
    """Apply `docs` at once; report when the apply returned, when the operator had written every
    node object, when every agent had applied it, when every BpfProgram was Ready at its new
    generation, and the writes the apiserver served meanwhile."""
    before = apiserver_requests(kubectl, WRITE_VERBS)
    t = time.perf_counter()
    kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(d) for d in docs))
    marks = {"kubectl apply returned": time.perf_counter() - t}
    programs = json.loads(kubectl("get", "bpfprograms", "-o", "json").stdout)["items"]
    generations = {o["metadata"]["name"]: o["metadata"]["generation"] for o in programs}
    wanted = {config_hash(parse_spec(o["metadata"]["name"], o["spec"])) for o in programs}

    def progress():
        if "operator wrote every node object" not in marks or "agents applied" not in marks:
            asked = json.loads(kubectl("get", "bpfnodes", "-o", "json").stdout)["items"]
            entries = [e for o in asked for e in o["spec"]["programs"].values()]
            if sum(e["configHash"] in wanted for e in entries) == pairs:
                marks.setdefault("operator wrote every node object", time.perf_counter() - t)
                reports = json.loads(kubectl("get", "bpfprogramnodes", "-o", "json").stdout)
                if (
                    sum(
                        (o.get("status") or {}).get("configHash") in wanted
                        and o["status"].get("phase") == "Ready"
                        for o in reports["items"]
                    )
                    == pairs
                ):
                    marks["agents applied"] = time.perf_counter() - t
        items = json.loads(kubectl("get", "bpfprograms", "-o", "json").stdout)["items"]
        done = all(
            (o.get("status") or {}).get("phase") == "Ready"
            and o["status"].get("observedGeneration") == generations[o["metadata"]["name"]]
            for o in items
        )
        if done:  # the agents finished between the two listings
            marks.setdefault("agents applied", time.perf_counter() - t)
        return done

    wait_for(f"all Ready after {what}", progress, timeout=900)
    elapsed = time.perf_counter() - t
    time.sleep(3)  # let trailing status writes land before counting
    after = apiserver_requests(kubectl, WRITE_VERBS)
    delta = {k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)}
    total = sum(delta.values())
    print(f"  {what}: apply -> all Ready {elapsed:.1f} s ({pairs / elapsed:.1f} pairs/s)")
    for mark, at in marks.items():
        print(f"    {mark:34s} at {at:5.1f} s")
    print(f"    apiserver writes on bpfglobals.io: {total:.0f} ({total / pairs:.2f} per pair)")
    for k, v in sorted(delta.items()):
        print(f"      {k:40s} {v:.0f}", flush=True)


if __name__ == "__main__":
    main()
