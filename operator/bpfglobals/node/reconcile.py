"""Converge this node's kernel to a BpfProgram manifest: the core the CLI and the agent share.

Level-triggered and restart-safe: everything lives in bpffs (see `layout`), the applied record
is written only after the links run the new variant, and every step checks the kernel rather
than trusting memory. Change semantics:
- .rodata (or the ELF) changes: load a new variant that reuses the shared maps (user maps,
  .data and .bss, unless `resetBss`), swap each link with BPF_LINK_UPDATE + BPF_F_REPLACE
  (expected old program = what the link runs now), then release the old variant;
- only .data/.bss values change: write those variables into the live maps; same programs;
- any failure before the swaps leaves the running variant untouched; a failure between
  swaps swaps the finished ones back.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bpfglobals.attach.links import attach, swap, unpin_link
from bpfglobals.attach.netns import in_netns
from bpfglobals.attach.targets import AttachPoint, ResolvedAttach, resolve
from bpfglobals.elf import read_object_bytes
from bpfglobals.elf.model import DataKind, ObjectSpec
from bpfglobals.errors import BpfGlobalsError
from bpfglobals.kernel.bpffs import ensure_bpffs
from bpfglobals.kernel.errors import KernelError
from bpfglobals.kernel.fd import FD
from bpfglobals.kernel.maps import map_lookup, map_update
from bpfglobals.kernel.objects import fd_by_id, link_info, map_info, obj_get, obj_pin, prog_info
from bpfglobals.loader import LoadedObject, load
from bpfglobals.node.layout import Layout, default_root, pin_safe, point_key
from bpfglobals.node.manifest import (
    BpfProgramManifest,
    CgroupAttach,
    ManifestError,
    ProgramAttachment,
    TcxAttach,
    TracingAttach,
    XdpAttach,
)
from bpfglobals.node.record import read_record, write_record
from bpfglobals.node.status import AppliedStatus, LinkStatus, ProgramStatus, config_hash
from bpfglobals.values import configure

_KEY0 = bytes(4)
LIVE_KINDS = (DataKind.DATA, DataKind.BSS)  # sections shared across variants, written live


@dataclass
class ApplyResult:
    status: AppliedStatus
    action: str  # "created", "reloaded", "updated-live", "unchanged"


def attach_point(a: ProgramAttachment) -> AttachPoint:
    match a.attach:
        case XdpAttach(interface=i, mode=m):
            return AttachPoint("xdp", interface=i, mode=m)
        case TcxAttach(interface=i, direction=d):
            return AttachPoint("tcx", interface=i, direction=d)
        case CgroupAttach(path=p, type=t):
            return AttachPoint("cgroup", cgroup_path=p, cgroup_type=t)
        case TracingAttach(target_name=t):
            return AttachPoint("tracing", trace_target=t or "")
    return AttachPoint(a.attach.kind)


def _attach_key(a: ProgramAttachment, p: AttachPoint) -> str:
    if p.kind == "tracing":
        return point_key(p.kind, p.trace_target or "section")
    target = p.cgroup_path if p.kind == "cgroup" else p.interface
    return point_key(p.kind, target + (f"_{p.direction}" if p.direction else ""))


class NodeReconciler:
    def __init__(self, root: str | None = None, netns: str | None = None) -> None:
        self.root = root or default_root()
        # Interfaces are looked up and attached in this network namespace (a path such as
        # /run/netns/NAME); None: the process's own.
        self.netns = netns
        # Parsed objects by ELF digest: a value change re-applies the same object, and
        # parsing it again would cost more than loading the new variant.
        self._objects: dict[str, ObjectSpec] = {}

    def _object(self, data: bytes, sha: str, name: str) -> ObjectSpec:
        obj = self._objects.get(sha)
        if obj is None:
            obj = read_object_bytes(data, name)
            if len(self._objects) >= 8:
                self._objects.pop(next(iter(self._objects)))
            self._objects[sha] = obj
        return obj

    # -- queries ------------------------------------------------------------------------------

    def names(self) -> list[str]:
        if not os.path.isdir(self.root):
            return []
        out = []
        for d in sorted(os.listdir(self.root)):
            rec = read_record(os.path.join(self.root, d, "record"))
            if rec is not None:
                out.append(rec["name"])
        return out

    def get(self, name: str) -> AppliedStatus | None:
        lay = Layout(self.root, name)
        rec = read_record(lay.record)
        if rec is None:
            return None
        return self._status(lay, rec)

    # -- apply --------------------------------------------------------------------------------

    def apply(self, m: BpfProgramManifest, base_dir: str | Path = ".") -> ApplyResult:
        ensure_bpffs(os.path.dirname(self.root.rstrip("/")) or "/sys/fs/bpf")
        data, elf_sha = _read_elf(m, Path(base_dir))
        obj = self._object(data, elf_sha, os.path.basename(m.elf.path or "object.bpf.o"))
        images = configure(obj, m.globals)  # every value checked before anything changes
        wanted = [(a, attach_point(a)) for a in m.programs]
        names = {p.name for p in obj.programs}
        for a, _ in wanted:
            if a.name not in names:
                raise ManifestError(
                    f"spec.programs: no program '{a.name}' in {obj.name} "
                    f"(has {', '.join(sorted(names))})"
                )
        progtypes = {p.name: p.type for p in obj.programs}
        with in_netns(self.netns):
            targets = {
                (a.name, _attach_key(a, p)): resolve(p, progtypes[a.name], a.name)
                for a, p in wanted
            }
        lay = Layout(self.root, m.name)
        rec = read_record(lay.record)
        ro_key = _ro_key(obj, images, elf_sha, wanted)
        hash_ = config_hash(elf_sha, m.globals, [str(p) for _, p in wanted])
        new_rec = {
            "name": m.name,
            "elf": m.elf.path,
            "elfSha256": elf_sha,
            "globals": dict(m.globals),
            "roKey": ro_key,
            "configHash": hash_,
            "programs": [
                {
                    "name": a.name,
                    "key": k[1],
                    "target": targets[k].trace_name or p.describe(),
                    "kind": p.kind,
                }
                for (a, p), k in zip(wanted, targets, strict=True)
            ],
            "live": _live_values(obj, images),
        }
        if rec is not None and rec.get("roKey") == ro_key and self._links_run_variant(lay, rec):
            self._tidy(lay, rec)
            if rec.get("configHash") == hash_:
                return ApplyResult(self._status(lay, rec), "unchanged")
            self._write_live(lay, obj, images, rec.get("live", {}))
            new_rec |= {"variant": rec["variant"], "loadedAt": rec["loadedAt"]}
            write_record(lay.record, new_rec)
            return ApplyResult(self._status(lay, new_rec), "updated-live")
        action = "reloaded" if rec is not None or os.path.isdir(lay.links) else "created"
        self._new_variant(lay, m, obj, images, elf_sha, rec, targets, new_rec)
        return ApplyResult(self._status(lay, new_rec), action)

    def _new_variant(
        self,
        lay: Layout,
        m: BpfProgramManifest,
        obj: ObjectSpec,
        images: dict[str, bytes],
        elf_sha: str,
        rec: dict | None,
        targets: Mapping[tuple[str, str], ResolvedAttach],
        new_rec: dict,
    ) -> None:
        for d in (lay.base, lay.maps, lay.links, lay.variants):
            os.makedirs(d, exist_ok=True)
        variant = max([0, *lay.variant_numbers()]) + 1
        same_layout = rec is not None and rec.get("elfSha256") == elf_sha
        reuse = self._shared_maps(lay, obj, keep_live=same_layout, reset_bss=m.reset_bss)
        programs = sorted({name for name, _ in targets})
        try:
            loaded = load(obj, images=images, reuse_maps=reuse, programs=programs)
        finally:
            for fd in reuse.values():
                fd.close()
        swapped: list[tuple[FD, FD, FD, str]] = []
        created: list[str] = []
        staged: list[tuple[str, str]] = []
        try:
            if same_layout and rec is not None:
                self._write_live(lay, obj, images, rec.get("live", {}), loaded)
            self._pin_variant(lay, variant, loaded)
            for (prog, key), target in targets.items():
                self._attach_or_swap(lay, loaded, prog, key, target, swapped, created, staged)
            for path_next, path in staged:  # the old tracing link goes with its pin
                os.rename(path_next, path)
            new_rec |= {
                "variant": variant,
                "loadedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            write_record(lay.record, new_rec)
        except BaseException:
            for link, _new, old, what in reversed(swapped):
                with contextlib.suppress(BpfGlobalsError):
                    swap(link, old, _new, what)  # put the old variant back
            for path in created:
                unpin_link(path)
            shutil.rmtree(lay.variant(variant), ignore_errors=True)
            raise
        finally:
            for link, _new, old, _ in swapped:
                link.close()
                old.close()
            loaded.close()
        self._tidy(lay, new_rec)

    def _tidy(self, lay: Layout, rec: dict) -> None:
        """Remove links and variants `rec` does not own: replaced ones, and those an apply
        killed half-way left behind (a staged tracing link would otherwise run twice)."""
        self._drop_unwanted_links(lay, set(new_rec_keys(rec)))
        for n in lay.variant_numbers():
            if n != rec["variant"]:
                shutil.rmtree(lay.variant(n), ignore_errors=True)

    def _shared_maps(
        self, lay: Layout, obj: ObjectSpec, keep_live: bool, reset_bss: bool
    ) -> dict[str, FD]:
        """Pinned maps the new variant takes over: user maps always (when compatible, the
        loader checks), .data/.bss when the object is the same ELF."""
        out: dict[str, FD] = {}
        names = [mp.name for mp in obj.maps]
        if keep_live:
            names += [
                d.name
                for d in obj.data_sections
                if d.kind in LIVE_KINDS and not (reset_bss and d.kind == DataKind.BSS)
            ]
        for name in names:
            path = lay.map_pin(name)
            if os.path.exists(path):
                out[name] = obj_get(path)
        return out

    def _pin_variant(self, lay: Layout, variant: int, loaded: LoadedObject) -> None:
        vdir = lay.variant(variant)
        os.makedirs(os.path.join(vdir, "programs"))
        os.makedirs(os.path.join(vdir, "maps"))
        for p in loaded.programs.values():
            obj_pin(p.fd, os.path.join(vdir, "programs", pin_safe(p.name)))
        for mp in loaded.maps.values():
            shared = not mp.frozen and (not mp.internal or mp.name.startswith((".data", ".bss")))
            path = lay.map_pin(mp.name) if shared else os.path.join(vdir, "maps", pin_safe(mp.name))
            if mp.reused and os.path.exists(path):
                continue
            if shared and os.path.exists(path):
                os.unlink(path)  # replaced (e.g. resetBss or a new ELF)
            obj_pin(mp.fd, path)

    def _attach_or_swap(
        self,
        lay: Layout,
        loaded: LoadedObject,
        prog: str,
        key: str,
        target: ResolvedAttach,
        swapped: list,
        created: list[str],
        staged: list[tuple[str, str]],
    ) -> None:
        path = lay.link(prog, key)
        new = loaded.programs[prog].fd
        what = f"program '{prog}' link {os.path.basename(path)}"
        link = self._live_link(path)
        if link is not None and target.updatable:
            try:
                old = self._running_program(lay, link_info(link).prog_id)
            except BaseException:
                link.close()
                raise
            try:
                swap(link, new, old, what)
            except BaseException:
                link.close()
                old.close()
                raise
            swapped.append((link, new, old, what))
            return
        pin = path
        if link is not None:
            # Tracing links cannot swap programs: the new link is attached beside the old one
            # and its pin replaces the old pin once everything else succeeded, which detaches
            # the old link. Both variants run in between (documented overlap).
            link.close()
            pin = path + "_next"
            unpin_link(pin)  # left over by an interrupted apply
            staged.append((pin, path))
        with in_netns(self.netns):
            fd = attach(new, target, what)
        try:
            obj_pin(fd, pin)
            created.append(pin)
        finally:
            fd.close()

    @staticmethod
    def _running_program(lay: Layout, prog_id: int) -> FD:
        """The program a link runs, from our own pins: PROG_GET_FD_BY_ID would need
        CAP_SYS_ADMIN, which the agent's DaemonSet does not grant (BPF, NET_ADMIN, PERFMON)."""
        for n in reversed(lay.variant_numbers()):
            programs = os.path.join(lay.variant(n), "programs")
            for pin in sorted(os.listdir(programs)) if os.path.isdir(programs) else []:
                fd = obj_get(os.path.join(programs, pin))
                if prog_info(fd)[0].id == prog_id:
                    return fd
                fd.close()
        return fd_by_id("prog", prog_id)  # not one of ours: only with CAP_SYS_ADMIN

    @staticmethod
    def _live_link(path: str) -> FD | None:
        """The pinned link, or None (unpinning it) if it no longer holds its target."""
        if not os.path.exists(path):
            return None
        fd = obj_get(path)
        info = link_info(fd)
        if info.type in ("xdp", "tcx") and info.ifindex == 0:  # its interface went away
            fd.close()
            unpin_link(path)
            return None
        return fd

    def _drop_unwanted_links(self, lay: Layout, keep: set[str]) -> None:
        for entry in os.listdir(lay.links):
            if entry not in keep:
                unpin_link(os.path.join(lay.links, entry))

    def _links_run_variant(self, lay: Layout, rec: dict) -> bool:
        """Whether every recorded link exists and runs the recorded variant's program."""
        try:
            for p in rec["programs"]:
                with (
                    obj_get(lay.link(p["name"], p["key"])) as link,
                    obj_get(
                        os.path.join(lay.variant(rec["variant"]), "programs", pin_safe(p["name"]))
                    ) as prog,
                ):
                    info = link_info(link)
                    if info.prog_id != prog_info(prog)[0].id or (
                        info.type in ("xdp", "tcx") and info.ifindex == 0
                    ):
                        return False
        except (KernelError, KeyError, OSError):
            return False
        return True

    def _write_live(
        self,
        lay: Layout,
        obj: ObjectSpec,
        images: dict[str, bytes],
        before: Mapping[str, str],
        loaded: LoadedObject | None = None,
    ) -> None:
        """Write the configured .data/.bss variables whose values changed into the live maps
        (read-modify-write of just those bytes, so program-written state is kept)."""
        now = _live_values(obj, images)
        for d in obj.data_sections:
            if d.kind not in LIVE_KINDS:
                continue
            changed = [
                v for v in d.variables if now.get(v.name) != before.get(v.name) and v.name in now
            ]
            if not changed:
                continue
            if loaded is not None and not loaded.maps[d.name].reused:
                continue  # a fresh map already holds the new image
            path = lay.map_pin(d.name)
            with obj_get(path) as fd:
                size = map_info(fd).value_size
                current = bytearray(map_lookup(fd, _KEY0, size))
                for v in changed:
                    current[v.offset : v.offset + v.size] = images[d.name][
                        v.offset : v.offset + v.size
                    ]
                map_update(fd, _KEY0, bytes(current))

    # -- delete / gc --------------------------------------------------------------------------

    def delete(self, name: str) -> bool:
        """Detach (unpin the links first) and remove every pin of `name`."""
        lay = Layout(self.root, name)
        if not os.path.isdir(lay.base):
            return False
        if os.path.isdir(lay.links):
            for entry in os.listdir(lay.links):
                unpin_link(os.path.join(lay.links, entry))
        shutil.rmtree(lay.base)
        return True

    def gc(self, desired: set[str]) -> list[str]:
        """Remove everything under the root that no desired BpfProgram owns."""
        removed = []
        if not os.path.isdir(self.root):
            return removed
        owned = {pin_safe(n) for n in desired}
        for entry in sorted(os.listdir(self.root)):
            if entry not in owned:
                rec = read_record(os.path.join(self.root, entry, "record"))
                self.delete(rec["name"] if rec else entry)
                removed.append(rec["name"] if rec else entry)
        return removed

    # -- status -------------------------------------------------------------------------------

    def _status(self, lay: Layout, rec: dict) -> AppliedStatus:
        vdir = lay.variant(rec["variant"])
        programs = []
        by_prog: dict[str, list[LinkStatus]] = {}
        for p in rec["programs"]:
            path = lay.link(p["name"], p["key"])
            if os.path.exists(path):
                with obj_get(path) as link:
                    info = link_info(link)
                by_prog.setdefault(p["name"], []).append(
                    LinkStatus(info.id, info.type, p["target"])
                )
        for name in dict.fromkeys(p["name"] for p in rec["programs"]):
            with obj_get(os.path.join(vdir, "programs", pin_safe(name))) as fd:
                info = prog_info(fd)[0]
            programs.append(ProgramStatus(name, info.id, info.tag, tuple(by_prog.get(name, ()))))
        maps: dict[str, int] = {}
        for d in (lay.maps, os.path.join(vdir, "maps")):
            if os.path.isdir(d):
                for entry in sorted(os.listdir(d)):
                    with obj_get(os.path.join(d, entry)) as fd:
                        info = map_info(fd)
                    maps[info.name] = info.id
        return AppliedStatus(
            name=rec["name"],
            programs=tuple(programs),
            maps=maps,
            globals=rec["globals"],
            config_hash=rec["configHash"],
            elf_sha256=rec["elfSha256"],
            loaded_at=rec["loadedAt"],
            extra={"variant": rec["variant"]},
        )


def new_rec_keys(rec: dict) -> list[str]:
    return [f"{pin_safe(p['name'])}__{p['key']}" for p in rec["programs"]]


def _read_elf(m: BpfProgramManifest, base_dir: Path) -> tuple[bytes, str]:
    if m.elf.path is None:
        raise ManifestError(
            f"{m.name}: spec.elf.{'configMap' if m.elf.config_map else 'url'} "
            "needs the cluster agent; node-local apply reads spec.elf.path"
        )
    path = Path(m.elf.path)
    if not path.is_absolute():
        path = base_dir / path
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ManifestError(f"spec.elf.path: cannot read {path}: {e.strerror}") from None
    sha = hashlib.sha256(data).hexdigest()
    if m.elf.sha256 and m.elf.sha256 != sha:
        raise ManifestError(
            f"spec.elf.sha256: {path} has digest {sha}, the manifest expects {m.elf.sha256}"
        )
    return data, sha


def _ro_key(obj: ObjectSpec, images: Mapping[str, bytes], elf_sha: str, wanted: list) -> str:
    """What forces a new variant: the ELF, the read-only images, and the program set."""
    h = hashlib.sha256(elf_sha.encode())
    for d in obj.data_sections:
        if d.kind not in LIVE_KINDS:
            h.update(d.name.encode() + b"\0" + images[d.name])
    h.update(repr(sorted({a.name for a, _ in wanted})).encode())
    return h.hexdigest()[:16]


def _live_values(obj: ObjectSpec, images: Mapping[str, bytes]) -> dict[str, str]:
    """Hex bytes of every .data/.bss variable as configured (to see which ones changed)."""
    return {
        v.name: images[d.name][v.offset : v.offset + v.size].hex()
        for d in obj.data_sections
        if d.kind in LIVE_KINDS
        for v in d.variables
    }


__all__ = ["ApplyResult", "NodeReconciler"]
