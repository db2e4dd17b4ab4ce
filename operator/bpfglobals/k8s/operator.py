"""kopf handlers: thin wrappers over `ProgramController` (run with `bpfglobals operator`).

Spec changes reconcile at once; a per-object timer re-reconciles while a rollout is under way
(or every `RESYNC` seconds otherwise), so node updates are coalesced into one status write per
tick instead of one per node event.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable
from typing import Any

import kopf
from kubernetes import client

from bpfglobals.k8s.client import Api, load_config
from bpfglobals.k8s.controller import ProgramController
from bpfglobals.k8s.leader import LeaderElector, LeaseConfig
from bpfglobals.k8s.node_objects import NodeObjectCache
from bpfglobals.k8s.nodes import NODE_GRACE, NodeInfo, node_facts, node_info_of
from bpfglobals.k8s.operator_state import OperatorState
from bpfglobals.k8s.resources import GROUP, PROGRAM_FINALIZER, PROGRAMS, VERSION
from bpfglobals.k8s.webhook import Webhook, WebhookOptions

TICK = 0.5
RESYNC = 15.0
WORKERS = 16


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = PROGRAM_FINALIZER
    settings.posting.level = logging.WARNING  # Events for problems, not for every handler
    settings.watching.server_timeout = 60
    # Reconciles mostly wait on the apiserver: more of them in flight than kopf's default.
    settings.execution.max_workers = WORKERS
    logging.getLogger("kopf.objects").addFilter(_quiet_ticks)
    load_config(memo.get("kubeconfig"))
    # One controller, made before any handler runs: its per-object locks must be shared by
    # the create handler and the timer that kopf starts for the same object at once. Kept in
    # the memo, which every handler's memo (a shallow copy) refers to.
    api = Api.create()
    controller = ProgramController(
        api, memo.get("node_grace", NODE_GRACE), bool(memo.get("require_signatures"))
    )
    memo.state = OperatorState(controller, settings.execution.executor, RESYNC)
    # The BpfNodes and the agents' reports, watched by our own informers rather than kopf's:
    # compact records, paged lists, and a node reporting progress only marks its program for
    # the next tick.
    memo.objects = NodeObjectCache(api, memo.state.mark)
    controller.attach(memo.objects)
    memo.objects.start()


def _quiet_ticks(record: logging.LogRecord) -> bool:
    """kopf logs every timer run at INFO: twice a second per BpfProgram is noise."""
    return not (record.levelno <= logging.INFO and record.getMessage().startswith("Timer 'tick'"))


def _nodes(index: kopf.Index) -> dict[str, NodeInfo]:
    return {node: next(iter(store)) for node, store in index.items()}


def _synced(objects: NodeObjectCache) -> None:
    if not objects.synced:  # acting on a partial view could delete, or wait on, nothing
        raise kopf.TemporaryError("waiting for the first lists of BpfNodes and reports", delay=1)


def _reconcile(
    state: OperatorState, body: kopf.Body, nodes: kopf.Index, objects: NodeObjectCache
) -> None:
    def event(reason: str, message: str) -> None:
        kopf.warn(body, reason=reason, message=message)

    name = body["metadata"]["name"]
    _synced(objects)
    try:
        with state.reconciling(name):
            state.controller.reconcile(body, event, _nodes(nodes), objects.objects(name))
    except Exception as e:  # API hiccups: retry soon rather than after kopf's default minute
        state.failed(name)
        raise kopf.TemporaryError(f"reconcile failed: {e}", delay=1) from e


@kopf.index("", "v1", "nodes")
def node_index(name: str, body: kopf.Body, **_: Any) -> dict[str, NodeInfo]:
    """Every Node's labels, annotations, addresses and readiness, kept current by kopf's
    watch: selection, per-node values and deletes cost no API call."""
    return {name: node_info_of(body)}


@kopf.on.event("", "v1", "nodes")
def on_node(name: str, body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    """A node appeared, went, was relabelled, or its addresses or annotations changed: every
    program re-selects and re-resolves on the next tick. (Heartbeats and conditions of a Node
    change nothing here.) A deleted Node's BpfNode and reports are deleted at once: no agent
    will do it."""
    memo.state.node_seen(name, None if type == "DELETED" else node_facts(body))
    if type == "DELETED":
        removed = memo.state.controller.node_deleted(name)
        if removed:
            logging.getLogger("bpfglobals.operator").info(
                "node %s deleted: deleted its BpfNode and %d report(s)", name, removed
            )


@kopf.on.create(GROUP, VERSION, PROGRAMS)
@kopf.on.update(GROUP, VERSION, PROGRAMS, field="spec")
@kopf.on.resume(GROUP, VERSION, PROGRAMS)
def on_change(body: kopf.Body, node_index: kopf.Index, memo: kopf.Memo, **_: Any) -> None:
    _reconcile(memo.state, body, node_index, memo.objects)


@kopf.timer(GROUP, VERSION, PROGRAMS, interval=TICK)
async def tick(body: kopf.Body, node_index: kopf.Index, memo: kopf.Memo, **_: Any) -> None:
    """Coalesces: however many node events arrived since the last tick, one reconcile. The
    check runs on the event loop; only real work takes one of kopf's worker threads."""
    state: OperatorState = memo.state
    name = body["metadata"]["name"]
    if body["metadata"].get("deletionTimestamp") or not state.due(name):
        return
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(state.executor, _reconcile, state, body, node_index, memo.objects)


@kopf.on.delete(GROUP, VERSION, PROGRAMS)
def on_delete(name: str, node_index: kopf.Index, memo: kopf.Memo, **_: Any) -> None:
    state: OperatorState = memo.state
    _synced(memo.objects)
    remaining = state.controller.delete(name, _nodes(node_index), memo.objects.objects(name))
    if remaining:
        raise kopf.TemporaryError(f"waiting for {remaining} node(s) to detach", delay=1)
    state.forget(name)


def run(
    kubeconfig: str | None = None,
    liveness: str | None = None,
    lease: LeaseConfig | None = None,
    node_grace: float = NODE_GRACE,
    standby_health: Callable[[], Callable[[], None]] | None = None,
    webhook: WebhookOptions | None = None,
    require_signatures: bool = False,
) -> None:
    """Run the operator; with `lease`, only once this process holds the Lease (a standby
    waits, answering /healthz through `standby_health`, which returns its stop function).
    With `webhook`, the admission webhook serves beside it from the start, leader or not
    (it writes nothing but its own registration), and is removed when it stops."""
    if kubeconfig:  # kopf logs in on its own (through $KUBECONFIG): the same cluster as ours
        os.environ["KUBECONFIG"] = kubeconfig
    if webhook is not None or lease is not None:
        load_config(kubeconfig)  # once, for both clients below
    hook = None
    if webhook is not None:
        hook = Webhook(webhook)
        hook.start()
    elector = None
    try:
        if lease is not None:
            identity = f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
            elector = LeaderElector(client.CoordinationV1Api(), lease, identity)
            stop_health = standby_health() if standby_health else None
            elector.acquire()
            if stop_health:
                stop_health()
            elector.keep(_lost)
        memo = kopf.Memo(
            kubeconfig=kubeconfig, node_grace=node_grace, require_signatures=require_signatures
        )
        kopf.run(standalone=True, clusterwide=True, liveness_endpoint=liveness, memo=memo)
    finally:
        if elector is not None:
            elector.release()
        if hook is not None:
            hook.stop()


def _lost() -> None:
    """Another operator may act from now on: stop without a single further write."""
    logging.getLogger("bpfglobals.operator").error("leadership lost: exiting")
    os._exit(1)
