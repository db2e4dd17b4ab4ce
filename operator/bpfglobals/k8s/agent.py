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
import random
import threading
import time
from typing import Any

from kubernetes import client, watch

from bpfglobals.errors import BpfGlobalsError
from bpfglobals.k8s.client import Api, is_not_found
from bpfglobals.k8s.metrics import API_LISTS, API_WRITES, DURATION, LOADED, RECONCILES, Health
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
RESYNC = 30.0  # seconds between re-checks of the node against the objects held (no API call)
# A watch request ends after this many seconds (randomised, as client-go's reflector does, so
# that thousands of agents do not reconnect in step) and resumes where it stopped.
WATCH_SECONDS = (240, 300)
# No byte for this long (the apiserver sends a bookmark about once a minute): the connection
# is dead (a partition that drops packets silently); resume on a new one.
READ_TIMEOUT = 90
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
        self.stop = threading.Event()
        self.lists = 0  # LISTs made (steady state: one per process, and one per 410)
        self.version: str | None = None  # the resourceVersion the next watch resumes from
        self.resync = RESYNC

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> None:
        worker = threading.Thread(target=self._worker, daemon=True, name="reconcile")
        worker.start()
        self.health.watch_worker(worker)
        backoff = 1.0
        while not self.stop.is_set():
            try:
                if self.version is None:
                    self.version = self._relist()
                    log.info(
                        "connected: %d BpfProgramNode(s) for %s", len(self.objects), self.node_name
                    )
                self.version = self._watch(self.version)
                backoff = 1.0
            except client.ApiException as e:
                if e.status == 410:  # our version was compacted away: the one reason to relist
                    log.info("watch: resourceVersion %s is gone; relisting", self.version)
                    self.version = None
                    continue
                self._retry(e, backoff)
                backoff = min(backoff * 2, 30.0)
            except Exception as e:  # apiserver gone, connection reset, ...: programs keep running
                self._retry(e, backoff)
                backoff = min(backoff * 2, 30.0)

    def close(self) -> None:
        """Stop the loops (the watch ends with its request, the worker at once)."""
        self.stop.set()
        self.queue.put(GC)

    def _retry(self, e: Exception, backoff: float) -> None:
        """Resume the watch (from the version held) after `backoff` seconds."""
        log.warning("watch failed (%s); retrying in %.0fs", e, backoff)
        # Alive and retrying: an apiserver outage must not make kubelet restart agents.
        self.health.beat()
        self.stop.wait(backoff)

    def _selector(self) -> str:
        return f"{LABEL_NODE}={self.node_name}"

    def _relist(self) -> str:
        listing = self.api.list(PROGRAM_NODES, self._selector())
        self.lists += 1
        API_LISTS.labels("agent").inc()
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

    def _watch(self, version: str) -> str:
        """One watch request from `version`; returns the version to resume from."""
        w = watch.Watch()
        for ev in w.stream(
            self.api.custom.list_cluster_custom_object,
            GROUP,
            VERSION,
            PROGRAM_NODES,
            label_selector=self._selector(),
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=random.randint(*WATCH_SECONDS),
            _request_timeout=(10, READ_TIMEOUT),
        ):
            self.health.beat()
            kind, obj = ev["type"], ev["object"]
            if kind == "DELETED":
                self.objects.pop(obj["metadata"]["name"], None)
                self.queue.put(GC)
            elif kind != "BOOKMARK":
                name = obj["metadata"]["name"]
                self.objects[name] = obj
                self.queue.put(name)
            if self.stop.is_set():
                w.stop()
        # the server ended the request (its timeout): resume from the last version seen
        return w.resource_version or version

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
