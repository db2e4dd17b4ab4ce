"""The node agent: converges this node to its BpfProgramNode objects, reports what it did.

It watches only objects labelled with its node name (a server-side label selector, so an agent
costs the apiserver the same whatever the cluster size), drives the node reconcile core, and
writes each object's status only when it changed. Programs stay attached when the apiserver is
unreachable: the agent retries with backoff and re-adopts pinned state on restart.

In steady state an agent LISTs once: each watch resumes from the last resourceVersion it saw
(watch bookmarks keep that current while nothing changes), and only `410 Gone` (the version
was compacted away) makes it list again. Every `RESYNC` seconds it re-checks its node against
the objects it holds (and removes what none asks for) without asking the apiserver.
"""

from __future__ import annotations

import datetime
import logging
import queue
import threading
import time
from typing import Any

from bpfglobals.errors import BpfGlobalsError
from bpfglobals.k8s.client import Api, is_not_found
from bpfglobals.k8s.informer import Informer
from bpfglobals.k8s.metrics import API_WRITES, DURATION, LOADED, RECONCILES, Health
from bpfglobals.k8s.resources import (
    LABEL_NODE,
    NODE_FINALIZER,
    PROGRAM_NODES,
)
from bpfglobals.node.manifest import parse_spec
from bpfglobals.node.reconcile import NodeReconciler

log = logging.getLogger("bpfglobals.agent")
RESYNC = 30.0  # seconds between re-checks of the node against the objects held (no API call)
GC = ""  # queued: collect garbage (an object went away)


def id_columns(programs: list[dict[str, Any]]) -> dict[str, str]:
    """The kernel IDs as `kubectl get bpfprogramnodes` shows them (a printer column shows
    one value of a list; these strings show all)."""
    return {
        "programIds": ",".join(str(p["id"]) for p in programs),
        "linkIds": ",".join(str(link["id"]) for p in programs for link in p.get("links", [])),
    }


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
        self.resync = RESYNC
        # Watches only objects labelled with this node's name (a server-side label selector).
        self.informer = Informer(
            api,
            PROGRAM_NODES,
            f"{LABEL_NODE}={node_name}",
            self._listed,
            self._event,
            self.health.beat,
        )
        self.stop = self.informer.stop

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> None:
        worker = threading.Thread(target=self._worker, daemon=True, name="reconcile")
        worker.start()
        self.health.watch_worker(worker)
        self.informer.run()

    @property
    def lists(self) -> int:
        return self.informer.lists

    @property
    def version(self) -> str | None:
        return self.informer.version

    @version.setter
    def version(self, value: str | None) -> None:
        self.informer.version = value

    def close(self) -> None:
        """Stop the loops (the watch ends with its request, the worker at once)."""
        self.stop.set()
        self.queue.put(GC)

    def _listed(self, items: list[dict]) -> None:
        self.objects = {o["metadata"]["name"]: o for o in items}
        log.info("connected: %d BpfProgramNode(s) for %s", len(self.objects), self.node_name)
        self.collect_garbage()
        for name in self.objects:
            self.queue.put(name)

    def _event(self, kind: str, obj: dict) -> None:
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            self.objects.pop(name, None)
            self.queue.put(GC)
        else:
            self.objects[name] = obj
            self.queue.put(name)

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

    def _worker(self) -> None:
        # Sleeps until work or the next resync (no polling: a simulator runs thousands).
        due = time.monotonic() + self.resync
        while not self.stop.is_set():
            if time.monotonic() >= due:
                due = time.monotonic() + self.resync
                self._resync()
            try:
                name = self.queue.get(timeout=max(due - time.monotonic(), 0.01))
            except queue.Empty:
                continue
            if name == GC:
                self._safely(self.collect_garbage)
                continue
            obj = self.objects.get(name)
            if obj is None:
                continue
            with self.health.working(name):
                self._safely(self.handle, obj)

    def _resync(self) -> None:
        """Level-triggered, from what the watch delivered: remove what no object asks for, and
        re-check every object (a program someone detached by hand comes back)."""
        self._safely(self.collect_garbage)
        for name in list(self.objects):
            self.queue.put(name)

    @staticmethod
    def _safely(fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("%s%s", getattr(fn, "__name__", fn), args[:1])

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
                    **id_columns(applied["programs"]),
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
