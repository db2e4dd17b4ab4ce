"""Per-node values: `fromNode` references and `spec.nodeOverrides`, parsed and resolved."""

from __future__ import annotations

import pytest

from bpfglobals.node.manifest import FromNode, ManifestError, config_hash, parse_spec
from bpfglobals.node.per_node import (
    NodeFacts,
    NodeValueError,
    label_value,
    merged_globals,
    resolve_for_node,
)

SHA = "ab" * 32


def spec(globals_: dict, overrides: list | None = None) -> dict:
    doc = {
        "elf": {"path": "/o.bpf.o", "sha256": SHA},
        "programs": [{"name": "f", "attach": {"xdp": {"interface": "eth0"}}}],
        "globals": globals_,
    }
    if overrides is not None:
        doc["nodeOverrides"] = overrides
    return doc


NODE_A = NodeFacts(
    "a",
    labels={"topology.kubernetes.io/zone": "zone-a", "pool": "gpu", "id": "7"},
    annotations={"example.com/limit": "0x10"},
    addresses=(("Hostname", "a"), ("InternalIP", "fd00::a"), ("InternalIP", "10.0.0.1")),
)
NODE_B = NodeFacts("b", labels={"pool": "cpu"}, addresses=(("InternalIP", "10.0.0.2"),))
FAMILIES = {"addr4": 4, "addr6": 6, "zone": None, "limit": None, "id": None}


def test_overrides_merge_over_globals_in_order_later_wins() -> None:
    m = parse_spec(
        "p",
        spec(
            {"a": 1, "b": 1, "c": 1},
            [
                {"nodeSelector": {"pool": "gpu"}, "globals": {"b": 2, "c": 2}},
                {"nodeSelector": {"pool": "gpu", "id": "7"}, "globals": {"c": 3}},
                {"nodeSelector": {"pool": "cpu"}, "globals": {"a": 9}},
            ],
        ),
    )
    assert merged_globals(m, NODE_A.labels) == {"a": 1, "b": 2, "c": 3}
    assert merged_globals(m, NODE_B.labels) == {"a": 9, "b": 1, "c": 1}
    assert merged_globals(m, {}) == {"a": 1, "b": 1, "c": 1}


def test_address_takes_the_ip_version_the_variable_holds() -> None:
    m = parse_spec(
        "p",
        spec(
            {
                "addr4": {"fromNode": {"address": "InternalIP"}},
                "addr6": {"fromNode": {"address": "InternalIP"}},
            }
        ),
    )
    r = resolve_for_node(m, NODE_A, FAMILIES)
    assert r.globals == {"addr4": "10.0.0.1", "addr6": "fd00::a"}
    with pytest.raises(NodeValueError, match=r"node b has no InternalIP IPv6 address"):
        resolve_for_node(m, NODE_B, FAMILIES)


def test_labels_and_annotations_read_as_integers_booleans_or_strings() -> None:
    m = parse_spec(
        "p",
        spec(
            {
                "zone": {"fromNode": {"label": "topology.kubernetes.io/zone"}, "default": "none"},
                "id": {"fromNode": {"label": "id"}},
                "limit": {"fromNode": {"annotation": "example.com/limit"}, "default": 1},
            }
        ),
    )
    assert resolve_for_node(m, NODE_A, FAMILIES).globals == {
        "zone": "zone-a",
        "id": 7,
        "limit": 16,
    }
    with pytest.raises(NodeValueError, match=r"node b has no label 'id'.*no default"):
        resolve_for_node(m, NODE_B, FAMILIES)
    assert [label_value(t) for t in ("-3", "0o17", "true", "eu-1", "1.5")] == [
        -3,
        15,
        True,
        "eu-1",
        "1.5",
    ]


def test_missing_fact_takes_the_default() -> None:
    m = parse_spec(
        "p", spec({"zone": {"fromNode": {"label": "topology.kubernetes.io/zone"}, "default": "x"}})
    )
    assert resolve_for_node(m, NODE_B, FAMILIES).globals == {"zone": "x"}


def test_each_node_has_its_own_hash_and_a_plain_spec_keeps_the_fleet_hash() -> None:
    plain = parse_spec("p", spec({"a": 1}))
    assert resolve_for_node(plain, NODE_A, {}).config_hash == config_hash(plain)
    m = parse_spec("p", spec({"addr4": {"fromNode": {"address": "InternalIP"}}}))
    ha = resolve_for_node(m, NODE_A, FAMILIES).config_hash
    hb = resolve_for_node(m, NODE_B, FAMILIES).config_hash
    assert ha != hb
    # what the agent computes from the node object (resolved globals, no overrides) agrees
    node_doc = spec({"addr4": "10.0.0.1"})
    assert ha == config_hash(parse_spec("p", node_doc))


def test_relabelling_changes_only_that_nodes_hash() -> None:
    m = parse_spec("p", spec({"zone": {"fromNode": {"label": "topology.kubernetes.io/zone"}}}))
    before = resolve_for_node(m, NODE_A, FAMILIES)
    moved = NodeFacts("a", {**NODE_A.labels, "topology.kubernetes.io/zone": "zone-b"})
    assert resolve_for_node(m, moved, FAMILIES).config_hash != before.config_hash


def test_per_node_is_detected() -> None:
    assert not parse_spec("p", spec({"a": 1})).per_node()
    assert parse_spec("p", spec({"a": {"fromNode": {"label": "x"}}})).per_node()
    assert parse_spec("p", spec({}, [{"nodeSelector": {}, "globals": {}}])).per_node()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"fromNode": {"address": "PodIP"}}, r"fromNode.address: one of InternalIP"),
        ({"fromNode": {"label": "a", "annotation": "b"}}, r"exactly one of address, label"),
        ({"fromNode": {"labels": "a"}}, r"unknown field 'labels'"),
        ({"fromNode": {"label": ""}}, r"fromNode.label: expected a non-empty string"),
        ({"fromNode": {"label": "a"}, "defualt": 1}, r"unknown field 'defualt'"),
    ],
)
def test_malformed_references_are_refused(value, message) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_spec("p", spec({"v": value}))


def test_malformed_overrides_are_refused() -> None:
    with pytest.raises(ManifestError, match=r"nodeOverrides\[0\].nodeSelector: required"):
        parse_spec("p", spec({}, [{"globals": {"a": 1}}]))
    with pytest.raises(ManifestError, match=r"nodeOverrides\[0\]: unknown field 'selector'"):
        parse_spec("p", spec({}, [{"selector": {}, "globals": {}}]))
    with pytest.raises(ManifestError, match=r"nodeOverrides\[1\].globals.v.fromNode"):
        parse_spec(
            "p",
            spec(
                {},
                [
                    {"nodeSelector": {}, "globals": {}},
                    {"nodeSelector": {}, "globals": {"v": {"fromNode": {}}}},
                ],
            ),
        )


def test_reference_keeps_its_default() -> None:
    m = parse_spec("p", spec({"v": {"fromNode": {"label": "a"}, "default": 0}}))
    from bpfglobals.node.manifest import from_node

    assert from_node(m.globals["v"], "") == FromNode("label", "a", 0, True)
