"""Objects pulled from a real registry (docker-registry on loopback), in the formats users
have: `bpfglobals push`, `oras push`, a bpfman bytecode image built by buildah from a
Containerfile like bpfman's, an Inspektor-Gadget-style layer, a multi-arch index; signatures
made by the real cosign CLI. Through `ElfSources`, the path the operator and agents take.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bpfglobals.node.elf_source import ElfSources
from bpfglobals.node.elf_source_errors import ElfSourceError, SignatureInvalid
from bpfglobals.node.manifest import parse_elf_source
from bpfglobals.node.oci.fetch import fetch_image
from bpfglobals.node.oci.formats import GADGET_LAYER, OBJECT_LAYER, OCI_INDEX, Descriptor
from bpfglobals.node.oci.reference import parse_reference
from bpfglobals.node.oci.registry import Credentials, NotFound, Registry, RegistryError, Retry
from tests.support.registry import (
    CLI,
    build_bpfman_image,
    cosign_key_pair,
    cosign_sign,
    push,
    registry,
    run,
    tool,
)
from tests.support.token_auth import token_service


@pytest.fixture(scope="module")
def reg(tmp_path_factory) -> Iterator[str]:
    with registry(tmp_path_factory.mktemp("registry")) as addr:
        yield addr


@pytest.fixture(scope="module")
def objects(bpf_object) -> tuple[Path, Path]:
    return bpf_object("examples/xdp_drop.bpf.c"), bpf_object("globals")


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    """Two cosign key pairs made by `cosign generate-key-pair`: the signer's and another."""
    return {who: cosign_key_pair(tmp_path_factory.mktemp(f"cosign-{who}"))
            for who in ("signer", "other")}  # fmt: skip


def sources(tmp: Path, keys: dict[str, bytes] | None = None) -> ElfSources:
    """ElfSources as the agent makes it, its Secrets read from `keys` (name -> PEM)."""
    secrets = {("bpf", "keys"): keys or {}}
    return ElfSources(cache_dir=tmp / "cache", read_secret=lambda r: secrets[(r.namespace, r.name)])


def image_source(ref: str, sha: str | None = None, key: str | None = None):
    doc: dict = {"image": {"reference": ref}}
    if sha:
        doc["sha256"] = sha
    if key:
        doc["verify"] = {"keys": [{"secret": {"namespace": "bpf", "name": "keys", "key": key}}]}
    return parse_elf_source(doc, require_sha256=True)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def repo() -> str:
    return f"e2e/{uuid.uuid4().hex[:8]}"


def test_push_then_pull_by_digest_once_per_digest_and_from_cache_with_the_registry_down(
    tmp_path, objects, tmp_path_factory
) -> None:
    obj = objects[0]
    with registry(tmp_path_factory.mktemp("shortlived")) as addr:
        pinned = push(obj, f"{addr}/{repo()}:v1")
        src = sources(tmp_path)
        blob = src.fetch(image_source(pinned))
        assert (blob.name, blob.data, blob.sha256) == (obj.name, obj.read_bytes(), sha(obj))
        first = src.registry_bytes
        assert obj.stat().st_size < first < obj.stat().st_size + 4096  # manifest + object
        assert src.fetch(image_source(pinned)).data == obj.read_bytes()
        assert src.registry_bytes == first  # once per digest
    # The registry is gone: a new process (the agent restarted) with the same cache dir.
    again = sources(tmp_path)
    assert again.fetch(image_source(pinned)).data == obj.read_bytes()
    assert again.registry_bytes == 0


def test_tag_with_sha256_and_a_moved_tag_is_refused(tmp_path, reg, objects) -> None:
    r = f"{reg}/{repo()}:stable"
    push(objects[0], r)
    blob = sources(tmp_path).fetch(image_source(r, sha(objects[0])))
    assert blob.sha256 == sha(objects[0])
    push(objects[1], r)  # the tag moves to another object
    with pytest.raises(ElfSourceError, match="did the tag move"):
        sources(tmp_path / "cold").fetch(image_source(r, sha(objects[0])))


def test_oras_pushed_artifact_and_gadget_layer(tmp_path, reg, objects) -> None:
    obj = objects[0]
    for media, artifact in ((OBJECT_LAYER, "application/vnd.bpfglobals.program.v1"),
                            (GADGET_LAYER, "application/vnd.gadget.v1")):  # fmt: skip
        r = f"{reg}/{repo()}:v1"
        out = run(
            tool("oras"), "push", "--plain-http", "--artifact-type", artifact, r,
            f"{obj.name}:{media}", "--format", "json", cwd=obj.parent,
        )  # fmt: skip
        digest = json.loads(out)["digest"]
        pulled = fetch_image(parse_reference(f"{r}@{digest}"), limit=1 << 20)
        assert pulled.data == obj.read_bytes() and pulled.name == obj.name
        assert pulled.format == ("artifact" if media == OBJECT_LAYER else "gadget")


def test_bpfman_bytecode_image_built_by_buildah(tmp_path, reg, objects) -> None:
    obj = objects[0]
    r = f"{reg}/{repo()}:latest"
    digest = build_bpfman_image(obj, r, tmp_path)
    pulled = fetch_image(parse_reference(f"{r}@{digest}"), limit=1 << 20)
    assert (pulled.format, pulled.name, pulled.data) == ("bpfman", obj.name, obj.read_bytes())


def test_multi_arch_index_picks_the_node_architecture(reg, objects) -> None:
    name = repo()
    amd = parse_reference(push(objects[0], f"{reg}/{name}:amd64"))
    arm = parse_reference(push(objects[1], f"{reg}/{name}:arm64"))
    r = Registry(parse_reference(f"{reg}/{name}:multi"))
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d.digest,
             "size": len(r.manifest(name, d.digest or "").data),
             "platform": {"os": "linux", "architecture": arch}}
            for d, arch in ((arm, "arm64"), (amd, "amd64"))
        ],
    }  # fmt: skip
    digest = r.push_manifest(name, "multi", json.dumps(index).encode(), OCI_INDEX)
    ref = parse_reference(f"{reg}/{name}@{digest}")
    assert (
        fetch_image(ref, limit=1 << 20, platform=("linux", "amd64")).data == objects[0].read_bytes()
    )
    assert (
        fetch_image(ref, limit=1 << 20, platform=("linux", "arm64")).data == objects[1].read_bytes()
    )
    with pytest.raises(ElfSourceError, match="linux/riscv64"):
        fetch_image(ref, limit=1 << 20, platform=("linux", "riscv64"))


def test_cosign_signed_image_is_accepted_unsigned_and_other_key_refused(
    tmp_path, reg, objects, keys
) -> None:
    pems = {k: (d / "cosign.pub").read_bytes() for k, d in keys.items()}
    signed = push(objects[0], f"{reg}/{repo()}:v1")
    cosign_sign(signed, keys["signer"])
    src = sources(tmp_path, pems)
    assert src.fetch(image_source(signed, key="signer")).data == objects[0].read_bytes()
    with pytest.raises(SignatureInvalid, match="not signed by"):
        sources(tmp_path / "b", pems).fetch(image_source(signed, key="other"))
    unsigned = push(objects[1], f"{reg}/{repo()}:v1")
    with pytest.raises(SignatureInvalid, match="unsigned"):
        sources(tmp_path / "c", pems).fetch(image_source(unsigned, key="signer"))


def test_cosign_oci_1_1_referrer_signature_is_accepted(tmp_path, reg, objects, keys) -> None:
    pems = {k: (d / "cosign.pub").read_bytes() for k, d in keys.items()}
    r = push(objects[0], f"{reg}/{repo()}:v1")
    cosign_sign(
        r, keys["signer"], "--registry-referrers-mode=oci-1-1", env={"COSIGN_EXPERIMENTAL": "1"}
    )
    tag = r.split("@")[1].replace(":", "-") + ".sig"
    reg_ = Registry(parse_reference(r))
    with pytest.raises(NotFound):  # not the tag scheme: a referrer
        reg_.manifest(parse_reference(r).repository, tag)
    assert (
        sources(tmp_path, pems).fetch(image_source(r, key="signer")).data == objects[0].read_bytes()
    )


def test_tampered_blob_missing_image_and_size_limit(
    tmp_path, reg, objects, tmp_path_factory
) -> None:
    state = tmp_path_factory.mktemp("tamper")
    with registry(state) as addr:
        r = push(objects[0], f"{addr}/{repo()}:v1")
        layer = sha(objects[0])
        data = next(state.glob(f"data/docker/registry/v2/blobs/sha256/*/{layer}/data"))
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2] ^= 0xFF  # one byte flipped in the registry's storage
        data.write_bytes(bytes(raw))
        with pytest.raises(RegistryError, match="does not match its descriptor"):
            fetch_image(parse_reference(r), limit=1 << 20)
        missing = f"{addr}/nothing/here@sha256:{'0' * 64}"
        with pytest.raises(NotFound, match="manifest not found"):
            fetch_image(parse_reference(missing), limit=1 << 20)
        small = parse_reference(push(objects[1], f"{addr}/{repo()}:v1"))
        reg_ = Registry(small)
        manifest = reg_.manifest(small.repository, small.digest or "")
        layer_desc = Descriptor.of(json.loads(manifest.data)["layers"][0], "layer")
        with pytest.raises(RegistryError, match="over the 100-byte limit"):
            reg_.blob(small.repository, layer_desc, limit=100)
        assert reg_.bytes_in == len(manifest.data)  # refused before a byte of it was read


def test_registry_down_is_retried_with_backoff_then_refused(tmp_path) -> None:
    waits: list[float] = []
    dead = parse_reference(f"127.0.0.1:1/x@sha256:{'0' * 64}")
    with pytest.raises(RegistryError, match="unreachable or failing after 4 attempts"):
        fetch_image(dead, limit=1 << 20, retry=Retry(sleep=waits.append))
    assert waits == [0.5, 1.0, 2.0]


def test_private_repository_needs_the_pull_secret(tmp_path, objects, tmp_path_factory) -> None:
    with registry(tmp_path_factory.mktemp("private"), users={"alice": "s3cret"}) as addr:
        name = f"{addr}/{repo()}:v1"
        env = {**os.environ, "BPFGLOBALS_REGISTRY_USERNAME": "alice",
               "BPFGLOBALS_REGISTRY_PASSWORD": "s3cret"}  # fmt: skip
        out = run(CLI, "push", str(objects[0]), name, env=env)
        ref = out.strip().splitlines()[-1]
        with pytest.raises(RegistryError, match="access denied anonymously"):
            fetch_image(parse_reference(ref), limit=1 << 20)
        with pytest.raises(RegistryError, match="access denied with the pull secret"):
            fetch_image(parse_reference(ref), limit=1 << 20, credentials=Credentials("alice", "x"))
        auth = base64.b64encode(b"alice:s3cret").decode()
        cfg = json.dumps({"auths": {addr: {"auth": auth}}}).encode()
        secrets = {("bpf", "pull"): {".dockerconfigjson": cfg}}
        src = ElfSources(read_secret=lambda r: secrets[(r.namespace, r.name)])
        doc = {"image": {"reference": ref, "pullSecret": {"namespace": "bpf", "name": "pull"}}}
        assert src.fetch(parse_elf_source(doc)).data == objects[0].read_bytes()


def test_bearer_token_auth_with_the_pull_secret(tmp_path, objects) -> None:
    with (
        token_service(tmp_path, "bob", "t0ken") as auth,
        registry(tmp_path / "reg", token=auth) as addr,
    ):
        env = {**os.environ, "BPFGLOBALS_REGISTRY_USERNAME": "bob",
               "BPFGLOBALS_REGISTRY_PASSWORD": "t0ken"}  # fmt: skip
        ref = parse_reference(run(CLI, "push", str(objects[0]), f"{addr}/t/xdp:v1", env=env)
                              .strip().splitlines()[-1])  # fmt: skip
        with pytest.raises(RegistryError, match="anonymous access refused"):
            fetch_image(ref, limit=1 << 20)
        with pytest.raises(RegistryError, match="credentials refused"):
            fetch_image(ref, limit=1 << 20, credentials=Credentials("bob", "wrong"))
        pulled = fetch_image(ref, limit=1 << 20, credentials=Credentials("bob", "t0ken"))
        assert pulled.data == objects[0].read_bytes()


def test_signed_tag_with_sha256_costs_manifests_not_the_object_the_second_time(
    tmp_path, reg, objects, keys
) -> None:
    pems = {k: (d / "cosign.pub").read_bytes() for k, d in keys.items()}
    tagged = f"{reg}/{repo()}:v1"
    cosign_sign(push(objects[0], tagged), keys["signer"])
    src = sources(tmp_path, pems)
    spec = image_source(tagged, sha(objects[0]), key="signer")
    assert src.fetch(spec).data == objects[0].read_bytes()
    first = src.registry_bytes
    assert src.fetch(spec).data == objects[0].read_bytes()
    again = src.registry_bytes - first
    assert 0 < again < objects[0].stat().st_size  # the tag's manifest and its signature
