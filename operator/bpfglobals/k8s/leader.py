"""Leader election on a `coordination.k8s.io/v1` Lease, as kube-controller-manager does it:
only the holder reconciles and writes; a standby takes the Lease over once the holder has not
renewed it for the lease duration (as observed on the standby's own clock: no clock skew
between the two matters).

The holder renews every retry period; if no renewal succeeded within the renew deadline it
stops at once (the process exits), so two operators never both act: the standby waits the
full lease duration, which is longer than the renew deadline.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bpfglobals.errors import BpfGlobalsError
from bpfglobals.k8s.client import TIMEOUT

log = logging.getLogger("bpfglobals.leader")


@dataclass(frozen=True)
class LeaseConfig:
    name: str = "bpfglobals-operator"
    namespace: str = "default"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise BpfGlobalsError(
                "leader election: need lease duration > renew deadline > retry period > 0, got "
                f"{self.lease_duration}/{self.renew_deadline}/{self.retry_period} s"
            )


@dataclass(frozen=True)
class Holder:
    """What the Lease says: who holds it, and the renew stamp that changes on each renewal."""

    identity: str
    renew_time: str
    duration: float
    transitions: int


def _micro_time(t: datetime.datetime | None = None) -> str:
    return (t or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Observer:
    """Decides whether this candidate may write itself into the Lease: it is free (no holder),
    ours, or its holder's renew stamp has not moved for the holder's lease duration."""

    def __init__(self, identity: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.identity = identity
        self.clock = clock
        self._seen: tuple[str, str] | None = None
        self._seen_at = 0.0

    def may_take(self, holder: Holder) -> bool:
        if not holder.identity or holder.identity == self.identity:
            return True
        key = (holder.identity, holder.renew_time)
        if key != self._seen:  # the holder renewed (or a new one): its lease runs from now
            self._seen, self._seen_at = key, self.clock()
            return False
        return self.clock() - self._seen_at >= holder.duration


class LeaderElector:
    def __init__(self, coordination: Any, config: LeaseConfig, identity: str) -> None:
        self.api = coordination  # kubernetes.client.CoordinationV1Api
        self.config = config
        self.identity = identity
        self.observer = Observer(identity)
        self.stop = threading.Event()

    def _holder(self, lease: Any) -> Holder:
        spec = lease.spec
        renew = spec.renew_time.isoformat() if spec.renew_time else ""
        return Holder(
            spec.holder_identity or "",
            renew,
            float(spec.lease_duration_seconds or self.config.lease_duration),
            spec.lease_transitions or 0,
        )

    def _body(self, holder: Holder | None, resource_version: str | None) -> dict[str, Any]:
        now = _micro_time()
        meta: dict[str, Any] = {"name": self.config.name, "namespace": self.config.namespace}
        if resource_version:
            meta["resourceVersion"] = resource_version
        changed = holder is None or holder.identity != self.identity
        transitions = 0 if holder is None else holder.transitions + (1 if changed else 0)
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.config.lease_duration),
            "renewTime": now,
            "leaseTransitions": transitions,
        }
        if changed:
            spec["acquireTime"] = now
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": spec,
        }

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this candidate holds the Lease afterwards."""
        c = self.config
        try:
            lease = self.api.read_namespaced_lease(c.name, c.namespace, _request_timeout=TIMEOUT)
        except Exception as e:
            if getattr(e, "status", None) != 404:
                log.warning("reading lease %s/%s: %s", c.namespace, c.name, e)
                return False
            return self._write(None, None)
        holder = self._holder(lease)
        if not self.observer.may_take(holder):
            return False
        if holder.identity and holder.identity != self.identity:
            log.info(
                "lease %s/%s: holder %s stopped renewing; taking over",
                c.namespace,
                c.name,
                holder.identity,
            )
        return self._write(holder, lease.metadata.resource_version)

    def _write(self, holder: Holder | None, resource_version: str | None) -> bool:
        c = self.config
        body = self._body(holder, resource_version)
        try:
            if resource_version is None:
                self.api.create_namespaced_lease(c.namespace, body, _request_timeout=TIMEOUT)
            else:
                # resourceVersion makes this a compare-and-swap: of two candidates one wins
                self.api.replace_namespaced_lease(
                    c.name, c.namespace, body, _request_timeout=TIMEOUT
                )
            return True
        except Exception as e:
            if getattr(e, "status", None) != 409:
                log.warning("writing lease %s/%s: %s", c.namespace, c.name, e)
            return False

    def acquire(self) -> bool:
        """Block until this candidate holds the Lease (False: stopped first)."""
        log.info(
            "waiting for lease %s/%s as %s", self.config.namespace, self.config.name, self.identity
        )
        while not self.stop.is_set():
            if self.try_acquire_or_renew():
                log.info("became leader (lease %s/%s)", self.config.namespace, self.config.name)
                return True
            self.stop.wait(self.config.retry_period)
        return False

    def keep(self, on_lost: Callable[[], None]) -> threading.Thread:
        """Renew in the background; call `on_lost` when the renew deadline passes without a
        successful renewal."""

        def renew() -> None:
            last = time.monotonic()
            while not self.stop.wait(self.config.retry_period):
                if self.try_acquire_or_renew():
                    last = time.monotonic()
                elif time.monotonic() - last > self.config.renew_deadline:
                    log.error("lost the lease (no renewal for %.0fs)", time.monotonic() - last)
                    on_lost()
                    return

        t = threading.Thread(target=renew, daemon=True, name="lease-renew")
        t.start()
        return t

    def release(self) -> None:
        """On a clean stop: hand the Lease over at once (an empty holder), if still ours."""
        self.stop.set()
        c = self.config
        try:
            lease = self.api.read_namespaced_lease(c.name, c.namespace, _request_timeout=TIMEOUT)
            if (lease.spec.holder_identity or "") != self.identity:
                return
            body = self._body(self._holder(lease), lease.metadata.resource_version)
            body["spec"].update(holderIdentity="", leaseDurationSeconds=1)
            self.api.replace_namespaced_lease(c.name, c.namespace, body, _request_timeout=TIMEOUT)
            log.info("released lease %s/%s", c.namespace, c.name)
        except Exception as e:  # the standby takes over after the lease duration anyway
            log.warning("releasing lease %s/%s: %s", c.namespace, c.name, e)
