"""The BpfProgram manifest parser: valid documents become specs, bad ones name the field."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from bpfglobals.node.manifest import (
    CgroupPoint,
    ManifestError,
    TcxPoint,
    XdpPoint,
    parse_manifest,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "xdp_drop.yaml"


@pytest.fixture
def doc() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def test_example_manifest_parses_into_specs(doc: dict) -> None:
    m = parse_manifest(doc)
    assert m.name == "xdp-drop"
    assert m.elf.path == "../build/examples/xdp_drop.bpf.o"
    assert m.programs[0].name == "xdp_drop"
    assert m.programs[0].attach == XdpPoint(interface="bpfg-demo0", mode="generic")
    assert m.globals == {"drop_port": 9999, "drop_icmp": False, "log_level": 0}
    assert m.rollout.max_unavailable == 1


def test_every_attach_kind_parses(doc: dict) -> None:
    doc["spec"]["programs"] = [
        {"name": "a", "attach": {"tcx": {"interface": "eth0", "direction": "egress"}}},
        {
            "name": "b",
            "attach": {"cgroup": {"path": "/sys/fs/cgroup", "type": "cgroup_skb/ingress"}},
        },
    ]
    m = parse_manifest(doc)
    assert m.programs[0].attach == TcxPoint(interface="eth0", direction="egress")
    assert m.programs[1].attach == CgroupPoint(path="/sys/fs/cgroup", type="cgroup_skb/ingress")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(kind="Pod"), "expected apiVersion"),
        (lambda d: d["metadata"].update(name="Bad_Name"), "metadata.name"),
        (
            lambda d: d["spec"]["elf"].update(url="https://x/y.o"),
            "exactly one of path, configMap, url",
        ),
        (lambda d: d["spec"]["elf"].update(sha256="abc"), "spec.elf.sha256: expected 64 hex"),
        (lambda d: d["spec"].update(programs=[]), "spec.programs: expected a non-empty list"),
        (
            lambda d: d["spec"]["programs"][0].update(attach={}),
            "spec.programs[0].attach: exactly one",
        ),
        (
            lambda d: d["spec"]["programs"][0]["attach"]["xdp"].update(mode="fast"),
            "spec.programs[0].attach.xdp.mode",
        ),
        (lambda d: d["spec"].update(rollout={"maxUnavailable": 0}), "maxUnavailable"),
        (lambda d: d["spec"].update(globals=[1, 2]), "spec.globals: expected a mapping"),
        (lambda d: d["spec"]["programs"].append(copy.deepcopy(d["spec"]["programs"][0])), "twice"),
        (lambda d: d["spec"].update(globls={}), "spec: unknown field 'globls'"),
        (
            lambda d: d["spec"]["programs"][0]["attach"]["xdp"].update(iface="x"),
            "unknown field 'iface'",
        ),
        (lambda d: d["spec"]["elf"].update(sha256="AB" * 32), "64 hex digits .lower-case."),
        (lambda d: d["spec"].update(nodeSelector={"zone": 1}), "spec.nodeSelector.zone"),
        (lambda d: d["spec"].update(resetBss="yes"), "spec.resetBss: expected true or false"),
        (lambda d: d["spec"].update(btf={"path": "vmlinux.btf"}), "spec.btf.path: .* absolute"),
        (lambda d: d["spec"].update(btf={"file": "/x"}), "spec.btf: unknown field 'file'"),
        (lambda d: d["spec"].update(btf={}), "spec.btf.path: expected a non-empty string"),
        (lambda d: d["metadata"].update(name="a..b"), "metadata.name"),
        (lambda d: d["metadata"].update(name="a" * 254), "metadata.name"),
        (
            lambda d: d["spec"].update(
                programs=[{"name": f"p{i}", "attach": {"tracing": {}}} for i in range(65)]
            ),
            "at most 64 programs",
        ),
    ],
)
def test_invalid_manifest_names_the_field(doc: dict, mutate, message: str) -> None:
    mutate(doc)
    with pytest.raises(ManifestError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_manifest(doc)


def test_nulls_count_as_absent_as_in_the_apiserver(doc: dict) -> None:
    doc["spec"]["programs"][0]["attach"]["xdp"]["mode"] = None
    doc["spec"]["rollout"] = {"maxUnavailable": None}
    doc["spec"]["resetBss"] = None
    m = parse_manifest(doc)
    assert m.programs[0].attach == XdpPoint(interface="bpfg-demo0", mode="native")
    assert m.rollout.max_unavailable == 1 and m.reset_bss is False


def test_a_cluster_requires_the_digest(doc: dict) -> None:
    doc["spec"]["elf"].pop("sha256", None)
    assert parse_manifest(doc).elf.sha256 is None  # node-local: the file is read as it is
    with pytest.raises(ManifestError, match=r"spec\.elf\.sha256: required in a cluster"):
        parse_manifest(doc, require_sha256=True)
