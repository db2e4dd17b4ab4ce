"""A node simulator (in the spirit of kwok): one process that plays N node agents against a
real apiserver, for scale tests of the operator.

Each simulated node is a Node object (with a Ready condition, as a kubelet would post it) and
a real `NodeAgent`: its own watch on its own BpfNode (by name), its own worker, the same
BpfProgramNode reports (create, patch, delete) as a real agent. Only the kernel work is
replaced: `SimulatedNode` answers `apply`/`delete`/`gc` as `NodeReconciler` does, with made-up
kernel IDs, without fetching the ELF or calling bpf(2).

Run: `python -m bpfglobals.k8s.simulator --nodes N --prefix sim --stats FILE [--kubeconfig K]`.
It writes `FILE` (JSON: nodes, connected agents, LISTs made) every second until stopped.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from bpfglobals.k8s.agent import NodeAgent
from bpfglobals.k8s.client import TIMEOUT, Api, load_config
from bpfglobals.node.manifest import BpfProgramManifest, config_hash
from bpfglobals.node.status import AppliedStatus, LinkStatus, ProgramStatus

LABEL_SIM = "bpfglobals.io/sim"
# A real agent re-checks its few objects every 30 s; thousands in one process would spend the
# machine on it, and with nothing in the kernel there is nothing to re-check.
RESYNC = 600.0
# Longer watch requests than a real agent's (50-60 s): 5,000 agents reconnecting every minute
# would spend the simulator's one interpreter on it. Each still resumes from its version.
WATCH_SECONDS = (240, 300)
# Thousands of threads (a watch and a worker per agent): small stacks keep the RSS down.
STACK_BYTES = 256 * 1024
# Agents converging at once (each an unchanged `NodeAgent.sync`). Real agents run on their own
# machines; thousands of them runnable at once in one interpreter spend its CPU handing the GIL
# around (measured at 5,000 agents: both cores busy, no report written for minutes).
SYNC_SLOTS = 16
SWITCH_INTERVAL = 0.05  # seconds a thread keeps the GIL (Python's default: 0.005)
_ids = itertools.count(1000)
_ids_lock = threading.Lock()


def _next_id() -> int:
    with _ids_lock:
        return next(_ids)


@dataclass(frozen=True)
class Applied:
    status: AppliedStatus


class SimulatedNode:
    """`NodeReconciler`'s interface (apply, delete, gc, names) without the kernel: a new
    configuration gets new program IDs, a live one keeps them, as on a real node."""

    def __init__(self) -> None:
        self._applied: dict[str, AppliedStatus] = {}

    def names(self) -> list[str]:
        return sorted(self._applied)

    def apply(self, m: BpfProgramManifest) -> Applied:
        want = config_hash(m)
        have = self._applied.get(m.name)
        if have is None or have.config_hash != want:
            programs = tuple(
                ProgramStatus(
                    p.name,
                    _next_id(),
                    "0" * 16,
                    (LinkStatus(_next_id(), p.attach.kind, ""),),
                )
                for p in m.programs
            )
            maps = {".rodata": _next_id(), ".bss": _next_id()}
            loaded = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            have = AppliedStatus(
                m.name, programs, maps, dict(m.globals), want, m.elf.sha256 or "", loaded
            )
            self._applied[m.name] = have
        return Applied(have)

    def delete(self, name: str) -> bool:
        return self._applied.pop(name, None) is not None

    def gc(self, desired: set[str]) -> list[str]:
        removed = [n for n in self._applied if n not in desired]
        for n in removed:
            del self._applied[n]
        return removed


def node_doc(name: str, prefix: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, LABEL_SIM: prefix},
        },
    }


def ready_status() -> dict[str, Any]:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cond = {
        "type": "Ready",
        "status": "True",
        "reason": "KubeletReady",
        "message": "simulated",
        "lastTransitionTime": now,
        "lastHeartbeatTime": now,
    }
    return {"status": {"conditions": [cond]}}


def register(core: Any, name: str, prefix: str) -> None:
    """The Node object and its Ready condition (what a kubelet posts when it joins)."""
    try:
        core.create_node(node_doc(name, prefix), _request_timeout=TIMEOUT)
    except client.ApiException as e:
        if e.status != 409:
            raise
    core.patch_node_status(name, ready_status(), _request_timeout=TIMEOUT)


def _gated(sync: Any, gate: threading.BoundedSemaphore) -> Any:
    def gated(full: bool = False) -> bool:
        with gate:
            return sync(full)

    return gated


class Simulator:
    def __init__(self, api: Api, prefix: str, count: int) -> None:
        self.api, self.prefix, self.count = api, prefix, count
        self.agents: list[NodeAgent] = []
        self.gate = threading.BoundedSemaphore(SYNC_SLOTS)

    def node_names(self) -> list[str]:
        return [f"{self.prefix}-{i:05d}" for i in range(self.count)]

    def start(self, workers: int = 16) -> None:
        names = self.node_names()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda n: register(self.api.core, n, self.prefix), names))
        threading.stack_size(STACK_BYTES)
        for name in names:
            agent = NodeAgent(
                self.api,
                name,
                SimulatedNode(),  # type: ignore[arg-type]
                watch_seconds=WATCH_SECONDS,
            )
            agent.resync = RESYNC
            agent.sync = _gated(agent.sync, self.gate)  # type: ignore[method-assign]
            self.agents.append(agent)
            threading.Thread(target=agent.run, daemon=True, name=f"agent-{name}").start()

    def stats(self) -> Mapping[str, int]:
        return {
            "nodes": self.count,
            "connected": sum(1 for a in self.agents if a.informer.synced.is_set()),
            "lists": sum(a.lists for a in self.agents),
        }

    def stop(self) -> None:
        for a in self.agents:
            a.close()


def shared_api(kubeconfig: str | None, connections: int) -> Api:
    """One API client for every simulated agent, with a connection pool that holds a watch
    per agent plus room for their writes."""
    load_config(kubeconfig)
    cfg = client.Configuration.get_default_copy()
    cfg.connection_pool_maxsize = connections
    api_client = client.ApiClient(cfg)
    return Api(client.CoreV1Api(api_client), client.CustomObjectsApi(api_client))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bpfglobals.k8s.simulator")
    ap.add_argument("--nodes", type=int, required=True)
    ap.add_argument("--prefix", default="sim")
    ap.add_argument("--stats", required=True, help="file the counters are written to")
    ap.add_argument("--kubeconfig")
    args = ap.parse_args(argv)
    logging.basicConfig(level=os.environ.get("BPFGLOBALS_LOG_LEVEL", "warning").upper())
    sys.setswitchinterval(SWITCH_INTERVAL)
    sim = Simulator(shared_api(args.kubeconfig, args.nodes + 64), args.prefix, args.nodes)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    sim.start()
    while not done.wait(1.0):
        tmp = f"{args.stats}.tmp"
        with open(tmp, "w") as f:
            json.dump(sim.stats(), f)
        os.replace(tmp, args.stats)
    sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
