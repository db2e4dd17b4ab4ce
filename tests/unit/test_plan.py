"""The apply planner, every branch, without a kernel: a real compiled object, real value images."""

from __future__ import annotations

import pytest

from bpfglobals.elf import read_object
from bpfglobals.node.manifest import parse_manifest
from bpfglobals.node.plan import Action, Observed, desire, plan
from bpfglobals.node.record import AppliedRecord
from bpfglobals.values import configure
from tests.support.manifests import node_manifest

XDP = {"xdp": {"interface": "eth0", "mode": "generic"}}
CGROUP = {"cgroup": {"path": "/sys/fs/cgroup", "type": "cgroup_skb/ingress"}}
SHA = "a" * 64


@pytest.fixture(scope="module")
def live(bpf_object):
    return read_object(bpf_object("live"))


@pytest.fixture(scope="module")
def other(bpf_object):
    return read_object(bpf_object("examples/xdp_drop.bpf.c"))


def wanted(obj, globals_=None, programs=None, sha=SHA, reset_bss=False, btf=None):
    doc = node_manifest("p", "x.bpf.o", programs or [{"name": "live_xdp", "attach": XDP}], {})
    doc["spec"]["globals"] = globals_ or {}
    doc["spec"]["resetBss"] = reset_bss
    if btf is not None:
        doc["spec"]["btf"] = {"path": btf}
    m = parse_manifest(doc)
    return m, desire(m, obj, configure(obj, m.globals), sha)


def running(rec: AppliedRecord, missing: tuple[str, ...] = ()) -> Observed:
    """The kernel runs `rec` as variant 1 (but for the links named in `missing`)."""
    applied = rec.with_variant(1, "2026-01-01T00:00:00Z")
    intact = frozenset(k.pin_name for k in applied.links if k.pin_name not in missing)
    return Observed(applied, intact_links=intact, variant_present=True)


def test_first_apply_creates_a_variant_and_attaches_everything(live) -> None:
    _, rec = wanted(live, {"verdict": 1})
    p = plan(rec, Observed(None))
    assert p.action is Action.CREATE and p.new_variant
    assert p.attach == rec.links and not p.keep_live_maps and p.live_writes == ()
    assert plan(rec, Observed(None, leftovers=True)).action is Action.RELOAD


def test_same_request_on_a_running_variant_is_unchanged(live) -> None:
    _, rec = wanted(live, {"verdict": 1})
    seen = running(rec)
    p = plan(rec, seen)
    assert p.action is Action.UNCHANGED and p.attach == () and p.live_writes == ()
    assert p.record == seen.record  # the variant and its load time are kept


def test_data_only_change_is_a_live_write_of_just_that_variable(live) -> None:
    _, before = wanted(live, {"verdict": 1})
    _, after = wanted(live, {"verdict": 2})
    p = plan(after, running(before))
    assert p.action is Action.LIVE_WRITE and not p.new_variant
    assert p.live_writes == ("verdict",) and p.attach == ()
    assert p.record.variant == 1 and p.record.config_hash != before.config_hash


def test_rodata_change_loads_a_new_variant_keeping_data_and_bss(live) -> None:
    _, before = wanted(live, {"verdict": 1})
    _, after = wanted(live, {"verdict": 2, "forced_verdict": 2})
    p = plan(after, running(before))
    assert p.action is Action.RELOAD and p.keep_live_maps and not p.reset_bss
    assert p.live_writes == ("verdict",)  # written into the kept .data before the swap
    assert p.attach == after.links  # every link swaps to the new variant


def test_elf_change_loads_a_new_variant_with_fresh_maps(live) -> None:
    _, before = wanted(live, {"verdict": 1})
    _, after = wanted(live, {"verdict": 1}, sha="b" * 64)
    p = plan(after, running(before))
    assert p.action is Action.RELOAD and not p.keep_live_maps and p.live_writes == ()
    assert p.detail["why"] == "ELF changed"


def test_another_object_under_the_same_name_is_a_new_variant(live, other) -> None:
    _, before = wanted(live)
    _, after = wanted(other, programs=[{"name": "xdp_drop", "attach": XDP}], sha="c" * 64)
    p = plan(after, running(before))
    assert p.action is Action.RELOAD and not p.keep_live_maps


def test_attach_point_change_reattaches_the_running_variant(live) -> None:
    _, before = wanted(live)
    moved = {"xdp": {"interface": "eth1", "mode": "generic"}}
    _, after = wanted(live, programs=[{"name": "live_xdp", "attach": moved}])
    p = plan(after, running(before))
    assert p.action is Action.REATTACH and not p.new_variant
    assert [k.key for k in p.attach] == ["xdp_eth1"] and p.record.variant == 1


def test_a_lost_link_is_reattached_alone(live) -> None:
    programs = [{"name": "live_xdp", "attach": XDP}, {"name": "cg_ingress", "attach": CGROUP}]
    _, rec = wanted(live, programs=programs)
    lost = rec.links[1].pin_name
    p = plan(rec, running(rec, missing=(lost,)))
    assert p.action is Action.REATTACH and [k.pin_name for k in p.attach] == [lost]


def test_program_added_or_removed_loads_a_new_variant(live) -> None:
    one = [{"name": "live_xdp", "attach": XDP}]
    two = [*one, {"name": "cg_ingress", "attach": CGROUP}]
    _, a = wanted(live, programs=one)
    _, b = wanted(live, programs=two)
    added = plan(b, running(a))
    assert added.action is Action.RELOAD and added.record.programs == ["live_xdp", "cg_ingress"]
    removed = plan(a, running(b))
    assert removed.action is Action.RELOAD and removed.record.programs == ["live_xdp"]
    assert removed.detail["why"] == "read-only values or the program set changed"


def test_reset_bss_starts_the_new_variant_with_a_zeroed_bss(live) -> None:
    _, before = wanted(live)
    m, after = wanted(live, {"forced_verdict": 1}, reset_bss=True)
    p = plan(after, running(before), reset_bss=m.reset_bss)
    assert p.action is Action.RELOAD and p.keep_live_maps and p.reset_bss
    # resetBss alone changes what was asked for (its hash) but loads nothing
    _, flag_only = wanted(live, reset_bss=True)
    q = plan(flag_only, running(before), reset_bss=True)
    assert q.action is Action.LIVE_WRITE and q.live_writes == () and q.attach == ()


def test_a_new_core_target_btf_loads_a_new_variant(live) -> None:
    _, before = wanted(live, {"verdict": 1})
    _, after = wanted(live, {"verdict": 1}, btf="/var/lib/btf/5.10.btf")
    p = plan(after, running(before))
    assert p.action is Action.RELOAD and p.keep_live_maps  # same ELF: state carries over
    assert p.record.config_hash != before.config_hash
    _, again = wanted(live, {"verdict": 1}, btf="/var/lib/btf/5.10.btf")
    assert plan(again, running(after)).action is Action.UNCHANGED


def test_a_vanished_variant_is_loaded_again(live) -> None:
    _, rec = wanted(live)
    seen = Observed(rec.with_variant(3, ""), variant_present=False)
    p = plan(rec, seen)
    assert p.action is Action.RELOAD and p.detail["why"] == "recorded variant is gone"


def test_config_hash_ignores_where_the_elf_came_from_and_the_rollout(live) -> None:
    _, a = wanted(live, {"verdict": 1})
    doc = node_manifest("p", "/elsewhere/x.bpf.o", [{"name": "live_xdp", "attach": XDP}], {})
    doc["spec"] |= {"globals": {"verdict": 1}, "rollout": {"maxUnavailable": 3}}
    b = desire(parse_manifest(doc), live, configure(live, {"verdict": 1}), SHA)
    assert a.config_hash == b.config_hash
    _, c = wanted(live, {"verdict": 2})
    assert c.config_hash != a.config_hash


def test_operator_and_node_compute_the_same_config_hash(bpf_object) -> None:
    """`kubectl get bpfprogram` (the operator's desired hash) and `bpfglobals get` (the
    node's record) show one value for one configuration."""
    from bpfglobals.node.elf_source import ElfSources
    from bpfglobals.node.manifest import config_hash, parse_spec

    elf = bpf_object("examples/xdp_drop.bpf.c")
    sha = (
        ElfSources()
        .fetch(
            parse_spec(
                "p", {"elf": {"path": str(elf)}, "programs": [{"name": "xdp_drop", "attach": XDP}]}
            ).elf
        )
        .sha256
    )
    spec = {
        "elf": {
            "configMap": {"namespace": "d", "name": "c", "key": "xdp_drop.bpf.o"},
            "sha256": sha,
        },
        "programs": [{"name": "xdp_drop", "attach": XDP}],
        "globals": {"drop_port": 53},
        "nodeSelector": {"zone": "1"},
    }
    operator_side = config_hash(parse_spec("web", spec))
    node_doc = node_manifest("web", elf, spec["programs"], spec["globals"])
    m = parse_manifest(node_doc)
    obj = read_object(elf)
    node_side = desire(m, obj, configure(obj, m.globals), sha).config_hash
    assert operator_side == node_side
