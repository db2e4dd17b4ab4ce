"""The node agent: converges this node to its BpfNode, reports each program it runs.

It watches exactly one object, its node's BpfNode, by name (`metadata.name=<node>`: the
apiserver offers such a watch only that object's events, so an agent costs the apiserver the
same whatever the cluster size). For each program the BpfNode asks for it drives the node
reconcile core and writes that program's report, a BpfProgramNode, only when the report
changed; a program the BpfNode no longer holds is detached and only then is its report
deleted (what a delete of the BpfProgram waits for). Programs stay attached when the apiserver
is unreachable: the agent retries with backoff and re-adopts pinned state on restart.

In steady state an agent LISTs nothing: its watch resumes from the last resourceVersion it saw
(watch bookmarks keep that current while nothing changes), and only `410 Gone` makes it list
its BpfNode again. At start it also lists its own reports once, to delete those of programs
it no longer runs. Every `RESYNC` seconds it re-applies every program (level-triggered: one
detached by hand comes back) without asking the apiserver.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping
from typing import Any

from bpfglobals.errors import BpfGlobalsError
from bpfglobals.k8s.client import Api, is_not_found
from bpfglobals.k8s.informer import WATCH_SECONDS, Informer
from bpfglobals.k8s.metrics import API_WRITES, DURATION, LOADED, RECONCILES, Health
from bpfglobals.k8s.resources import (
    API_VERSION,
    LABEL_NODE,
    LABEL_PROGRAM,
    NODES,
    PROGRAM_NODES,
    node_object_name,
)
from bpfglobals.node.manifest import parse_spec
from bpfglobals.node.reconcile import NodeReconciler

log = logging.getLogger("bpfglobals.agent")
RESYNC = 30.0  # seconds between re-applies of every program (no API call)
SYNC, STOP = "sync", "stop"  # queued work
RETRY = (1.0, 30.0)  # seconds: first and longest wait before a failed sync is tried again


def id_columns(programs: list[dict[str, Any]]) -> dict[str, str]:
    """The kernel IDs as `kubectl get bpfprogramnodes` shows them (a printer column shows
    one value of a list; these strings show all)."""
    return {
        "programIds": ",".join(str(p["id"]) for p in programs),
        "linkIds": ",".join(str(link["id"]) for p in programs for link in p.get("links", [])),
    }


def ready_status(applied: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "phase": "Ready",
        # What the node computed from what it applied: the operator rolls on when this
        # equals the hash its BpfNode asks for.
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


def failed_status(previous: Mapping[str, Any], e: Exception) -> dict[str, Any]:
    """The running configuration stays (and so do its IDs): report what failed and why."""
    why = str(e)[-2000:]
    return {
        **previous,
        "phase": "Failed",
        "message": why,
        "conditions": [
            {"type": "Ready", "status": "False", "reason": type(e).__name__, "message": why}
        ],
    }


class NodeAgent:
    def __init__(
        self,
        api: Api,
        node_name: str,
        node: NodeReconciler,
        health: Health | None = None,
        watch_seconds: tuple[int, int] = WATCH_SECONDS,
    ) -> None:
        self.api = api
        self.node_name = node_name
        self.node = node
        # The worker applies, the resync and gc run in it too; the lock guards the node core
        # against anything else that reaches it (tests, a CLI in the same process).
        self.node_lock = threading.Lock()
        self.health = health or Health()
        self.queue: queue.Queue[str] = queue.Queue()
        self.resync = RESYNC
        self._lock = threading.Lock()
        self.wanted: dict[str, dict] | None = None  # its BpfNode's programs (None: not listed)
        self.applied: dict[str, dict] = {}  # program -> the entry last applied
        self.reports: dict[str, dict] | None = None  # program -> the report last written
        self.report_lists = 0
        self.informer = Informer(
            api,
            NODES,
            "",
            self._listed,
            self._event,
            self.health.beat,
            field_selector=f"metadata.name={node_name}",
            watch_seconds=watch_seconds,
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
        return self.informer.lists + self.report_lists

    @property
    def version(self) -> str | None:
        return self.informer.version

    @version.setter
    def version(self, value: str | None) -> None:
        self.informer.version = value

    def close(self) -> None:
        """Stop the loops (the watch ends with its request, the worker at once)."""
        self.stop.set()
        self.queue.put(STOP)

    def _listed(self, items: list[dict]) -> None:
        self._want(items[0] if items else None)
        log.info("connected: %d program(s) for %s", len(self.wanted or {}), self.node_name)

    def _event(self, kind: str, obj: dict) -> None:
        self._want(None if kind == "DELETED" else obj)

    def _want(self, bpfnode: dict | None) -> None:
        programs = ((bpfnode or {}).get("spec") or {}).get("programs") or {}
        with self._lock:
            self.wanted = dict(programs)
        self.queue.put(SYNC)

    def _worker(self) -> None:
        # Sleeps until work, a retry or the next resync (no polling: a simulator runs thousands).
        due = time.monotonic() + self.resync
        retry_at, backoff = None, RETRY[0]
        while not self.stop.is_set():
            now = time.monotonic()
            wake = due if retry_at is None else min(due, retry_at)
            full = now >= due
            if not full and (retry_at is None or now < retry_at):
                try:
                    item = self.queue.get(timeout=max(wake - now, 0.01))
                except queue.Empty:
                    continue
                if item == STOP:
                    return
                self._drain()  # many events, one sync
            if full:
                due = time.monotonic() + self.resync
            if self.sync(full=full):
                retry_at, backoff = None, RETRY[0]
            else:
                retry_at, backoff = time.monotonic() + backoff, min(backoff * 2, RETRY[1])

    def _drain(self) -> None:
        try:
            while True:
                if self.queue.get_nowait() == STOP:
                    self.stop.set()
        except queue.Empty:
            pass

    # -- one sync -------------------------------------------------------------------------------

    def sync(self, full: bool = False) -> bool:
        """Converge the node to its BpfNode and report; False if anything must be retried.
        `full`: re-apply every program, changed or not."""
        with self._lock:
            if self.wanted is None:
                return True  # not listed yet: nothing is known, nothing is removed
            wanted = dict(self.wanted)
        ok = True
        try:
            if self.reports is None:
                self.reports = self._list_reports()
        except Exception:
            log.exception("listing the reports of %s", self.node_name)
            return False
        for program, entry in wanted.items():
            if not full and self.applied.get(program) == entry and program in self.reports:
                continue
            with self.health.working(program):
                ok &= self._safely(self._converge, program, entry)
        ok &= self._safely(self.collect_garbage, set(wanted))
        with self.node_lock:
            LOADED.set(len(self.node.names()))
        return ok

    @staticmethod
    def _safely(fn: Any, *args: Any) -> bool:
        try:
            fn(*args)
            return True
        except Exception:
            log.exception("%s%s", getattr(fn, "__name__", fn), args[:1])
            return False

    def _converge(self, program: str, entry: dict) -> None:
        """Apply one program and write its report if it changed."""
        assert self.reports is not None
        with DURATION.labels("agent").time():
            previous = (self.reports.get(program) or {}).get("status") or {}
            try:
                status = ready_status(self._apply(program, entry))
                RECONCILES.labels("agent", "ok").inc()
            except BpfGlobalsError as e:
                status = failed_status(previous, e)
                RECONCILES.labels("agent", "error").inc()
            self.applied[program] = entry
            try:
                self._report(program, entry, status)
            except Exception:
                self.applied.pop(program, None)  # written next time round
                raise

    def _apply(self, program: str, entry: Mapping[str, Any]) -> dict[str, Any]:
        manifest = parse_spec(program, entry.get("program") or {}, require_sha256=True)
        with self.node_lock:
            return self.node.apply(manifest).status.to_dict()

    def collect_garbage(self, wanted: set[str] | None = None) -> list[str]:
        """Remove what the BpfNode does not ask for; then delete those programs' reports (a
        report gone means: detached)."""
        if wanted is None:
            with self._lock:
                if self.wanted is None:
                    return []
                wanted = set(self.wanted)
        with self.node_lock:
            removed = self.node.gc(wanted)
        for name in removed:
            log.info("removed %s: its BpfNode does not ask for it", name)
        for program in [p for p in self.reports or {} if p not in wanted]:
            self._delete_report(program)
            self.applied.pop(program, None)
        return removed

    # -- reports --------------------------------------------------------------------------------

    def _list_reports(self) -> dict[str, dict]:
        items = self.api.list(PROGRAM_NODES, f"{LABEL_NODE}={self.node_name}")["items"]
        self.report_lists += 1
        return {
            o["spec"]["bpfProgram"]: {k: o.get(k) for k in ("metadata", "spec", "status")}
            for o in items
            if (o.get("spec") or {}).get("nodeName") == self.node_name
        }

    def _report(self, program: str, entry: Mapping[str, Any], status: dict[str, Any]) -> None:
        assert self.reports is not None
        body = {
            "metadata": {
                "name": node_object_name(program, self.node_name),
                # No ownerReferences: the garbage collector would delete a report whose owner's
                # uid it does not find, behind the agent's back (it writes only what changed).
                # The agent deletes its reports; the operator those of nodes that are gone.
                "labels": {LABEL_PROGRAM: program, LABEL_NODE: self.node_name},
            },
            "spec": {
                "bpfProgram": program,
                "nodeName": self.node_name,
                "configHash": entry.get("configHash", ""),
            },
            "status": status,
        }
        old = self.reports.get(program)
        if old is not None and all(old.get(k) == body[k] for k in ("spec", "status")):
            return
        if old is None:
            self._create_report(body)
        else:
            self._replace_report(body)
        self.reports[program] = body

    def _create_report(self, body: dict[str, Any], fall_back: bool = True) -> None:
        """`fall_back`: on 409 patch instead (once: a create and a delete racing each other
        end in an error for the next sync to retry, not in a loop)."""
        try:
            self.api.create_obj(
                PROGRAM_NODES, {"apiVersion": API_VERSION, "kind": "BpfProgramNode", **body}
            )
            API_WRITES.labels("agent", "report").inc()
        except Exception as e:
            if getattr(e, "status", None) != 409 or not fall_back:
                raise
            self._replace_report(body, fall_back=False)  # there from before a restart

    def _replace_report(self, body: dict[str, Any], fall_back: bool = True) -> None:
        ops = [
            {"op": "add", "path": "/spec", "value": body["spec"]},
            {"op": "add", "path": "/status", "value": body["status"]},
        ]
        try:
            self.api.patch(PROGRAM_NODES, body["metadata"]["name"], ops)
            API_WRITES.labels("agent", "report").inc()
        except Exception as e:
            if not is_not_found(e) or not fall_back:
                raise
            self._create_report(body, fall_back=False)  # deleted meanwhile (operator, a user)

    def _delete_report(self, program: str) -> None:
        try:
            self.api.delete(PROGRAM_NODES, node_object_name(program, self.node_name))
            API_WRITES.labels("agent", "report-delete").inc()
        except Exception as e:
            if not is_not_found(e):
                raise
        assert self.reports is not None
        self.reports.pop(program, None)
