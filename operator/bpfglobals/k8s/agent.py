"""The node agent: converges this node to its BpfProgramNode objects, reports what it did.

It watches only objects labelled with its node name (a server-side label selector, so an agent
costs the apiserver the same whatever the cluster size), drives the node reconcile core, and
writes each object's status only when it changed. Programs stay attached when the apiserver is
unreachable: the agent retries with backoff and re-adopts pinned state on restart.
"""

from __future__ import annotations

import datetime
import logging
import queue
import threading
import time
from typing import Any

from kubernetes import watch

from bpfglobals.errors import BpfGlobalsError
from bpfglobals.k8s.client import Api, is_not_found
from bpfglobals.k8s.metrics import API_WRITES, DURATION, LOADED, RECONCILES, Health
from bpfglobals.k8s.resources import (
    GROUP,
    LABEL_NODE,
    NODE_FINALIZER,
    PROGRAM_NODES,
    VERSION,
)
from bpfglobals.node.manifest import parse_spec
from bpfglobals.node.reconcile import NodeReconciler

log = logging.getLogger("bpfglobals.agent")
RESYNC = 30.0


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NodeAgent:
    def __init__(
        self,
        api: Api,
        node_name: str,
        node: NodeReconciler,
        health: Health | None = None,
    ) -> None:
        self.api = api
        self.node_name = node_name
        self.node = node
        # The watch thread's gc and the worker's apply/delete both change bpffs: one at a time.
        self.node_lock = threading.Lock()
        self.health = health or Health()
        self.queue: queue.Queue[str] = queue.Queue()
        self.objects: dict[str, dict] = {}  # latest seen, by object name
        self.stop = threading.Event()

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> None:
        worker = threading.Thread(target=self._worker, daemon=True, name="reconcile")
        worker.start()
        self.health.watch_worker(worker)
        backoff, connected = 1.0, False
        while not self.stop.is_set():
            try:
                version = self._relist()
                if not connected:
                    log.info(
                        "connected: %d BpfProgramNode(s) for %s", len(self.objects), self.node_name
                    )
                backoff, connected = 1.0, True
                self._watch(version)
            except Exception as e:  # apiserver gone, watch expired, ...: programs keep running
                connected = False
                log.warning("watch failed (%s); retrying in %.0fs", e, backoff)
                # Alive and retrying: an apiserver outage must not make kubelet restart agents.
                self.health.beat()
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _selector(self) -> str:
        return f"{LABEL_NODE}={self.node_name}"

    def _relist(self) -> str:
        listing = self.api.list(PROGRAM_NODES, self._selector())
        self.health.beat()
        seen = {o["metadata"]["name"]: o for o in listing["items"]}
        self.objects = seen
        self.collect_garbage()
        for name in seen:
            self.queue.put(name)
        return listing["metadata"]["resourceVersion"]

    def collect_garbage(self) -> list[str]:
        """Remove what no BpfProgramNode of this node owns. Objects being deleted still own
        their pins until their finalizer is handled."""
        with self.node_lock:
            removed = self.node.gc(self._in_flight_programs())
        for name in removed:
            log.info("removed %s: no BpfProgramNode for this node", name)
        return removed

    def _in_flight_programs(self) -> set[str]:
        return {o["spec"]["bpfProgram"] for o in self.objects.values()}

    def _watch(self, version: str) -> None:
        w = watch.Watch()
        deadline = time.monotonic() + RESYNC
        for ev in w.stream(
            self.api.custom.list_cluster_custom_object,
            GROUP,
            VERSION,
            PROGRAM_NODES,
            label_selector=self._selector(),
            resource_version=version,
            timeout_seconds=int(RESYNC),
            # A partition that drops packets silently must end the stream too, not hang it.
            _request_timeout=(10, RESYNC + 15),
        ):
            self.health.beat()
            obj = ev["object"]
            name = obj["metadata"]["name"]
            if ev["type"] == "DELETED":
                self.objects.pop(name, None)
            else:
                self.objects[name] = obj
                self.queue.put(name)
            if self.stop.is_set() or time.monotonic() > deadline:
                w.stop()
        # the stream ended: relist (level-triggered resync) in the caller's loop

    def _worker(self) -> None:
        while not self.stop.is_set():
            try:
                name = self.queue.get(timeout=1)
            except queue.Empty:
                continue
            obj = self.objects.get(name)
            if obj is None:
                continue
            try:
                with self.health.working(name):
                    self.handle(obj)
            except Exception:
                log.exception("reconciling %s", name)

    # -- one object -----------------------------------------------------------------------------

    def handle(self, obj: dict) -> None:
        with DURATION.labels("agent").time():
            meta, spec = obj["metadata"], obj["spec"]
            if meta.get("deletionTimestamp"):
                self._remove(obj)
                return
            status = obj.get("status") or {}
            try:
                applied = self._apply(spec)
                new = {
                    "observedGeneration": meta.get("generation", 1),
                    "phase": "Ready",
                    # What the node computed from what it applied: the operator rolls on
                    # when this equals the desired hash it wrote into the spec.
                    "configHash": applied["configHash"],
                    "message": "",
                    "loadedAt": applied["loadedAt"],
                    "programs": applied["programs"],
                    "maps": applied["maps"],
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "Applied",
                            "message": f"running {applied['configHash']}",
                        }
                    ],
                }
                RECONCILES.labels("agent", "ok").inc()
            except BpfGlobalsError as e:
                # The running configuration stays; report what failed and why.
                new = {
                    **status,
                    "observedGeneration": meta.get("generation", 1),
                    "phase": "Failed",
                    "message": str(e)[-2000:],
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "False",
                            "reason": type(e).__name__,
                            "message": str(e)[-2000:],
                        }
                    ],
                }
                RECONCILES.labels("agent", "error").inc()
            with self.node_lock:
                LOADED.set(len(self.node.names()))
            if new != status:
                try:
                    self.api.patch_status(PROGRAM_NODES, meta["name"], {"status": new})
                    API_WRITES.labels("agent", "status").inc()
                except Exception as e:
                    if not is_not_found(e):
                        raise

    def _apply(self, spec: dict) -> dict[str, Any]:
        manifest = parse_spec(spec["bpfProgram"], spec["program"], require_sha256=True)
        with self.node_lock:
            return self.node.apply(manifest).status.to_dict()

    def _remove(self, obj: dict) -> None:
        meta = obj["metadata"]
        with self.node_lock:
            self.node.delete(obj["spec"]["bpfProgram"])
        finalizers = [f for f in meta.get("finalizers") or [] if f != NODE_FINALIZER]
        try:
            self.api.patch(
                PROGRAM_NODES,
                meta["name"],
                [
                    {
                        "op": "test",
                        "path": "/metadata/resourceVersion",
                        "value": meta["resourceVersion"],
                    },
                    {"op": "replace", "path": "/metadata/finalizers", "value": finalizers},
                ],
            )
            API_WRITES.labels("agent", "finalizer").inc()
        except Exception as e:
            if not is_not_found(e):
                raise
