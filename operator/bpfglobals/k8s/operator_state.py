"""What the operator's kopf handlers share, owned by one object kept in kopf's memo.

Handlers run on the event loop (the timer's check) and on kopf's worker threads (the
reconciles), so every access holds one lock; deleting a BpfProgram forgets everything kept
about it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor
from contextlib import contextmanager

from bpfglobals.k8s.controller import ProgramController

# The share of one core that reconciles on the timer may take. A reconcile reads every selected
# node (5,000 nodes: about 50 ms); ten programs rolling out, each reconciled on every 0.5 s tick,
# would take the operator's whole core, so at that size each program's tick comes less often.
BUDGET = 0.25


class OperatorState:
    def __init__(
        self, controller: ProgramController, executor: Executor | None, resync: float
    ) -> None:
        self.controller = controller
        self.executor = executor  # kopf's: the timer's reconciles run where the handlers do
        self.resync = resync
        self._lock = threading.Lock()
        self._dirty: set[str] = set()  # programs to reconcile on the next tick
        self._last: dict[str, float] = {}  # program -> when it was last reconciled (monotonic)
        self._cost: dict[str, float] = {}  # program -> seconds its last reconcile took
        self._node_facts: dict[str, object] = {}

    def starting(self, name: str) -> None:
        """A reconcile of `name` starts: cleared before reading, so an event that lands during
        it is not lost."""
        with self._lock:
            self._dirty.discard(name)
            self._last[name] = time.monotonic()

    @contextmanager
    def reconciling(self, name: str) -> Iterator[None]:
        """`starting`, then the reconcile, whose duration paces the timer's next ones."""
        self.starting(name)
        t = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                if name in self._last:
                    self._cost[name] = time.monotonic() - t

    def pace(self) -> float:
        """Seconds between two timer reconciles of one program, so that all of them together
        stay within `BUDGET` of a core."""
        with self._lock:
            return sum(self._cost.values()) / BUDGET

    def mark(self, name: str) -> None:
        """Reconcile `name` on the next tick (if it is still a live BpfProgram)."""
        with self._lock:
            if name in self._last:
                self._dirty.add(name)

    def failed(self, name: str) -> None:
        with self._lock:
            if name in self._last:
                self._dirty.add(name)

    def due(self, name: str) -> bool:
        pace = self.pace()
        with self._lock:
            since = time.monotonic() - self._last.get(name, 0)
            return (name in self._dirty and since >= pace) or since > self.resync

    def node_seen(self, node: str, facts: object | None) -> None:
        """A node appeared, went (None), or its facts changed (labels; with per-node values
        also annotations and addresses): every program re-selects and re-resolves."""
        now = dict(facts) if isinstance(facts, Mapping) else facts
        with self._lock:
            if self._node_facts.get(node, "unseen") != now:
                if now is None:
                    self._node_facts.pop(node, None)
                else:
                    self._node_facts[node] = now
                self._dirty.update(self._last)

    def forget(self, name: str) -> None:
        """`name` was deleted: drop its schedule and the controller's caches."""
        with self._lock:
            self._dirty.discard(name)
            self._last.pop(name, None)
            self._cost.pop(name, None)
        self.controller.forget(name)

    def tracked(self) -> set[str]:
        with self._lock:
            return set(self._last) | self._dirty
