"""Writes the BpfNodes: what each node should run.

Reconciles of different programs ask for changes on the same nodes at about the same time (a
create of ten programs, a rollout wave of each): the writer holds each node's pending changes for
`LINGER` seconds and sends them in one request, so a node costs one write per wave rather than
one per program. A few workers write different nodes in parallel (each write mostly waits on
the apiserver); one node's writes stay in order. The operator is the only writer of BpfNodes, so
the last answer it got for a node is that node's BpfNode (until the watch shows it too).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from bpfglobals.k8s.client import Api, is_not_found
from bpfglobals.k8s.metrics import API_WRITES
from bpfglobals.k8s.resources import API_VERSION, LABEL_NODE, NODES

log = logging.getLogger("bpfglobals.operator")

LINGER = 0.5  # seconds a node's first pending change waits for others
WORKERS = 8
RETRY = 1.0  # seconds before a failed write is tried again

Entry = Mapping[str, Any]  # {uid, configHash, program}
DROP = None  # as a pending change: remove the program from the node
_GONE = object()  # as a pending change: the Node is gone, delete its BpfNode


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


class NodeWriter:
    def __init__(
        self,
        api: Api,
        asked: Callable[[str], dict[str, str] | None],
        workers: int = WORKERS,
        linger: float = LINGER,
    ) -> None:
        """`asked(node)`: the watch's view of the node's BpfNode entries (None: none)."""
        self.api, self.asked, self.linger = api, asked, linger
        self._cv = threading.Condition()
        # node -> (when its first pending change came, program -> entry or DROP); or _GONE
        self._pending: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._busy: set[str] = set()
        self._known: dict[str, set[str] | None] = {}  # node -> its programs, per our last write
        self._stop = False
        self.writes = 0
        for i in range(workers):
            threading.Thread(target=self._work, daemon=True, name=f"node-writer-{i}").start()

    # -- asking ---------------------------------------------------------------------------------

    def set(self, node: str, program: str, entry: Entry) -> None:
        self._add(node, {program: dict(entry)})

    def drop(self, node: str, program: str) -> None:
        self._add(node, {program: DROP})

    def node_gone(self, node: str) -> None:
        """The Node was deleted: delete its BpfNode (pending changes to it are moot)."""
        with self._cv:
            self._pending.pop(node, None)
            self._pending[node] = (time.monotonic(), _GONE)
            self._cv.notify()

    def idle(self) -> bool:
        with self._cv:
            return not self._pending and not self._busy

    def close(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()

    def _add(self, node: str, changes: dict[str, Any]) -> None:
        with self._cv:
            since, held = self._pending.get(node, (time.monotonic(), {}))
            if held is _GONE:
                held = {}
            self._pending[node] = (since, {**held, **changes})
            self._cv.notify()

    # -- writing --------------------------------------------------------------------------------

    def _next(self) -> tuple[str, Any] | None:
        """The oldest node not being written whose changes have lingered; waits for one."""
        with self._cv:
            while not self._stop:
                now, wait = time.monotonic(), 1.0
                for node, (since, changes) in self._pending.items():
                    if node in self._busy:
                        continue
                    due = since + self.linger
                    if due <= now:
                        del self._pending[node]
                        self._busy.add(node)
                        return node, changes
                    wait = min(wait, due - now)
                    break  # ordered by arrival: the others are due later
                self._cv.wait(wait)
            return None

    def _work(self) -> None:
        while (job := self._next()) is not None:
            node, changes = job
            try:
                self._write(node, changes)
            except Exception as e:
                log.warning("writing bpfnode %s failed (%s); retrying", node, e)
                time.sleep(RETRY)
                with self._cv:  # newer changes win over the failed ones
                    since, newer = self._pending.pop(node, (time.monotonic(), {}))
                    if changes is _GONE or newer is _GONE:
                        merged: Any = newer if newer is _GONE else {}
                    else:
                        merged = {**changes, **newer}
                    self._pending[node] = (since, merged)
            finally:
                with self._cv:
                    self._busy.discard(node)
                    self._cv.notify_all()

    def _programs(self, node: str) -> set[str] | None:
        if node in self._known:
            return self._known[node]
        asked = self.asked(node)
        return None if asked is None else set(asked)

    def _write(self, node: str, changes: Any) -> None:
        if changes is _GONE:
            self._delete(node)
            self._known.pop(node, None)  # a node of the same name may come back
            return
        have = self._programs(node)
        sets = {p: e for p, e in changes.items() if e is not DROP}
        if have is None:
            if sets:
                self._create(node, sets)
            return
        after = (have - changes.keys()) | sets.keys()
        if not after:
            self._delete(node)
            return
        ops: list[dict[str, Any]] = [
            {"op": "add", "path": f"/spec/programs/{_pointer(p)}", "value": e}
            for p, e in sets.items()
        ]
        ops += [
            {"op": "remove", "path": f"/spec/programs/{_pointer(p)}"}
            for p, e in changes.items()
            if e is DROP and p in have
        ]
        if not ops:
            return
        try:
            body = self.api.patch(NODES, node, ops)
        except Exception as e:
            status = getattr(e, "status", None)
            if is_not_found(e):  # deleted behind our back: start it again
                self._known[node] = None
                if sets:
                    self._create(node, sets)
                return
            if status == 422:  # removed an entry that was not there: ask what is
                self._learn(node)
            raise
        self._count("update")
        self._known[node] = set((body.get("spec") or {}).get("programs") or {})

    def _learn(self, node: str) -> None:
        """Read the node's BpfNode: what it holds, whatever we believed."""
        try:
            body = self.api.get(NODES, node)
        except Exception as e:
            if not is_not_found(e):
                raise
            self._known[node] = None
            return
        self._known[node] = set((body.get("spec") or {}).get("programs") or {})

    def _create(self, node: str, programs: Mapping[str, Entry]) -> None:
        obj = {
            "apiVersion": API_VERSION,
            "kind": "BpfNode",
            "metadata": {"name": node, "labels": {LABEL_NODE: node}},
            "spec": {"nodeName": node, "programs": dict(programs)},
        }
        try:
            self.api.create_obj(NODES, obj)
        except Exception as e:
            if getattr(e, "status", None) != 409:
                raise
            # there already (a previous operator wrote it): learn it, then patch next time
            self._learn(node)
            raise
        self._count("create")
        self._known[node] = set(programs)

    def _delete(self, node: str) -> None:
        try:
            self.api.delete(NODES, node)
            self._count("delete")
        except Exception as e:
            if not is_not_found(e):
                raise
        self._known[node] = None

    def _count(self, verb: str) -> None:
        self.writes += 1
        API_WRITES.labels("operator", f"bpfnode-{verb}").inc()
