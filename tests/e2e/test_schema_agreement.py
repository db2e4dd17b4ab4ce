"""One BpfProgram schema: the CRD (judged by a real kube-apiserver: OpenAPI, defaults, CEL,
strict field validation) and the parser (`parse_manifest`, used by `bpfglobals apply`, the
operator and the agents) accept and reject the same generated documents.

Documents are valid ones of every shape with up to two mistakes from a catalogue (unknown
fields, wrong types, empty strings, bad enums, nulls, a program attached twice, ...); each
mistake is also checked alone. What neither side can judge without the ELF (does the program
exist, does a value fit its variable) is the operator's InvalidSpec, not part of this test.
"""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from bpfglobals.k8s.resources import GROUP, PROGRAMS, VERSION
from bpfglobals.node.manifest import ManifestError, parse_manifest
from tests.e2e.test_chart import ROOT

SHA = "ab" * 32
DELETE = object()

# Valid documents of every shape: each attach kind, each ELF source, optional fields.
attach = st.one_of(
    st.builds(
        lambda i, m: {"xdp": {"interface": i, **m}},
        st.sampled_from(["eth0", "bpfg0"]),
        st.sampled_from([{}, {"mode": "generic"}, {"mode": "offload"}]),
    ),
    st.builds(
        lambda d: {"tcx": {"interface": "eth0", **d}},
        st.sampled_from([{}, {"direction": "egress"}]),
    ),
    st.just({"cgroup": {"path": "/sys/fs/cgroup/a.slice", "type": "cgroup_skb/ingress"}}),
    st.sampled_from([{"tracing": {}}, {"tracing": {"target": "sched/sched_switch"}}]),
)
program = st.builds(lambda n, a: {"name": n, "attach": a}, st.sampled_from(["f", "g", "h"]), attach)
source = st.sampled_from(
    [
        {"path": "/opt/xdp_drop.bpf.o"},
        {"url": "https://example.org/o.bpf.o"},
        {"configMap": {"namespace": "default", "name": "objects", "key": "xdp_drop.bpf.o"}},
        {"image": {"reference": f"127.0.0.1:5000/bpf/xdp@sha256:{SHA}"}},
        {"image": {"reference": "reg.example.org/bpf/xdp:v1", "insecure": True}},
        {
            "image": {
                "reference": f"[::1]:5000/a/b:t@sha256:{SHA}",
                "pullSecret": {"namespace": "n", "name": "pull"},
            },
            "verify": {"keys": [{"secret": {"namespace": "n", "name": "k", "key": "a.pub"}}]},
        },
    ]
)
optional = st.fixed_dictionaries(
    {},
    optional={
        "globals": st.sampled_from(
            [{}, {"drop_port": 53, "ports": [1, 2], "mac": "00:11:22:33:44:55"}]
        ),
        "nodeSelector": st.sampled_from([{}, {"zone": "a", "kubernetes.io/os": "linux"}]),
        "rollout": st.sampled_from([{}, {"maxUnavailable": 2}, {"maxUnavailable": "25%"}]),
        "resetBss": st.booleans(),
        "btf": st.sampled_from([{"path": "/var/lib/btf/vmlinux.btf"}, {"path": "/x.o"}]),
        "nodeOverrides": st.sampled_from(
            [
                [],
                [{"nodeSelector": {"pool": "a"}}],
                [{"nodeSelector": {}, "globals": {"drop_port": 1}}, {"nodeSelector": {"z": "b"}}],
            ]
        ),
    },
)
valid = st.builds(
    lambda name, src, progs, opt: {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BpfProgram",
        "metadata": {"name": name},
        "spec": {"elf": {**src, "sha256": SHA}, "programs": progs, **opt},
    },
    st.sampled_from(["web", "a.b-c", "a" * 253]),
    source,
    st.lists(program, min_size=1, max_size=3),
    optional,
)

# Mistakes, each at a path; a document gets 0 to 2 of them. Values of None model nulls.
mistakes: list[tuple[tuple[object, ...], object]] = (
    [(("metadata", "name"), v) for v in ("Web", "a..b", "-a", "a-", "a" * 254, "")]
    + [
        (("spec", "globls"), {}),
        (("spec", "elf", "digest"), "x"),
        (("spec", "elf", "sha256"), SHA.upper()),
        (("spec", "elf", "sha256"), "abc"),
        (("spec", "elf", "sha256"), DELETE),
        (("spec", "elf", "sha256"), None),
        (("spec", "elf", "path"), ""),
        (("spec", "elf", "path"), 1),
        (("spec", "elf", "url"), "ftp://example.org/o"),
        (("spec", "elf", "url"), "https://example.org/second"),
        (("spec", "elf", "image"), {"reference": "reg.example.org/bpf/xdp:v1"}),  # tag alone
        (("spec", "elf", "image"), {"reference": f"busybox@sha256:{SHA}"}),
        (("spec", "elf", "image"), {"reference": f"h.io/Up@sha256:{SHA}"}),
        (("spec", "elf", "image"), {"reference": f"h.io/r@sha256:{SHA[:-1]}"}),
        (("spec", "elf", "image", "insecure"), "yes"),
        (("spec", "elf", "image", "pullSecret"), {"name": "pull"}),
        (("spec", "elf", "image", "pullSecret", "token"), "x"),
        (("spec", "elf", "verify"), {"identities": [{"issuer": "i", "subject": "s"}]}),
        (("spec", "elf", "verify"), {"keys": []}),
        (("spec", "elf", "verify"), {}),
        (("spec", "elf", "verify", "keys"), [{"secret": {"namespace": "n", "name": "k"}}]),
        (("spec", "elf", "verify", "keys"), [{"key": "x"}]),
        (
            ("spec", "elf", "verify", "keys"),
            [{"secret": {"namespace": "n", "name": "k", "key": "a"}}],
        ),
        (("spec", "elf"), "objects"),
        (("spec", "elf"), DELETE),
        (("spec", "programs"), DELETE),
        (("spec", "programs"), []),
        (("spec", "programs"), "f"),
        (("spec", "programs"), [{"name": f"f{i}", "attach": {"tracing": {}}} for i in range(65)]),
        (("spec", "programs", 0, "name"), ""),
        (("spec", "programs", 0, "name"), 3),
        (("spec", "programs", 0, "name"), DELETE),
        (("spec", "programs", 0, "weight"), 1),
        (("spec", "programs", 0, "attach"), {}),
        (("spec", "programs", 0, "attach"), "xdp"),
        (("spec", "programs", 0, "attach", "xdp"), {"interface": "eth0", "mode": "fast"}),
        (("spec", "programs", 0, "attach", "xdp"), {"interface": ""}),
        (("spec", "programs", 0, "attach", "xdp"), {"mode": "native"}),
        (("spec", "programs", 0, "attach", "xdp"), {"interface": "eth0", "mode": None}),
        (("spec", "programs", 0, "attach", "tcx"), {"interface": "eth0", "direction": "up"}),
        (("spec", "programs", 0, "attach", "cgroup"), {"path": "", "type": "cgroup_skb/ingress"}),
        (("spec", "programs", 0, "attach", "cgroup"), {"path": "/sys/fs/cgroup"}),
        (("spec", "programs", 0, "attach", "tracing"), {"target": ""}),
        (("spec", "programs", 0, "attach", "tracing"), {"target": None}),
        (("spec", "programs", 0, "attach", "tracing"), {"program": "x"}),
        (("spec", "globals"), [1]),
        (("spec", "globals"), None),
        (("spec", "nodeSelector"), {"zone": 1}),
        (("spec", "nodeSelector"), ["zone"]),
        (("spec", "rollout"), 5),
        (("spec", "rollout", "surge"), 1),
    ]
    + [(("spec", "rollout", "maxUnavailable"), v) for v in (0, -1, "0%", "1000%", "x%", True, None)]
    + [(("spec", "resetBss"), v) for v in ("yes", 1, None)]
    + [(("spec", "btf"), v) for v in ({}, {"path": ""}, {"path": "rel.btf"}, "x", {"file": "/x"})]
    + [
        (("spec", "programs", 1), {"name": "f", "attach": {"tracing": {}}}),  # maybe a duplicate
    ]
    + [
        (("spec", "nodeOverrides"), v)
        for v in (
            "pool-a",
            [{"globals": {"a": 1}}],
            [{"nodeSelector": {"pool": 1}}],
            [{"nodeSelector": {}, "selector": {}}],
            [{"nodeSelector": {}, "globals": [1]}],
            ["x"],
        )
    ]
)


def mutate(doc: dict, path: tuple[object, ...], value: object) -> None:
    *parents, last = path
    here: object = doc
    for key in parents:
        if isinstance(here, dict) and isinstance(key, str):
            here = here.setdefault(key, {})
        elif isinstance(here, list) and isinstance(key, int) and key < len(here):
            here = here[key]
        else:
            return  # the path runs through a value an earlier mistake replaced
    if isinstance(here, dict) and isinstance(last, str):
        if value is DELETE:
            here.pop(last, None)
        else:
            here[last] = copy.deepcopy(value)
    elif isinstance(here, list) and isinstance(last, int):
        if value is DELETE:
            return
        if last < len(here):
            here[last] = copy.deepcopy(value)
        else:
            here.append(copy.deepcopy(value))


def with_mistakes(doc: dict, picked: list[tuple[tuple[object, ...], object]]) -> dict:
    for path, value in picked:
        mutate(doc, path, value)
    return doc


documents = st.builds(with_mistakes, valid, st.lists(st.sampled_from(mistakes), max_size=2))


@pytest.fixture(scope="module")
def custom(control_plane, kubectl) -> client.CustomObjectsApi:
    kubectl("apply", "-f", str(ROOT / "crds" / "bpfglobals.io_bpfprograms.yaml"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{PROGRAMS}.{GROUP}")
    return client.CustomObjectsApi(config.new_client_from_config(control_plane.kubeconfig))


def apiserver_verdict(api: client.CustomObjectsApi, doc: dict) -> str | None:
    """None if the apiserver would store `doc` (a dry run, strict field validation as
    `kubectl apply` does), else its reason."""
    try:
        api.create_cluster_custom_object(
            GROUP, VERSION, PROGRAMS, doc, dry_run="All", field_validation="Strict"
        )
    except ApiException as e:
        if e.status not in (400, 422):
            raise
        return json.loads(e.body).get("message", e.reason)
    return None


def parser_verdict(doc: dict) -> str | None:
    try:
        parse_manifest(doc, require_sha256=True)
    except ManifestError as e:
        return str(e)
    return None


@settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(doc=documents)
def test_crd_and_parser_accept_the_same_documents(custom, doc: dict) -> None:
    api, ours = apiserver_verdict(custom, doc), parser_verdict(doc)
    assert (api is None) == (ours is None), (
        f"apiserver: {api or 'accepted'}\nparser: {ours or 'accepted'}\n{json.dumps(doc)}"
    )


BASE = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "BpfProgram",
    "metadata": {"name": "web"},
    "spec": {
        "elf": {"path": "/opt/xdp_drop.bpf.o", "sha256": SHA},
        "programs": [
            {"name": "f", "attach": {"xdp": {"interface": "eth0"}}},
            {"name": "g", "attach": {"tracing": {}}},
        ],
    },
}


def test_a_valid_document_passes_both(custom) -> None:
    assert apiserver_verdict(custom, BASE) is None and parser_verdict(BASE) is None


@pytest.mark.parametrize(("path", "value"), mistakes, ids=lambda x: repr(x)[:40])
def test_each_mistake_alone_gets_the_same_verdict(custom, path, value) -> None:
    """Every mistake the generator knows, on its own: both sides judge it alike (most are
    refused; a few, such as null for an optional field or a second program, are valid)."""
    doc = copy.deepcopy(BASE)
    mutate(doc, path, value)
    api, ours = apiserver_verdict(custom, doc), parser_verdict(doc)
    assert (api is None) == (ours is None), (
        f"apiserver: {api or 'accepted'}\nparser: {ours or 'accepted'}\n{json.dumps(doc)}"
    )
