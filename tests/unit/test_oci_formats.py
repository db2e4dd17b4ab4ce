"""OCI references, manifest/index selection, object layouts and cosign payload checks (pure:
no registry; the registry-backed tests are tests/e2e/test_oci_*.py)."""

from __future__ import annotations

import base64
import gzip
import io
import json
import tarfile

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bpfglobals.node.elf_source_errors import ElfSourceError, SignatureInvalid
from bpfglobals.node.manifest import ManifestError, parse_elf_source
from bpfglobals.node.oci.cosign import (
    PAYLOAD_TYPE,
    PublicKey,
    load_key,
    payload_problem,
    signature_matches,
)
from bpfglobals.node.oci.fetch import docker_config_credentials
from bpfglobals.node.oci.formats import (
    GADGET_LAYER,
    OBJECT_LAYER,
    ImageFormatError,
    find_object,
    object_from_tar,
    select_platform,
)
from bpfglobals.node.oci.reference import ReferenceError, base_url, parse_reference

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")


def desc(media_type: str, digest: str = D1, size: int = 10, **annotations: str) -> dict:
    return {"mediaType": media_type, "digest": digest, "size": size, "annotations": annotations}


# -- references --------------------------------------------------------------------------------


def test_reference_parses_host_repository_tag_and_digest() -> None:
    r = parse_reference(f"127.0.0.1:5000/bpf/xdp:v1@{D1}")
    assert (r.registry, r.repository, r.tag, r.digest) == ("127.0.0.1:5000", "bpf/xdp", "v1", D1)
    assert str(r) == f"127.0.0.1:5000/bpf/xdp:v1@{D1}"
    hub = parse_reference("docker.io/library/busybox:1")
    assert (hub.registry, hub.repository, hub.api_host) == (
        "docker.io",
        "library/busybox",
        "registry-1.docker.io",
    )
    assert parse_reference("[::1]:5000/a/b").registry == "[::1]:5000"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "busybox",  # no registry host: Docker Hub is not implied
        "library/busybox",
        "http://h/x",
        "h.io/Repo",
        f"h.io/r@{D1[:-1]}",
        "h.io/r:bad tag",
        "h.io/r@md5:00",
        " h.io/r:t",
    ],
)
def test_bad_reference_is_refused(text: str) -> None:
    with pytest.raises(ReferenceError):
        parse_reference(text)


def test_loopback_registries_use_plain_http_others_need_insecure() -> None:
    assert base_url(parse_reference("127.0.0.1:5000/a:t"), False) == "http://127.0.0.1:5000"
    assert base_url(parse_reference("localhost:5000/a:t"), False) == "http://localhost:5000"
    assert base_url(parse_reference("[::1]:5000/a:t"), False) == "http://[::1]:5000"
    assert base_url(parse_reference("10.0.0.1:5000/a:t"), False) == "https://10.0.0.1:5000"
    assert base_url(parse_reference("10.0.0.1:5000/a:t"), True) == "http://10.0.0.1:5000"


# -- the spec ----------------------------------------------------------------------------------


def test_a_tag_alone_is_refused_a_digest_or_tag_with_sha256_is_accepted() -> None:
    with pytest.raises(ManifestError, match="a tag alone can move"):
        parse_elf_source({"image": {"reference": "h.io/r:v1"}}, require_sha256=True)
    by_digest = parse_elf_source({"image": {"reference": f"h.io/r@{D1}"}}, require_sha256=True)
    assert by_digest.image is not None and by_digest.image.reference.digest == D1
    by_tag = parse_elf_source({"image": {"reference": "h.io/r:v1"}, "sha256": "ab" * 32})
    assert by_tag.sha256 == "ab" * 32


def test_verify_needs_keys_refuses_keyless_and_other_sources() -> None:
    img = {"reference": f"h.io/r@{D1}"}
    key = {"secret": {"namespace": "n", "name": "s", "key": "cosign.pub"}}
    src = parse_elf_source({"image": img, "verify": {"keys": [key]}})
    assert src.verify is not None and src.verify.keys[0].key == "cosign.pub"
    with pytest.raises(ManifestError, match="keyless"):
        parse_elf_source(
            {"image": img, "verify": {"identities": [{"issuer": "i", "subject": "s"}]}}
        )
    with pytest.raises(ManifestError, match="non-empty list"):
        parse_elf_source({"image": img, "verify": {"keys": []}})
    with pytest.raises(ManifestError, match=r"spec\.elf\.image only"):
        parse_elf_source({"path": "/x.o", "sha256": "ab" * 32, "verify": {"keys": [key]}})


# -- index and layouts -------------------------------------------------------------------------


def test_index_selects_the_node_platform() -> None:
    index = {
        "manifests": [
            {**desc("m", D1), "platform": {"os": "linux", "architecture": "arm64"}},
            {**desc("m", D2), "platform": {"os": "linux", "architecture": "amd64"}},
            {**desc("m", D3), "platform": {"os": "unknown", "architecture": "unknown"}},
        ]
    }
    assert select_platform(index, "i", ("linux", "amd64")).digest == D2
    assert select_platform(index, "i", ("linux", "arm64")).digest == D1
    with pytest.raises(ImageFormatError, match="linux/s390x"):
        select_platform(index, "i", ("linux", "s390x"))


def test_an_index_without_platforms_must_hold_one_manifest() -> None:
    assert select_platform({"manifests": [desc("m", D1)]}, "i", ("linux", "amd64")).digest == D1
    with pytest.raises(ImageFormatError, match="no manifest for this node"):
        select_platform({"manifests": [desc("m", D1), desc("m", D2)]}, "i", ("linux", "amd64"))


def test_layouts_artifact_gadget_and_bpfman() -> None:
    art = find_object(
        {"layers": [desc(OBJECT_LAYER, **{"org.opencontainers.image.title": "x.bpf.o"})]}, None, "w"
    )
    assert (art.format, art.name) == ("artifact", "x.bpf.o")
    gadget = find_object(
        {"layers": [desc("application/vnd.gadget.config.v1+yaml", D2), desc(GADGET_LAYER)]},
        None,
        "w",
    )
    assert (gadget.format, gadget.layer.digest) == ("gadget", D1)
    labels = {"io.ebpf.programs": '{"xdp_pass":"xdp"}', "io.ebpf.maps": "{}"}
    bpfman = find_object(
        {"layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip")]},
        {"config": {"Labels": labels}},
        "w",
    )
    assert (bpfman.format, bpfman.name) == ("bpfman", None)


def test_layouts_refused_with_what_was_found() -> None:
    with pytest.raises(ImageFormatError, match="no BPF object found: layer types application/x"):
        find_object({"layers": [desc("application/x")]}, None, "w")
    with pytest.raises(ImageFormatError, match="exactly one object"):
        find_object({"layers": [desc(OBJECT_LAYER, D1), desc(OBJECT_LAYER, D2)]}, None, "w")
    tar = "application/vnd.oci.image.layer.v1.tar+gzip"
    labels = {"config": {"Labels": {"io.ebpf.programs": "{}"}}}
    with pytest.raises(ImageFormatError, match="exactly one tar layer"):
        find_object({"layers": [desc(tar, D1), desc(tar, D2)]}, labels, "w")
    with pytest.raises(ImageFormatError, match="must be a JSON object"):
        find_object({"layers": [desc(tar)]}, {"config": {"Labels": {"io.ebpf.programs": "x"}}}, "w")


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return gzip.compress(out.getvalue())


def test_bpfman_layer_yields_the_one_object_at_its_root() -> None:
    blob = _tar({"./pass.bpf.o": b"\x7fELF1", "sub/other.o": b"x", "README": b"r"})
    assert object_from_tar(blob, "r:gz", 100, "w") == ("pass.bpf.o", b"\x7fELF1")
    with pytest.raises(ImageFormatError, match=r"a\.o, b\.o"):
        object_from_tar(_tar({"a.o": b"1", "b.o": b"2"}), "r:gz", 100, "w")
    with pytest.raises(ImageFormatError, match="over the 3 limit"):
        object_from_tar(_tar({"a.o": b"1234"}), "r:gz", 3, "w")
    with pytest.raises(ImageFormatError, match="not a readable tar"):
        object_from_tar(b"junk", "r:gz", 100, "w")


# -- cosign payloads ---------------------------------------------------------------------------


def _payload(digest: str, kind: str = PAYLOAD_TYPE) -> bytes:
    doc = {
        "critical": {
            "identity": {"docker-reference": "h.io/r"},
            "image": {"docker-manifest-digest": digest},
            "type": kind,
        },
        "optional": None,
    }
    return json.dumps(doc).encode()


def _key() -> tuple[ec.EllipticCurvePrivateKey, PublicKey]:
    priv = ec.generate_private_key(ec.SECP256R1())
    pem = priv.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return priv, PublicKey("test key", pem)


def test_signature_verifies_only_with_the_signing_key_and_payload() -> None:
    priv, pub = _key()
    _, other = _key()
    payload = _payload(D1)
    sig = base64.b64encode(priv.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    assert signature_matches(load_key(pub), payload, sig)
    assert not signature_matches(load_key(other), payload, sig)
    assert not signature_matches(load_key(pub), payload + b" ", sig)
    assert not signature_matches(load_key(pub), payload, "not base64!")


def test_payload_must_name_the_pulled_digest_and_cosign_type() -> None:
    assert payload_problem(_payload(D1), D1) is None
    assert "is for " + D2 in (payload_problem(_payload(D2), D1) or "")
    assert "type" in (payload_problem(_payload(D1, "other"), D1) or "")
    assert "not a cosign" in (payload_problem(b"[]", D1) or "")


def test_a_key_that_is_not_pem_is_refused() -> None:
    with pytest.raises(SignatureInvalid, match="not a PEM public key"):
        load_key(PublicKey("secret n/s key k", b"-----BEGIN NOTHING-----"))


def test_pull_secret_credentials_by_registry() -> None:
    auth = base64.b64encode(b"alice:s3cret").decode()
    cfg = {
        ".dockerconfigjson": json.dumps({"auths": {"https://h.io:5000": {"auth": auth}}}).encode()
    }
    c = docker_config_credentials(cfg, "h.io:5000", "w")
    assert (c.username, c.password) == ("alice", "s3cret")
    with pytest.raises(ElfSourceError, match=r"no credentials for other\.io"):
        docker_config_credentials(cfg, "other.io", "w")
    with pytest.raises(ElfSourceError, match="dockerconfigjson"):
        docker_config_credentials({"token": b"x"}, "h.io:5000", "w")


def test_the_crd_checks_references_with_the_parser_pattern() -> None:
    import yaml

    from bpfglobals.node.oci.reference import REFERENCE_PATTERN
    from tests.support.progs import EXAMPLES

    crd = yaml.safe_load((EXAMPLES.parent / "crds" / "bpfglobals.io_bpfprograms.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    image = spec["properties"]["elf"]["properties"]["image"]["properties"]
    assert image["reference"]["pattern"] == REFERENCE_PATTERN
