"""End to end with images: the operator and two node agents under the chart's signature
policy (`--require-signatures`), objects from a real registry on loopback signed by the real
cosign CLI, keys and pull secrets in Secrets of a real apiserver; programs in the kernel.

Also measured here (printed, run with -s): apply -> Ready with a cold and a warm cache, and
the bytes each node pulled from the registry (once per digest).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time

import pytest

from tests.e2e.test_operator import events_for, node_status, xdp_ids
from tests.support.manifests import bpf_program
from tests.support.registry import (
    build_bpfman_image,
    cosign_key_pair,
    cosign_sign,
    free_port,
    push,
    registry,
)
from tests.support.stack import Stack, wait_for

NODES = 2
PULLED = re.compile(r"pulled (\S+) \((sha256:[0-9a-f]+), \w+\): (\d+) bytes")


@pytest.fixture(scope="module")
def oci(control_plane, kubectl, tmp_path_factory, bpf_object):
    tmp = tmp_path_factory.mktemp("oci-stack")
    s = Stack(control_plane, kubectl, tmp)
    with registry(tmp / "registry") as addr:
        try:
            s.registry = addr
            s.keys = {who: cosign_key_pair(tmp / f"cosign-{who}") for who in ("signer", "other")}
            kubectl(
                "create", "secret", "generic", f"cosign-{s.tag}", "-n", "default",
                f"--from-file=signer.pub={s.keys['signer'] / 'cosign.pub'}",
                f"--from-file=other.pub={s.keys['other'] / 'cosign.pub'}",
            )  # fmt: skip
            s.on_close(lambda: kubectl("delete", "secret", f"cosign-{s.tag}", check=False))
            s.elf = bpf_object("examples/xdp_drop.bpf.c")
            s.sha = hashlib.sha256(s.elf.read_bytes()).hexdigest()
            for i in range(NODES):
                s.start_agent(s.add_node(i), extra=("--require-signatures",))
            s.start_operator("--require-signatures")
            s.wait_agents_connected()
            yield s
        finally:
            s.close()


def program(s: Stack, name: str, elf: dict, drop_port: int = 7001) -> dict:
    xdp = {"name": "xdp_drop", "attach": {"xdp": {"interface": "bpfg0", "mode": "generic"}}}
    return bpf_program(
        name, elf, [xdp], {"drop_port": drop_port}, nodeSelector={"bpfglobals.io/e2e": s.tag}
    )


def signed_by(s: Stack, ref: str, key: str = "signer") -> dict:
    secret = {"namespace": "default", "name": f"cosign-{s.tag}", "key": f"{key}.pub"}
    return {"image": {"reference": ref}, "verify": {"keys": [{"secret": secret}]}}


def pulls(s: Stack) -> dict[str, list[tuple[str, int]]]:
    """node -> [(image digest, bytes)] from each agent's log."""
    out = {}
    for node in s.nodes:
        text = (s.tmp / f"agent-{node}.log").read_text()
        out[node] = [(m[1], int(m[2])) for m in PULLED.findall(text)]
    return out


def wait_degraded(s: Stack, name: str, reason: str) -> dict:
    generation = s.program(name)["metadata"]["generation"]

    def degraded():
        st = s.program(name).get("status") or {}
        cond = {c["type"]: c for c in st.get("conditions") or []}
        ok = st.get("observedGeneration") == generation and st.get("phase") == "Degraded"
        return st if ok and cond["Degraded"]["reason"] == reason else None

    return wait_for(f"{name} Degraded/{reason}", degraded, 120)


def test_signed_image_by_digest_rolls_out_cold_then_warm_pulled_once_per_node(oci) -> None:
    """Three rounds, each with an object no cache holds: a cold rollout (each node pulls the
    digest once), then the same BpfProgram deleted and applied again (warm: nothing pulled)."""
    cold, warm, per_round = [], [], []
    for i in range(3):
        obj = oci.elf.parent / f"round{i}.bpf.o"  # another digest each round, same programs
        obj.write_bytes(oci.elf.read_bytes() + b"\0" * 8 * i)
        ref = push(obj, f"{oci.registry}/bpf/xdp-drop:round{i}")
        cosign_sign(ref, oci.keys["signer"])
        before = pulls(oci)
        for times in (cold, warm):
            oci.kubectl("delete", "bpfprogram", "img", "--ignore-not-found", "--timeout=120s")
            t0 = time.monotonic()
            oci.apply(program(oci, "img", signed_by(oci, ref)))
            st = oci.wait_ready("img", 1, timeout=180)
            times.append(time.monotonic() - t0)
            assert st["elfSha256"] == hashlib.sha256(obj.read_bytes()).hexdigest()
            for node, n in node_status(oci.program("img")).items():
                assert xdp_ids(oci.nodes[node]["net"]) == [n["programs"][0]["id"]]
            new = {n: p[len(before[n]) :] for n, p in pulls(oci).items()}
            assert {n: [d for d, _ in p] for n, p in new.items()} == {
                n: [ref.split("@")[1]] for n in oci.nodes
            }  # once per digest: the warm apply pulled nothing more
        per_round.append({n: sum(b for _, b in p) for n, p in new.items()})
    print(
        f"\nMEASURED apply->Ready cold {', '.join(f'{t:.2f}' for t in cold)} s, warm "
        f"{', '.join(f'{t:.2f}' for t in warm)} s; bytes pulled per node per rollout "
        f"{per_round} (object {oci.elf.stat().st_size} bytes)"
    )


@pytest.mark.parametrize(
    ("how", "message"),
    [("unsigned", "unsigned: no cosign signature"), ("other", "not signed by")],
)
def test_unsigned_or_wrongly_signed_image_is_refused_and_the_program_stays(
    oci, how, message
) -> None:
    running = node_status(oci.program("img"))
    obj = oci.elf.parent / f"{how}.bpf.o"
    obj.write_bytes(oci.elf.read_bytes() + b"\0" * 8)  # another digest, the same programs
    ref = push(obj, f"{oci.registry}/bpf/xdp-drop:{how}")
    if how == "other":
        cosign_sign(ref, oci.keys["other"])
    oci.apply(program(oci, "img", signed_by(oci, ref)))
    st = wait_degraded(oci, "img", "SignatureInvalid")
    assert message in st["message"]
    assert "SignatureInvalid" in events_for(oci, "img")
    for node, n in node_status(oci.program("img")).items():
        assert n["programs"][0]["id"] == running[node]["programs"][0]["id"]
        assert xdp_ids(oci.nodes[node]["net"]) == [running[node]["programs"][0]["id"]]


def test_policy_refuses_sources_that_cannot_be_signed(oci) -> None:
    url = {"url": "http://127.0.0.1:1/x.bpf.o", "sha256": oci.sha}
    oci.apply(program(oci, "unsigned-url", url))
    st = wait_degraded(oci, "unsigned-url", "SignatureInvalid")
    assert "the cluster's policy requires a signed image" in st["message"]
    oci.kubectl("delete", "bpfprogram", "unsigned-url", "--timeout=60s")


def test_bpfman_image_by_tag_and_sha256_rolls_out(oci, tmp_path) -> None:
    tag = f"{oci.registry}/bpfman/xdp-drop:latest"
    digest = build_bpfman_image(oci.elf, tag, tmp_path)
    cosign_sign(f"{tag}@{digest}", oci.keys["signer"])
    elf = {**signed_by(oci, tag), "sha256": oci.sha}  # by tag, pinned by the object's digest
    oci.apply(program(oci, "img", elf, drop_port=7010))
    st = oci.wait_ready("img", oci.program("img")["metadata"]["generation"], timeout=180)
    assert st["elfSha256"] == oci.sha
    for node, n in node_status(oci.program("img")).items():
        assert xdp_ids(oci.nodes[node]["net"]) == [n["programs"][0]["id"]]


def test_missing_image_is_refused_and_the_program_stays(oci) -> None:
    running = node_status(oci.program("img"))
    missing = f"{oci.registry}/bpf/nothing@sha256:{'0' * 64}"
    oci.apply(program(oci, "img", signed_by(oci, missing)))
    st = wait_degraded(oci, "img", "InvalidSpec")
    assert "manifest not found" in st["message"]
    for node, n in node_status(oci.program("img")).items():
        assert n["programs"][0]["id"] == running[node]["programs"][0]["id"]


def test_registry_down_then_back_the_rollout_resumes(oci, tmp_path) -> None:
    port = free_port()
    state = tmp_path / "flaky"
    obj = oci.elf.parent / "flaky.bpf.o"  # a digest no cache has (a cached one needs no pull)
    obj.write_bytes(oci.elf.read_bytes() + b"\0" * 16)
    with registry(state, port=port) as addr:
        ref = push(obj, f"{addr}/bpf/xdp-drop:flaky")
        cosign_sign(ref, oci.keys["signer"])
    running = node_status(oci.program("img"))
    oci.apply(program(oci, "img", signed_by(oci, ref), drop_port=7005))
    st = wait_degraded(oci, "img", "SourceUnavailable")
    assert "unreachable or failing after 4 attempts" in st["message"]
    for node, n in node_status(oci.program("img")).items():
        assert n["programs"][0]["id"] == running[node]["programs"][0]["id"]
    with registry(state, port=port):
        oci.wait_ready("img", oci.program("img")["metadata"]["generation"], timeout=120)


def test_private_repository_with_and_without_the_pull_secret(oci, tmp_path) -> None:
    with registry(tmp_path / "private", users={"alice": "s3cret"}) as addr:
        env = {**os.environ, "BPFGLOBALS_REGISTRY_USERNAME": "alice",
               "BPFGLOBALS_REGISTRY_PASSWORD": "s3cret"}  # fmt: skip
        obj = oci.elf.parent / "private.bpf.o"  # a digest no cache has
        obj.write_bytes(oci.elf.read_bytes() + b"\0" * 24)
        ref = push(obj, f"{addr}/private/xdp:v1", env=env)
        cosign_sign(
            ref, oci.keys["signer"], "--registry-username=alice", "--registry-password=s3cret"
        )
        elf = signed_by(oci, ref)
        running = node_status(oci.program("img"))
        oci.apply(program(oci, "img", elf))  # the running BpfProgram, now from the private repo
        st = wait_degraded(oci, "img", "InvalidSpec")
        assert "access denied anonymously" in st["message"]
        for node, n in node_status(oci.program("img")).items():
            assert n["programs"][0]["id"] == running[node]["programs"][0]["id"]
        auth = base64.b64encode(b"alice:s3cret").decode()
        cfg = json.dumps({"auths": {addr: {"auth": auth}}})
        oci.kubectl(
            "create", "secret", "docker-registry", f"pull-{oci.tag}", "-n", "default",
            "--from-file=.dockerconfigjson=/dev/stdin", input=cfg,
        )  # fmt: skip
        try:
            elf["image"]["pullSecret"] = {"namespace": "default", "name": f"pull-{oci.tag}"}
            oci.apply(program(oci, "img", elf))
            oci.wait_ready("img", oci.program("img")["metadata"]["generation"], 180)
        finally:
            oci.kubectl("delete", "secret", f"pull-{oci.tag}", check=False)
