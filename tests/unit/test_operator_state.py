"""The operator's shared state: one object, thread-safe, and forgetting deleted programs."""

from __future__ import annotations

import hashlib
import threading

import pytest

from bpfglobals.k8s.client import Api
from bpfglobals.k8s.controller import ProgramController
from bpfglobals.k8s.operator_state import OperatorState


def spec_for(elf, globals_: dict) -> dict:
    sha = hashlib.sha256(elf.read_bytes()).hexdigest()
    return {
        "elf": {"path": str(elf), "sha256": sha},
        "programs": [{"name": "xdp_drop", "attach": {"xdp": {"interface": "eth0"}}}],
        "globals": globals_,
    }


def test_deleting_a_program_forgets_everything_kept_about_it(bpf_object) -> None:
    controller = ProgramController(Api(core=None, custom=None))
    state = OperatorState(controller, None, resync=15)
    elf = bpf_object("examples/xdp_drop.bpf.c")
    events: list[tuple[str, str]] = []
    good = controller._validate("web", 1, spec_for(elf, {"drop_port": 53}), events.append)
    bad = controller._validate(
        "web", 2, spec_for(elf, {"drop_prot": 1}), lambda *e: events.append(e)
    )
    assert good.manifest is not None and good.invalid is None
    assert good.elf_sha == hashlib.sha256(elf.read_bytes()).hexdigest()
    assert bad.manifest is not None and "no global variable 'drop_prot'" in (bad.invalid or "")
    assert bad.reason == "InvalidSpec" and events and events[-1][0] == "InvalidSpec"
    state.starting("web")
    state.starting("db")
    state.mark("web")
    assert state.due("web") and state.tracked() == {"web", "db"}
    state.forget("web")
    assert state.tracked() == {"db"}
    assert not any(k[0] == "web" for k in controller._validated)
    state.mark("web")  # a late node-object event of the deleted program adds nothing back
    assert state.tracked() == {"db"}


def test_a_node_change_makes_every_program_due_once(bpf_object) -> None:
    state = OperatorState(ProgramController(Api(core=None, custom=None)), None, resync=3600)
    for name in ("a", "b"):
        state.starting(name)
    assert not state.due("a") and not state.due("b")
    state.node_seen("n1", {"zone": "1"})
    assert state.due("a") and state.due("b")
    state.starting("a")
    state.starting("b")
    state.node_seen("n1", {"zone": "1"})  # a heartbeat: same labels, nothing to do
    assert not state.due("a")
    state.node_seen("n1", None)  # the node went away
    assert state.due("a")


def test_state_is_consistent_under_threads() -> None:
    state = OperatorState(ProgramController(Api(core=None, custom=None)), None, resync=3600)

    def churn(i: int) -> None:
        for j in range(500):
            name = f"p{(i + j) % 7}"
            state.starting(name)
            state.mark(name)
            state.node_seen(f"n{j % 3}", {"v": str(j)})
            state.forget(name)

    threads = [threading.Thread(target=churn, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state.tracked() == set()  # everything started was forgotten again


def test_expensive_reconciles_come_less_often(monkeypatch) -> None:
    """At 5,000 nodes a reconcile costs tens of milliseconds: the timer spaces each program's
    reconciles so that all of them together stay within BUDGET of a core."""
    from bpfglobals.k8s import operator_state

    clock = [100.0]
    monkeypatch.setattr(operator_state.time, "monotonic", lambda: clock[0])
    state = OperatorState(ProgramController(Api(core=None, custom=None)), None, resync=3600)
    for name, cost in (("a", 0.05), ("b", 0.05)):
        with state.reconciling(name):
            clock[0] += cost
    assert state.pace() == pytest.approx(0.1 / operator_state.BUDGET)  # 0.4 s
    state.mark("a")
    assert not state.due("a")  # dirty, but its last reconcile was 0.05 s ago
    clock[0] += 0.4
    assert state.due("a")
    state.forget("b")  # a deleted program's cost no longer counts
    assert state.pace() == pytest.approx(0.05 / operator_state.BUDGET)
