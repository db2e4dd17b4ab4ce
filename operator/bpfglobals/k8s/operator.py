"""kopf handlers: thin wrappers over `ProgramController` (run with `bpfglobals operator`).

Spec changes reconcile at once; a per-object timer re-reconciles while a rollout is under way
(or every `RESYNC` seconds otherwise), so node updates are coalesced into one status write per
tick instead of one per node event.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import kopf

from bpfglobals.k8s.client import Api, load_config
from bpfglobals.k8s.controller import ProgramController
from bpfglobals.k8s.resources import GROUP, PROGRAM_FINALIZER, PROGRAM_NODES, PROGRAMS, VERSION

TICK = 0.5
RESYNC = 15.0
_state: dict[str, Any] = {"controller": None, "dirty": set(), "last": {}}


def controller() -> ProgramController:
    if _state["controller"] is None:
        _state["controller"] = ProgramController(Api.create())
    return _state["controller"]


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = PROGRAM_FINALIZER
    settings.posting.level = logging.WARNING  # Events for problems, not for every handler
    settings.watching.server_timeout = 60
    load_config(_state.get("kubeconfig"))


def _reconcile(body: kopf.Body) -> None:
    def event(reason: str, message: str) -> None:
        kopf.warn(body, reason=reason, message=message)

    try:
        status = controller().reconcile(body, event)
    except Exception as e:  # API hiccups: retry soon rather than after kopf's default minute
        raise kopf.TemporaryError(f"reconcile failed: {e}", delay=1) from e
    name = body["metadata"]["name"]
    _state["last"][name] = time.monotonic()
    if status["phase"] == "Ready" or status["phase"] == "Degraded":
        _state["dirty"].discard(name)
    else:
        _state["dirty"].add(name)


@kopf.on.create(GROUP, VERSION, PROGRAMS)
@kopf.on.update(GROUP, VERSION, PROGRAMS, field="spec")
@kopf.on.resume(GROUP, VERSION, PROGRAMS)
def on_change(body: kopf.Body, **_: Any) -> None:
    _reconcile(body)


@kopf.timer(GROUP, VERSION, PROGRAMS, interval=TICK)
def tick(body: kopf.Body, **_: Any) -> None:
    name = body["metadata"]["name"]
    if name in _state["dirty"] or time.monotonic() - _state["last"].get(name, 0) > RESYNC:
        _reconcile(body)


@kopf.on.event(GROUP, VERSION, PROGRAM_NODES)
def on_node_object(body: kopf.Body, **_: Any) -> None:
    """A node reported progress: reconcile its program on the next tick."""
    owner = (body.get("spec") or {}).get("bpfProgram")
    if owner:
        _state["dirty"].add(owner)


@kopf.on.delete(GROUP, VERSION, PROGRAMS)
def on_delete(name: str, **_: Any) -> None:
    remaining = controller().delete(name)
    if remaining:
        raise kopf.TemporaryError(f"waiting for {remaining} node(s) to detach", delay=1)


def run(kubeconfig: str | None = None, liveness: str | None = None) -> None:
    _state["kubeconfig"] = kubeconfig
    kopf.run(standalone=True, clusterwide=True, liveness_endpoint=liveness)
