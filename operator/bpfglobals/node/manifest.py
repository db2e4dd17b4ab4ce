"""The `BpfProgram` manifest: parsed and validated into frozen specs (pure, no I/O).

The same document is used by `bpfglobals apply -f` on one machine and by `kubectl apply` in a
cluster; the node core, the operator and the agents all start from `parse_manifest` /
`parse_spec`. It accepts and refuses exactly what the CRD (crds/bpfglobals.io_bpfprograms.yaml)
does, as tests/e2e/test_schema_agreement.py checks against a real apiserver: unknown fields
are refused (as `kubectl apply` does), nulls count as absent (the apiserver prunes them).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bpfglobals.attach.points import (
    TCX_DIRECTIONS,
    XDP_MODES,
    AttachPoint,
    CgroupPoint,
    TcxPoint,
    TracingPoint,
    XdpPoint,
    canonical,
)
from bpfglobals.errors import BpfGlobalsError
from bpfglobals.node.oci.reference import ImageRef, ReferenceError, parse_reference

API_VERSION = "bpfglobals.io/v1alpha1"
KIND = "BpfProgram"
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# Kubernetes object names (DNS-1123 subdomain, as the apiserver checks them) also make safe
# bpffs directory names.
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
NAME_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
MAX_PROGRAMS = 64  # the CRD's maxItems


class ManifestError(BpfGlobalsError):
    """The BpfProgram document is not valid."""


@dataclass(frozen=True)
class KeyRef:
    """One key of a namespaced ConfigMap or Secret."""

    namespace: str
    name: str
    key: str


ConfigMapRef = KeyRef
SecretKeyRef = KeyRef


@dataclass(frozen=True)
class SecretRef:
    namespace: str
    name: str


@dataclass(frozen=True)
class ImageSource:
    """`spec.elf.image`: an OCI image pinned by digest (or by tag with spec.elf.sha256)."""

    reference: ImageRef
    pull_secret: SecretRef | None = None  # a kubernetes.io/dockerconfigjson Secret
    insecure: bool = False  # plain HTTP to a registry that is not on the loopback


@dataclass(frozen=True)
class VerifyPolicy:
    """`spec.elf.verify`: cosign public keys, one of which must have signed the image."""

    keys: tuple[SecretKeyRef, ...]


@dataclass(frozen=True)
class ElfSource:
    """Where the object comes from: exactly one of path, config_map, url, image."""

    path: str | None = None
    config_map: ConfigMapRef | None = None
    url: str | None = None
    sha256: str | None = None  # lower-case hex; verified before loading when given
    image: ImageSource | None = None
    verify: VerifyPolicy | None = None

    def describe(self) -> str:
        if self.path is not None:
            return f"path {self.path}"
        if self.config_map is not None:
            c = self.config_map
            return f"configMap {c.namespace}/{c.name} key {c.key}"
        if self.image is not None:
            return f"image {self.image.reference}"
        return f"url {self.url}"


@dataclass(frozen=True)
class ProgramAttachment:
    name: str  # the function name in the ELF
    attach: AttachPoint


@dataclass(frozen=True)
class Rollout:
    max_unavailable: int | str = 1  # an int or a percentage string "25%"


# The Node `status.addresses` types a value may come from (`{fromNode: {address: T}}`).
NODE_ADDRESS_TYPES = ("InternalIP", "ExternalIP", "Hostname", "InternalDNS", "ExternalDNS")
FROM_NODE_KINDS = ("address", "label", "annotation")


@dataclass(frozen=True)
class FromNode:
    """A global's value taken from each node: `{fromNode: {label: K}, default: V}`."""

    kind: str  # one of FROM_NODE_KINDS
    key: str  # the address type, label key or annotation key
    default: Any = None
    has_default: bool = False

    def describe(self) -> str:
        return f"node {self.kind} {self.key!r}"


@dataclass(frozen=True)
class NodeOverride:
    """`spec.nodeOverrides[i]`: globals for the nodes whose labels match `node_selector`."""

    node_selector: Mapping[str, str]
    globals: Mapping[str, Any]


@dataclass(frozen=True)
class BpfProgramManifest:
    name: str
    elf: ElfSource
    programs: tuple[ProgramAttachment, ...]
    globals: Mapping[str, Any] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    rollout: Rollout = field(default_factory=Rollout)
    reset_bss: bool = False  # on a .rodata change, start the new variant with a zeroed .bss
    # CO-RE target: a BTF file on the node (raw BTF or an ELF with .BTF) instead of the
    # running kernel's (libbpf's btf_custom_path); None: /sys/kernel/btf
    btf_path: str | None = None
    # merged over `globals` in order on the nodes each selects (resolved by the operator)
    node_overrides: tuple[NodeOverride, ...] = ()

    def per_node(self) -> bool:
        """Whether nodes may differ: overrides, or a value taken from the node."""
        sets = [self.globals, *(o.globals for o in self.node_overrides)]
        return bool(self.node_overrides) or any(
            from_node(v, "") is not None for g in sets for v in g.values()
        )


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ManifestError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _str(value: Any, where: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ManifestError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _get(doc: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """A field; null counts as absent (the apiserver prunes nulls before validating)."""
    value = doc.get(key)
    return default if value is None else value


def _known(doc: Mapping[str, Any], keys: tuple[str, ...], where: str) -> None:
    """Refuse unknown fields, as `kubectl apply` does (strict field validation): a typo such
    as `globls` must not be ignored."""
    unknown = sorted(str(k) for k in doc if k not in keys)
    if unknown:
        raise ManifestError(f"{where}: unknown field {unknown[0]!r} (known: {', '.join(keys)})")


def _one_of(doc: Mapping[str, Any], keys: tuple[str, ...], where: str) -> str:
    present = [k for k in keys if doc.get(k) is not None]
    if len(present) != 1:
        raise ManifestError(
            f"{where}: exactly one of {', '.join(keys)} is required, got "
            f"{', '.join(present) or 'none'}"
        )
    return present[0]


def parse_elf_source(
    doc: Any, where: str = "spec.elf", *, require_sha256: bool = False
) -> ElfSource:
    doc = _mapping(doc, where)
    _known(doc, ("path", "configMap", "url", "image", "sha256", "verify"), where)
    which = _one_of(doc, ("path", "configMap", "url", "image"), where)
    sha = doc.get("sha256")
    if sha is not None and (not isinstance(sha, str) or not SHA256_RE.match(sha)):
        raise ManifestError(f"{where}.sha256: expected 64 hex digits (lower-case), got {sha!r}")
    verify = parse_verify(doc.get("verify"), f"{where}.verify")
    if verify is not None and which != "image":
        raise ManifestError(f"{where}.verify: signatures are verified on spec.elf.image only")
    if which == "image":
        image = parse_image(doc["image"], f"{where}.image")
        if sha is None and image.reference.digest is None:
            raise ManifestError(
                f"{where}.image.reference: a tag alone can move under a running rollout: pin "
                f"it by digest (repository@sha256:...) or give {where}.sha256 of the object"
            )
        return ElfSource(image=image, sha256=sha, verify=verify)
    if sha is None and require_sha256:
        raise ManifestError(f"{where}.sha256: required in a cluster (agents verify the object)")
    if which == "path":
        return ElfSource(path=_str(doc["path"], f"{where}.path"), sha256=sha)
    if which == "url":
        url = _str(doc["url"], f"{where}.url")
        assert url is not None
        if not url.startswith(("http://", "https://")):
            raise ManifestError(f"{where}.url: only http(s) URLs are supported, got {url!r}")
        return ElfSource(url=url, sha256=sha)
    return ElfSource(config_map=parse_key_ref(doc["configMap"], f"{where}.configMap"), sha256=sha)


def parse_key_ref(doc: Any, where: str) -> KeyRef:
    """`{namespace, name, key}` of a ConfigMap or a Secret."""
    doc = _mapping(doc, where)
    _known(doc, ("namespace", "name", "key"), where)
    return KeyRef(
        namespace=_str(doc.get("namespace"), f"{where}.namespace") or "",
        name=_str(doc.get("name"), f"{where}.name") or "",
        key=_str(doc.get("key"), f"{where}.key") or "",
    )


def parse_image(doc: Any, where: str) -> ImageSource:
    doc = _mapping(doc, where)
    _known(doc, ("reference", "pullSecret", "insecure"), where)
    text = _str(doc.get("reference"), f"{where}.reference")
    assert text is not None
    try:
        ref = parse_reference(text)
    except ReferenceError as e:
        raise ManifestError(f"{where}.reference: {e}") from None
    secret = None
    if doc.get("pullSecret") is not None:
        ps = _mapping(doc["pullSecret"], f"{where}.pullSecret")
        _known(ps, ("namespace", "name"), f"{where}.pullSecret")
        secret = SecretRef(
            namespace=_str(ps.get("namespace"), f"{where}.pullSecret.namespace") or "",
            name=_str(ps.get("name"), f"{where}.pullSecret.name") or "",
        )
    insecure = _get(doc, "insecure", False)
    if not isinstance(insecure, bool):
        raise ManifestError(f"{where}.insecure: expected true or false, got {insecure!r}")
    return ImageSource(reference=ref, pull_secret=secret, insecure=insecure)


def parse_verify(doc: Any, where: str) -> VerifyPolicy | None:
    if doc is None:
        return None
    doc = _mapping(doc, where)
    _known(doc, ("keys", "identities"), where)
    if doc.get("identities") is not None:
        raise ManifestError(
            f"{where}.identities: keyless (Fulcio/Rekor) verification is not supported; "
            "verify with cosign public keys (verify.keys)"
        )
    keys = doc.get("keys")
    if not isinstance(keys, list) or not keys:
        raise ManifestError(f"{where}.keys: expected a non-empty list of {{secret: ...}}")
    out: list[SecretKeyRef] = []
    for i, entry in enumerate(keys):
        here = f"{where}.keys[{i}]"
        entry = _mapping(entry, here)
        _known(entry, ("secret",), here)
        out.append(parse_key_ref(entry.get("secret"), f"{here}.secret"))
    return VerifyPolicy(keys=tuple(out))


def parse_attach(doc: Any, where: str) -> AttachPoint:
    doc = _mapping(doc, where)
    _known(doc, ("xdp", "tcx", "cgroup", "tracing"), where)
    which = _one_of(doc, ("xdp", "tcx", "cgroup", "tracing"), where)
    body = _mapping(doc[which], f"{where}.{which}")
    fields = {"xdp": ("interface", "mode"), "tcx": ("interface", "direction")}
    _known(body, fields.get(which, ("path", "type") if which == "cgroup" else ("target",)), where)
    if which == "xdp":
        mode = _get(body, "mode", "native")
        if mode not in XDP_MODES:
            raise ManifestError(f"{where}.xdp.mode: one of {', '.join(XDP_MODES)}, got {mode!r}")
        return XdpPoint(interface=_str(body.get("interface"), f"{where}.xdp.interface"), mode=mode)
    if which == "tcx":
        direction = _get(body, "direction", "ingress")
        if direction not in TCX_DIRECTIONS:
            raise ManifestError(
                f"{where}.tcx.direction: one of {', '.join(TCX_DIRECTIONS)}, got {direction!r}"
            )
        return TcxPoint(
            interface=_str(body.get("interface"), f"{where}.tcx.interface"), direction=direction
        )
    if which == "cgroup":
        return CgroupPoint(
            path=_str(body.get("path"), f"{where}.cgroup.path"),
            type=_str(body.get("type"), f"{where}.cgroup.type"),
        )
    return TracingPoint(target=_str(body.get("target"), f"{where}.tracing.target", required=False))


def parse_programs(doc: Any, where: str = "spec.programs") -> tuple[ProgramAttachment, ...]:
    if not isinstance(doc, list) or not doc:
        raise ManifestError(f"{where}: expected a non-empty list of programs")
    if len(doc) > MAX_PROGRAMS:
        raise ManifestError(f"{where}: at most {MAX_PROGRAMS} programs, got {len(doc)}")
    out: list[ProgramAttachment] = []
    seen: set[tuple[str, AttachPoint]] = set()
    for i, entry in enumerate(doc):
        here = f"{where}[{i}]"
        entry = _mapping(entry, here)
        _known(entry, ("name", "attach"), here)
        name = _str(entry.get("name"), f"{here}.name")
        attach = parse_attach(entry.get("attach"), f"{here}.attach")
        if (name, attach) in seen:
            raise ManifestError(
                f"{here}: program {name!r} is attached to {attach.describe()} twice"
            )
        seen.add((name, attach))
        out.append(ProgramAttachment(name=name, attach=attach))
    return tuple(out)


def parse_rollout(doc: Any, where: str = "spec.rollout") -> Rollout:
    doc = _mapping(doc, where)
    _known(doc, ("maxUnavailable",), where)
    mu = _get(doc, "maxUnavailable", 1)
    percent = isinstance(mu, str) and re.fullmatch(r"[0-9]{1,3}%", mu)
    if isinstance(mu, bool) or not ((isinstance(mu, int) and mu >= 1) or percent):
        raise ManifestError(
            f"{where}.maxUnavailable: a positive integer or a percentage, got {mu!r}"
        )
    return Rollout(max_unavailable=mu)


def parse_manifest(doc: Any, *, require_sha256: bool = False) -> BpfProgramManifest:
    """Validate a whole BpfProgram document (apiVersion, kind, metadata.name, spec).
    `require_sha256`: as in a cluster, where agents must verify what they fetch."""
    doc = _mapping(doc, "manifest")
    _known(doc, ("apiVersion", "kind", "metadata", "spec", "status"), "manifest")
    if doc.get("apiVersion") != API_VERSION or doc.get("kind") != KIND:
        raise ManifestError(
            f"manifest: expected apiVersion {API_VERSION} kind {KIND}, got "
            f"{doc.get('apiVersion')!r} {doc.get('kind')!r}"
        )
    name = _str(_mapping(doc.get("metadata"), "metadata").get("name"), "metadata.name")
    assert name is not None
    if not NAME_RE.match(name):
        raise ManifestError(f"metadata.name: {name!r} is not a valid DNS-1123 name")
    return parse_spec(name, doc.get("spec"), require_sha256=require_sha256)


SPEC_FIELDS = (
    "elf",
    "programs",
    "globals",
    "nodeSelector",
    "rollout",
    "resetBss",
    "btf",
    "nodeOverrides",
)
# Fleet-level fields: which nodes, how fast, and per-node values the operator resolves (a
# node's object carries its resolved `globals`). The rest is what one node converges to.
FLEET_FIELDS = ("nodeSelector", "rollout", "nodeOverrides")
NODE_SPEC_FIELDS = tuple(f for f in SPEC_FIELDS if f not in FLEET_FIELDS)


def parse_spec(name: str, spec: Any, *, require_sha256: bool = False) -> BpfProgramManifest:
    spec = _mapping(spec, "spec")
    _known(spec, SPEC_FIELDS, "spec")
    selector = _selector(spec.get("nodeSelector"), "spec.nodeSelector")
    globals_ = _globals(spec.get("globals"), "spec.globals")
    reset_bss = _get(spec, "resetBss", False)
    if not isinstance(reset_bss, bool):
        raise ManifestError(f"spec.resetBss: expected true or false, got {reset_bss!r}")
    return BpfProgramManifest(
        name=name,
        elf=parse_elf_source(spec.get("elf"), require_sha256=require_sha256),
        programs=parse_programs(spec.get("programs")),
        globals=globals_,
        node_selector=selector,
        rollout=parse_rollout(spec.get("rollout")),
        reset_bss=reset_bss,
        btf_path=parse_btf(spec.get("btf")),
        node_overrides=parse_node_overrides(spec.get("nodeOverrides")),
    )


def _selector(value: Any, where: str) -> dict[str, str]:
    selector = _mapping(value, where)
    for k, v in selector.items():
        if not isinstance(v, str):
            raise ManifestError(f"{where}.{k}: expected a string, got {v!r}")
    return dict(selector)


def _globals(value: Any, where: str) -> dict[str, Any]:
    """A globals mapping; every `fromNode` reference in it must be well-formed."""
    out = dict(_mapping(value, where))
    for name, v in out.items():
        from_node(v, f"{where}.{name}")
    return out


def from_node(value: Any, where: str) -> FromNode | None:
    """The node reference a global's value holds (`{fromNode: {...}, default: V}`), or None
    for a literal value. A mapping with a `fromNode` key is always a reference: a struct
    member of that name cannot be set this way (use `{bytes: ...}`)."""
    if not isinstance(value, Mapping) or "fromNode" not in value:
        return None
    _known(value, ("fromNode", "default"), where)
    ref = _mapping(value["fromNode"], f"{where}.fromNode")
    _known(ref, FROM_NODE_KINDS, f"{where}.fromNode")
    kind = _one_of(ref, FROM_NODE_KINDS, f"{where}.fromNode")
    key = _str(ref[kind], f"{where}.fromNode.{kind}")
    assert key is not None
    if kind == "address" and key not in NODE_ADDRESS_TYPES:
        raise ManifestError(
            f"{where}.fromNode.address: one of {', '.join(NODE_ADDRESS_TYPES)}, got {key!r}"
        )
    has_default = value.get("default") is not None
    return FromNode(kind, key, value.get("default"), has_default)


def parse_node_overrides(value: Any, where: str = "spec.nodeOverrides") -> tuple[NodeOverride, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ManifestError(f"{where}: expected a list of {{nodeSelector, globals}}")
    out = []
    for i, entry in enumerate(value):
        here = f"{where}[{i}]"
        entry = _mapping(entry, here)
        _known(entry, ("nodeSelector", "globals"), here)
        if entry.get("nodeSelector") is None:
            raise ManifestError(f"{here}.nodeSelector: required (which nodes it is for)")
        out.append(
            NodeOverride(
                node_selector=_selector(entry["nodeSelector"], f"{here}.nodeSelector"),
                globals=_globals(entry.get("globals"), f"{here}.globals"),
            )
        )
    return tuple(out)


def parse_btf(value: Any) -> str | None:
    """`spec.btf: {path: /var/lib/bpf/vmlinux.btf}`: an absolute path on the node."""
    if value is None:
        return None
    btf = _mapping(value, "spec.btf")
    _known(btf, ("path",), "spec.btf")
    path = _str(btf.get("path"), "spec.btf.path")
    assert path is not None
    if not path.startswith("/"):
        raise ManifestError(f"spec.btf.path: {path!r} must be an absolute path on the node")
    return path


def config_hash(m: BpfProgramManifest, elf_sha256: str | None = None) -> str:
    """The one definition of what "applied" means, shown as `configHash` by `bpfglobals get`,
    the BpfProgramNode and the BpfProgram: the ELF digest, the values, the attachments and
    resetBss. Where the ELF came from, the node selector and the rollout are not part of it."""
    doc = {
        "elf": elf_sha256 or m.elf.sha256,
        "globals": m.globals,
        "programs": [[p.name, p.attach.kind, canonical(p.attach)] for p in m.programs],
        "resetBss": m.reset_bss,
    }
    if m.btf_path is not None:  # absent otherwise, so hashes of existing objects stay
        doc["btf"] = m.btf_path
    if m.node_overrides:  # the fleet's hash; a node's is that of its resolved globals
        doc["nodeOverrides"] = [[o.node_selector, o.globals] for o in m.node_overrides]
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
