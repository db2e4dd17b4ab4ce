"""The agent and its health: a gc and an apply never run at once on the node's bpffs state
(whichever thread calls them), and a reconcile that hangs turns /healthz red."""

from __future__ import annotations

import hashlib
import threading
import time
import urllib.error
import urllib.request

from bpfglobals.k8s.agent import SYNC, NodeAgent
from bpfglobals.k8s.metrics import Health, serve
from bpfglobals.node.reconcile import NodeReconciler
from tests.unit.test_metrics import free_port


class Timed(NodeReconciler):
    """The real reconciler, noting when each apply and gc ran (to check they never overlap)."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.spans: list[tuple[str, float, float]] = []

    def apply(self, *a, **k):
        t = time.monotonic()
        try:
            return super().apply(*a, **k)
        finally:
            self.spans.append(("apply", t, time.monotonic()))

    def gc(self, *a, **k):
        t = time.monotonic()
        try:
            return super().gc(*a, **k)
        finally:
            self.spans.append(("gc", t, time.monotonic()))


def entry(elf, cgroup: str, forced: int) -> dict:
    """A BpfNode's entry for program p."""
    attach = {"cgroup": {"path": cgroup, "type": "cgroup_skb/ingress"}}
    program = {
        "elf": {"path": str(elf), "sha256": hashlib.sha256(elf.read_bytes()).hexdigest()},
        "programs": [{"name": "cg_ingress", "attach": attach}],
        "globals": {"forced_verdict": forced},
    }
    return {"uid": "u", "configHash": "", "program": program}


def test_gc_and_apply_never_run_at_once(bpf_object, node_root, cgroup_dir) -> None:
    root, cgroup = node_root, cgroup_dir
    node = Timed(root)
    agent = NodeAgent(None, "n1", node, Health())
    elf = bpf_object("live")
    agent.wanted = {"p": entry(elf, cgroup, 0)}
    done = threading.Event()

    def collect() -> None:
        while not done.is_set():
            assert agent.collect_garbage() == []  # p is wanted: never removed

    gc_thread = threading.Thread(target=collect)
    gc_thread.start()
    try:
        for i in range(12):  # .rodata changes: a new variant each time
            agent._apply("p", entry(elf, cgroup, i % 3 + 1))
    finally:
        done.set()
        gc_thread.join()
    applies = [(a, b) for kind, a, b in node.spans if kind == "apply"]
    gcs = [(a, b) for kind, a, b in node.spans if kind == "gc"]
    assert len(applies) == 12 and len(gcs) > 12
    overlaps = [(x, y) for x in applies for y in gcs if x[0] < y[1] and y[0] < x[1]]
    assert overlaps == []
    assert node.get("p") is not None and node.delete("p")


def healthz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_a_stuck_apply_turns_healthz_red(bpf_object, node_root, cgroup_dir) -> None:
    root, cgroup = node_root, cgroup_dir
    health = Health(grace=60, stuck_after=0.5)
    port = free_port()
    serve("127.0.0.1", 0, port, health)
    node = NodeReconciler(root)
    agent = NodeAgent(None, "n1", node, health)
    worker = threading.Thread(target=agent._worker, daemon=True)
    worker.start()
    health.watch_worker(worker)
    assert healthz(port) == (200, "ok\n")
    with agent.node_lock:  # a hung gc (or bpf(2) call) holds the node: the apply waits
        agent.wanted = {"p": entry(bpf_object("live"), cgroup, 0)}
        agent.reports = {}  # listed: none (this agent has no apiserver; its report write fails)
        agent.queue.put(SYNC)
        time.sleep(1.0)
        code, text = healthz(port)
        assert code == 503 and "reconciling p" in text and "(stuck)" in text
    deadline = time.monotonic() + 10
    while node.get("p") is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert node.get("p") is not None  # it went through once the node was free
    while healthz(port)[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert healthz(port) == (200, "ok\n")
    agent.close()  # stop, and wake the worker (it sleeps until work or its next resync)
    worker.join(timeout=5)
    assert not worker.is_alive()
    code, text = healthz(port)  # a worker that is gone is unhealthy too
    assert code == 503 and "worker thread has exited" in text
    node.delete("p")
