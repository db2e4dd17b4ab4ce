"""Tracing hooks (tracepoint, raw_tp, tp_btf, fentry) through the node core, on the real
kernel: system calls of this very process are counted, bpftool reads the counters back.

Tracing links cannot swap programs (no BPF_LINK_UPDATE), so a .rodata change attaches the
new variant beside the old and replaces the pin; exact counts prove the old link is gone.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from bpfglobals.attach.targets import AttachError
from bpfglobals.loader import LoadError
from bpfglobals.node.manifest import parse_manifest
from bpfglobals.node.reconcile import NodeReconciler
from tests.support.bpftool import bpftool, section_vars
from tests.support.manifests import node_manifest, tracing
from tests.support.stack import wait_for

ROOT = Path(__file__).resolve().parents[2]
GETPID, GETPPID = {"x86_64": (39, 110), "aarch64": (172, 173)}[platform.machine()]
COUNTERS = ("tp_hits", "raw_hits", "btf_hits")
HOOKS = ("count_tp", "count_raw", "count_btf")


@pytest.fixture
def root():
    path = f"/sys/fs/bpf/bgt-trace-{uuid.uuid4().hex[:8]}"
    yield path
    subprocess.run(["rm", "-rf", path], check=False)


def manifest(elf, programs: dict[str, dict], globals_: dict):
    attach = [{"name": n, "attach": {"tracing": t}} for n, t in programs.items()]
    return parse_manifest(node_manifest("count", elf, attach, globals_))


def counters(root: str) -> dict[str, int]:
    return {k: int(v) for k, v in section_vars(f"{root}/count/maps/_bss", ".bss").items()}


def link_ids(status) -> dict[str, int]:
    return {p.name: p.links[0].id for p in status.programs}


def call(syscall_nr: int, times: int) -> None:
    for _ in range(times):
        os.getpid() if syscall_nr == GETPID else os.getppid()


def test_tracing_hooks_count_and_a_rodata_change_replaces_every_link(bpf_object, root) -> None:
    node = NodeReconciler(root)
    elf = bpf_object("examples/syscall_count.bpf.c")
    me = {"target_tgid": os.getpid(), "syscall_nr": GETPID}
    first = node.apply(manifest(elf, {h: {} for h in HOOKS}, me), "/").status

    shown = {link["id"]: link for link in bpftool("link", "show")}
    ids = link_ids(first)
    assert shown[ids["count_tp"]]["type"] == "perf_event"
    assert shown[ids["count_raw"]]["type"] == shown[ids["count_btf"]]["type"] == "raw_tracepoint"
    assert {p.name: p.links[0].target for p in first.programs} == {
        "count_tp": "syscalls/sys_enter_getpid",
        "count_raw": "sys_enter",
        "count_btf": "sys_enter",
    }

    before = counters(root)
    call(GETPID, 200)
    after = counters(root)
    assert {k: after[k] - before[k] for k in COUNTERS} == dict.fromkeys(COUNTERS, 200)

    # .rodata change: raw_tp and tp_btf now count getppid; the tracepoint is getpid's own.
    second = node.apply(manifest(elf, {h: {} for h in HOOKS}, me | {"syscall_nr": GETPPID}), "/")
    assert second.action == "reloaded"
    new_ids = link_ids(second.status)
    assert not set(new_ids.values()) & set(ids.values())
    live = {link["id"] for link in bpftool("link", "show")}
    assert set(new_ids.values()) <= live and not set(ids.values()) & live  # old links detached
    old_progs = {p.id for p in first.programs}  # and their programs released (after RCU)
    wait_for("old programs freed", lambda: not old_progs & {p["id"] for p in bpftool("prog")})
    kept = counters(root)
    assert {k: kept[k] for k in COUNTERS} == {k: after[k] for k in COUNTERS}  # .bss survives

    call(GETPPID, 50)
    call(GETPID, 30)
    final = counters(root)
    # Exactly once each: a leftover old link would have counted the getpid calls twice.
    assert {k: final[k] - kept[k] for k in COUNTERS} == {
        "tp_hits": 30,
        "raw_hits": 50,
        "btf_hits": 50,
    }


def test_fentry_behaves_as_libbpf_does_on_this_kernel(bpf_object, root, tmp_path) -> None:
    """Oracle: libbpf (bpftool prog loadall) loads the same fentry program. Where it loads,
    ours must count; where the kernel refuses (lockdown), ours must say so and change
    nothing that runs."""
    elf = bpf_object("examples/syscall_count.bpf.c")
    pin = f"/sys/fs/bpf/bgt-trace-libbpf-{uuid.uuid4().hex[:8]}"
    libbpf = subprocess.run(
        ["bpftool", "prog", "loadall", str(elf), pin], capture_output=True, text=True
    )
    subprocess.run(["rm", "-rf", pin], check=False)
    node = NodeReconciler(root)
    me = {"target_tgid": os.getpid(), "syscall_nr": GETPID}
    running = node.apply(manifest(elf, {"count_tp": {}}, me), "/").status
    wanted = manifest(elf, {"count_tp": {}, "count_fentry": {}}, me | {"syscall_nr": GETPPID})
    if libbpf.returncode == 0:
        node.apply(wanted, "/")
        before = counters(root)["fentry_hits"]
        call(GETPID, 100)
        assert counters(root)["fentry_hits"] - before >= 100
        return
    assert "count_fentry" in libbpf.stderr and "Operation not permitted" in libbpf.stderr
    with pytest.raises(LoadError) as e:
        node.apply(wanted, "/")
    assert "count_fentry" in str(e.value) and "fentry/__task_pid_nr_ns" in str(e.value)
    assert "EPERM" in str(e.value) and "trampolines" in str(e.value)
    after = node.get("count")
    assert link_ids(after) == link_ids(running)  # the running variant stayed
    assert [p.id for p in after.programs] == [p.id for p in running.programs]


def test_tracing_mistakes_are_named_and_change_nothing(bpf_object, root) -> None:
    node = NodeReconciler(root)
    elf = bpf_object("examples/syscall_count.bpf.c")
    me = {"target_tgid": os.getpid()}
    running = node.apply(manifest(elf, {"count_tp": {}}, me), "/").status

    cases = [
        (
            {"count_tp": {"target": "syscalls/sys_enter_nope"}},
            "no tracepoint syscalls/sys_enter_nope",
        ),
        ({"count_tp": {"target": "sys_enter_getpid"}}, "a tracepoint is 'category/name'"),
        ({"count_btf": {"target": "sched_switch"}}, "fixed by its section (sys_enter)"),
    ]
    for programs, why in cases:
        with pytest.raises(AttachError) as e:
            node.apply(manifest(elf, programs, me), "/")
        assert why in str(e.value)
        assert link_ids(node.get("count")) == link_ids(running)

    xdp = bpf_object("examples/xdp_drop.bpf.c")
    with pytest.raises(AttachError, match="tracing attach needs a tracepoint"):
        node.apply(
            parse_manifest(
                {
                    "apiVersion": "bpfglobals.io/v1alpha1",
                    "kind": "BpfProgram",
                    "metadata": {"name": "count"},
                    "spec": {
                        "elf": {"path": str(xdp)},
                        "programs": [{"name": "xdp_drop", "attach": {"tracing": {}}}],
                    },
                }
            ),
            "/",
        )
    assert link_ids(node.get("count")) == link_ids(running)


def test_the_example_manifest_applies_with_the_cli(bpf_object, root, tmp_path) -> None:
    doc = yaml.safe_load((ROOT / "examples" / "syscall_count.yaml").read_text())
    doc["spec"]["elf"]["path"] = str(bpf_object("examples/syscall_count.bpf.c"))
    doc["spec"]["globals"] |= {"target_tgid": os.getpid(), "syscall_nr": GETPID}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(doc))
    cli = str(Path(sys.executable).parent / "bpfglobals")
    out = subprocess.run(
        [cli, "apply", "-f", str(tmp_path / "m.yaml"), "--bpffs-root", root],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    pin = f"{root}/syscall-count/maps/_bss"
    before = section_vars(pin, ".bss")
    call(GETPID, 25)
    after = section_vars(pin, ".bss")
    assert {k: int(after[k]) - int(before[k]) for k in COUNTERS} == dict.fromkeys(COUNTERS, 25)


CRASHER = """
import json, os, signal, sys
from bpfglobals.node.manifest import parse_manifest
from bpfglobals.node.reconcile import NodeReconciler
os.rename = lambda *a: os.kill(os.getpid(), signal.SIGKILL)  # staged link pinned, not yet live
NodeReconciler(sys.argv[1]).apply(parse_manifest(json.loads(sys.argv[2])), "/")
"""


def test_a_swap_killed_before_its_pins_move_leaves_no_second_link(bpf_object, root) -> None:
    elf = bpf_object("examples/syscall_count.bpf.c")
    me = {"target_tgid": os.getpid(), "syscall_nr": GETPID}

    def doc(globals_: dict) -> dict:
        return node_manifest("count", elf, tracing(*HOOKS), globals_)

    node = NodeReconciler(root)
    running = node.apply(parse_manifest(doc(me)), "/").status
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHER, root, json.dumps(doc(me | {"syscall_nr": GETPPID}))],
        capture_output=True,
        text=True,
    )
    assert crashed.returncode == -9, crashed.stderr
    assert any(e.endswith("_next") for e in os.listdir(f"{root}/count/links"))

    # Back to the running configuration: nothing to load, but the staged links must go.
    again = node.apply(parse_manifest(doc(me)), "/")
    assert again.action == "unchanged"
    assert link_ids(again.status) == link_ids(running)
    assert sorted(os.listdir(f"{root}/count/links")) == sorted(
        f"{h}__tracing_section" for h in HOOKS
    )
    assert os.listdir(f"{root}/count/variants") == [str(running.extra["variant"])]
    before = counters(root)
    call(GETPID, 40)
    after = counters(root)
    assert {k: after[k] - before[k] for k in COUNTERS} == dict.fromkeys(COUNTERS, 40)
