"""kopf handlers: thin wrappers over `ProgramController` (run with `bpfglobals operator`).

Spec changes reconcile at once; a per-object timer re-reconciles while a rollout is under way
(or every `RESYNC` seconds otherwise), so node updates are coalesced into one status write per
tick instead of one per node event.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import kopf

from bpfglobals.k8s.client import Api, load_config
from bpfglobals.k8s.controller import ProgramController, node_facts
from bpfglobals.k8s.operator_state import OperatorState
from bpfglobals.k8s.resources import GROUP, PROGRAM_FINALIZER, PROGRAM_NODES, PROGRAMS, VERSION
from bpfglobals.k8s.webhook import Webhook, WebhookOptions
from bpfglobals.node.per_node import NodeFacts

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
    controller = ProgramController(Api.create(), bool(memo.get("require_signatures")))
    memo.state = OperatorState(controller, settings.execution.executor, RESYNC)


def _quiet_ticks(record: logging.LogRecord) -> bool:
    """kopf logs every timer run at INFO: twice a second per BpfProgram is noise."""
    return not (record.levelno <= logging.INFO and record.getMessage().startswith("Timer 'tick'"))


def _reconcile(state: OperatorState, body: kopf.Body, nodes: kopf.Index) -> None:
    def event(reason: str, message: str) -> None:
        kopf.warn(body, reason=reason, message=message)

    name = body["metadata"]["name"]
    state.starting(name)
    facts = {node: next(iter(store)) for node, store in nodes.items()}
    try:
        state.controller.reconcile(body, event, facts)
    except Exception as e:  # API hiccups: retry soon rather than after kopf's default minute
        state.failed(name)
        raise kopf.TemporaryError(f"reconcile failed: {e}", delay=1) from e


@kopf.index("", "v1", "nodes")
def node_labels(name: str, body: kopf.Body, **_: Any) -> dict[str, NodeFacts]:
    """Every Node's labels, annotations and addresses, kept current by kopf's watch:
    selection and per-node values cost no API call."""
    return {name: node_facts(body)}


@kopf.on.event("", "v1", "nodes")
def on_node(name: str, body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    """A node appeared, went, or was relabelled (or its addresses or annotations changed):
    every program re-selects and re-resolves on the next tick. (Heartbeats and conditions of
    a Node change nothing here.)"""
    memo.state.node_seen(name, None if type == "DELETED" else node_facts(body))


@kopf.on.create(GROUP, VERSION, PROGRAMS)
@kopf.on.update(GROUP, VERSION, PROGRAMS, field="spec")
@kopf.on.resume(GROUP, VERSION, PROGRAMS)
def on_change(body: kopf.Body, node_labels: kopf.Index, memo: kopf.Memo, **_: Any) -> None:
    _reconcile(memo.state, body, node_labels)


@kopf.timer(GROUP, VERSION, PROGRAMS, interval=TICK)
async def tick(body: kopf.Body, node_labels: kopf.Index, memo: kopf.Memo, **_: Any) -> None:
    """Coalesces: however many node events arrived since the last tick, one reconcile. The
    check runs on the event loop; only real work takes one of kopf's worker threads."""
    state: OperatorState = memo.state
    name = body["metadata"]["name"]
    if body["metadata"].get("deletionTimestamp") or not state.due(name):
        return
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(state.executor, _reconcile, state, body, node_labels)


@kopf.on.event(GROUP, VERSION, PROGRAM_NODES)
def on_node_object(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A node reported progress: reconcile its program on the next tick."""
    owner = (body.get("spec") or {}).get("bpfProgram")
    if owner:
        memo.state.mark(owner)


@kopf.on.delete(GROUP, VERSION, PROGRAMS)
def on_delete(name: str, memo: kopf.Memo, **_: Any) -> None:
    state: OperatorState = memo.state
    remaining = state.controller.delete(name)
    if remaining:
        raise kopf.TemporaryError(f"waiting for {remaining} node(s) to detach", delay=1)
    state.forget(name)


def run(
    kubeconfig: str | None = None,
    liveness: str | None = None,
    webhook: WebhookOptions | None = None,
    require_signatures: bool = False,
) -> None:
    """The operator; with `webhook`, the admission webhook serves beside it (started first,
    so that no apply slips past it once the operator runs, and removed when it stops)."""
    if kubeconfig:  # kopf logs in on its own (through $KUBECONFIG): the same cluster as ours
        os.environ["KUBECONFIG"] = kubeconfig
    memo = kopf.Memo(kubeconfig=kubeconfig, require_signatures=require_signatures)
    hook = None
    if webhook is not None:
        load_config(kubeconfig)
        hook = Webhook(webhook)
        hook.start()
    try:
        kopf.run(standalone=True, clusterwide=True, liveness_endpoint=liveness, memo=memo)
    finally:
        if hook is not None:
            hook.stop()
