"""Converge this node's kernel to a BpfProgram manifest: the core the CLI and the agent share.

An apply observes (the record and the links in bpffs), plans (`plan.plan`, pure), then carries
the plan out in a `Transaction` whose undo log takes back every step if a later one fails.
Level-triggered and restart-safe: everything lives in bpffs (see `layout`), the record is
written only after the links run what it names, and every step checks the kernel rather than
trusting memory. Change semantics:
- .rodata (or the ELF, or the program set) changes: load a new variant that reuses the shared
  maps (user maps, .data and .bss, unless `resetBss`), swap each link with BPF_LINK_UPDATE +
  BPF_F_REPLACE (expected old program = what the link runs now), then release the old variant;
- only .data/.bss values change: write those variables into the live maps; same programs;
- a link is missing or an attach point changed: attach the running variant's programs;
- any failure leaves the running variant in place: swaps are swapped back, new links and pins
  removed, live writes restored.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from bpfglobals.attach.links import attach, swap, unpin_link
from bpfglobals.attach.netns import in_netns
from bpfglobals.attach.targets import ResolvedAttach, resolve
from bpfglobals.elf.model import DataKind, ObjectSpec
from bpfglobals.kernel.bpffs import ensure_bpffs, pin_name
from bpfglobals.kernel.errors import KernelError
from bpfglobals.kernel.fd import FD
from bpfglobals.kernel.maps import map_lookup, map_update
from bpfglobals.kernel.objects import fd_by_id, link_info, map_info, obj_get, obj_pin, prog_info
from bpfglobals.loader import LoadedMap, LoadedObject, load, select_programs
from bpfglobals.loader.pin import pin_maps, pin_programs, unpin
from bpfglobals.node.elf_source import ElfSources
from bpfglobals.node.layout import Layout, default_root
from bpfglobals.node.manifest import BpfProgramManifest
from bpfglobals.node.plan import LIVE_KINDS, Action, Observed, Plan, desire, plan
from bpfglobals.node.query import applied_names, applied_status, status_of
from bpfglobals.node.record import AppliedRecord, RecordedLink, RecordError
from bpfglobals.node.record_store import read_record, write_record
from bpfglobals.node.status import AppliedStatus
from bpfglobals.node.transaction import Transaction
from bpfglobals.values import configure

_KEY0 = bytes(4)


def per_variant_map(map_type: str) -> bool:
    """Maps each variant owns (pinned in its own directory, never taken over): prog arrays,
    whose slots hold that variant's programs."""
    return map_type == "prog_array"


@dataclass
class ApplyResult:
    status: AppliedStatus
    action: str  # "created", "reloaded", "reattached", "updated-live", "unchanged"


class NodeReconciler:
    def __init__(
        self, root: str | None = None, netns: str | None = None, sources: ElfSources | None = None
    ) -> None:
        self.root = root or default_root()
        # Interfaces are looked up and attached in this network namespace (a path such as
        # /run/netns/NAME); None: the process's own.
        self.netns = netns
        self.sources = sources or ElfSources()

    # -- queries ------------------------------------------------------------------------------

    def names(self) -> list[str]:
        return applied_names(self.root)

    def get(self, name: str) -> AppliedStatus | None:
        return applied_status(self.root, name)

    # -- apply --------------------------------------------------------------------------------

    def apply(self, m: BpfProgramManifest, base_dir: str | Path = ".") -> ApplyResult:
        ensure_bpffs(os.path.dirname(self.root.rstrip("/")) or "/sys/fs/bpf")
        blob = self.sources.fetch(m.elf, base_dir)
        obj = self.sources.parse(blob)
        images = configure(obj, m.globals)  # every value checked before anything changes
        select_programs(obj, [a.name for a in m.programs], "spec.programs")
        progtypes = {p.name: p.type for p in obj.programs}
        with in_netns(self.netns):
            targets = {
                (a.name, a.attach.key()): resolve(a.attach, progtypes[a.name], a.name)
                for a in m.programs
            }
        wanted = desire(m, obj, images, blob.sha256, {k: t.trace_name for k, t in targets.items()})
        lay = Layout(self.root, m.name)
        todo = plan(wanted, self._observe(lay), reset_bss=m.reset_bss)
        record = self._carry_out(lay, todo, obj, images, targets, m.btf_path)
        return ApplyResult(status_of(lay, record), todo.action.value)

    def _observe(self, lay: Layout) -> Observed:
        rec = read_record(lay.record)
        if rec is None:
            return Observed(None, leftovers=os.path.isdir(lay.links))
        progs: dict[str, int] = {}
        try:
            for name in rec.programs:
                with obj_get(lay.program(rec.variant, name)) as fd:
                    progs[name] = prog_info(fd)[0].id
        except (KernelError, OSError):
            return Observed(rec)  # the variant is gone: a new one is needed
        intact = frozenset(
            k.pin_name
            for k in rec.links
            if self._runs(lay.link(k.program, k.key), progs[k.program])
        )
        return Observed(rec, intact_links=intact, variant_present=True)

    @staticmethod
    def _runs(path: str, prog_id: int) -> bool:
        """Whether the link pinned at `path` holds its target and runs program `prog_id`."""
        try:
            with obj_get(path) as link:
                info = link_info(link)
        except (KernelError, OSError):
            return False
        return info.prog_id == prog_id and not (info.type in ("xdp", "tcx") and info.ifindex == 0)

    def _carry_out(
        self,
        lay: Layout,
        todo: Plan,
        obj: ObjectSpec,
        images: dict[str, bytes],
        targets: dict[tuple[str, str], ResolvedAttach],
        btf_path: str | None = None,
    ) -> AppliedRecord:
        for d in (lay.base, lay.maps, lay.links, lay.variants):
            os.makedirs(d, exist_ok=True)
        record = todo.record
        if todo.action is not Action.UNCHANGED:
            with Transaction(f"bpfprogram {record.name}") as tx:
                loaded = None
                if todo.new_variant:
                    variant = max([0, *lay.variant_numbers()]) + 1
                    loaded = self._load_variant(lay, tx, variant, todo, obj, images, btf_path)
                    progs = {n: p.fd for n, p in loaded.programs.items()}
                    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                    record = record.with_variant(variant, now)
                else:
                    progs = self._variant_programs(lay, tx, record.variant, todo.attach)
                self._write_live(lay, tx, obj, images, todo.live_writes, loaded)
                staged: list[tuple[str, str]] = []
                for link in todo.attach:
                    target = targets[(link.program, link.key)]
                    self._attach_or_swap(lay, tx, progs[link.program], link, target, staged)
                for path_next, path in staged:  # the old tracing link goes with its pin
                    os.rename(path_next, path)
                write_record(lay.record, record)
        self._tidy(lay, record)
        return record

    def _load_variant(
        self,
        lay: Layout,
        tx: Transaction,
        variant: int,
        todo: Plan,
        obj: ObjectSpec,
        images: dict[str, bytes],
        btf_path: str | None,
    ) -> LoadedObject:
        reuse = self._shared_maps(lay, obj, todo.keep_live_maps, todo.reset_bss)
        try:
            loaded = load(
                obj,
                images=images,
                reuse_maps=reuse,
                programs=todo.record.programs,
                target_btf=btf_path,
            )
        finally:
            for fd in reuse.values():
                fd.close()
        tx.on_exit(loaded.close)
        vdir = lay.variant(variant)
        tx.on_undo(shutil.rmtree, vdir, True)
        os.makedirs(os.path.join(vdir, "programs"))
        os.makedirs(os.path.join(vdir, "maps"))

        def path_of(mp: LoadedMap) -> str:
            shared = not mp.frozen and (
                mp.name.startswith((".data", ".bss"))
                if mp.internal
                else not per_variant_map(mp.type)
            )
            return lay.map_pin(mp.name) if shared else os.path.join(vdir, "maps", pin_name(mp.name))

        for mp in loaded.maps.values():
            path = path_of(mp)
            if not mp.reused and path.startswith(lay.maps + "/") and os.path.exists(path):
                # A shared map replaced (a new ELF, resetBss): the old one's pin comes back on undo.
                old = obj_get(path)
                tx.on_exit(old.close)
                tx.on_undo(_repin, old, path)
        created: list[str] = []
        tx.on_undo(unpin, created)
        pin_programs(loaded.programs.values(), os.path.join(vdir, "programs"), created)
        pin_maps(loaded.maps.values(), path_of, created, replace=True)
        return loaded

    @staticmethod
    def _variant_programs(
        lay: Layout, tx: Transaction, variant: int, links: tuple[RecordedLink, ...]
    ) -> dict[str, FD]:
        progs = {}
        for name in dict.fromkeys(k.program for k in links):
            fd = obj_get(lay.program(variant, name))
            tx.on_exit(fd.close)
            progs[name] = fd
        return progs

    def _tidy(self, lay: Layout, rec: AppliedRecord) -> None:
        """Remove links and variants `rec` does not own: replaced ones, and those an apply
        killed half-way left behind (a staged tracing link would otherwise run twice)."""
        keep = {k.pin_name for k in rec.links}
        for entry in os.listdir(lay.links):
            if entry not in keep:
                unpin_link(os.path.join(lay.links, entry))
        for n in lay.variant_numbers():
            if n != rec.variant:
                shutil.rmtree(lay.variant(n), ignore_errors=True)

    def _shared_maps(
        self, lay: Layout, obj: ObjectSpec, keep_live: bool, reset_bss: bool
    ) -> dict[str, FD]:
        """Pinned maps the new variant takes over: user maps (when compatible, the loader
        checks) except prog arrays, .data/.bss when the object is the same ELF.

        A prog array holds programs of one variant: sharing it would let the running variant
        tail-call into the new one's programs (or the reverse) mid-swap. Each variant gets
        its own, filled with its own programs; the link swap switches both at once."""
        out: dict[str, FD] = {}
        names = [mp.name for mp in obj.maps if not per_variant_map(mp.type)]
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

    def _attach_or_swap(
        self,
        lay: Layout,
        tx: Transaction,
        new: FD,
        link: RecordedLink,
        target: ResolvedAttach,
        staged: list[tuple[str, str]],
    ) -> None:
        path = lay.link(link.program, link.key)
        what = f"program '{link.program}' link {link.pin_name}"
        live = self._live_link(path)
        if live is not None and target.updatable:
            tx.on_exit(live.close)
            old = self._running_program(lay, link_info(live).prog_id)
            tx.on_exit(old.close)
            swap(live, new, old, what)
            tx.on_undo(swap, live, old, new, what)  # put the old variant back
            return
        pin = path
        if live is not None:
            # Tracing links cannot swap programs: the new link is attached beside the old one
            # and its pin replaces the old pin once everything else succeeded, which detaches
            # the old link. Both variants run in between (documented overlap).
            live.close()
            pin = path + "_next"
            unpin_link(pin)  # left over by an interrupted apply
            staged.append((pin, path))
        with in_netns(self.netns):
            fd = attach(new, target, what)
        try:
            obj_pin(fd, pin)
            tx.on_undo(unpin_link, pin)
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

    def _write_live(
        self,
        lay: Layout,
        tx: Transaction,
        obj: ObjectSpec,
        images: dict[str, bytes],
        names: tuple[str, ...],
        loaded: LoadedObject | None,
    ) -> None:
        """Write the .data/.bss variables `names` into the live maps: read-modify-write of
        just those bytes, so program-written state is kept; undo writes the old bytes back."""
        wanted = set(names)
        for d in obj.data_sections:
            changed = [v for v in d.variables if v.name in wanted]
            if d.kind not in LIVE_KINDS or not changed:
                continue
            if loaded is not None and not loaded.maps[d.name].reused:
                continue  # a fresh map already holds the new image
            with obj_get(lay.map_pin(d.name)) as fd:
                size = map_info(fd).value_size
                current = bytearray(map_lookup(fd, _KEY0, size))
                spans = [(v.offset, v.offset + v.size) for v in changed]
                before = [bytes(current[a:b]) for a, b in spans]
                for a, b in spans:
                    current[a:b] = images[d.name][a:b]
                map_update(fd, _KEY0, bytes(current))
            tx.on_undo(_restore, lay.map_pin(d.name), spans, before)

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
        removed: list[str] = []
        if not os.path.isdir(self.root):
            return removed
        owned = {pin_name(n) for n in desired}
        for entry in sorted(os.listdir(self.root)):
            if entry not in owned:
                try:
                    rec = read_record(os.path.join(self.root, entry, "record"))
                except RecordError:
                    rec = None  # unreadable: still ours to remove (it is under our root)
                self.delete(rec.name if rec else entry)
                removed.append(rec.name if rec else entry)
        return removed


def _repin(fd: FD, path: str) -> None:
    if os.path.exists(path):
        os.unlink(path)
    obj_pin(fd, path)


def _restore(path: str, spans: list[tuple[int, int]], before: list[bytes]) -> None:
    with obj_get(path) as fd:
        current = bytearray(map_lookup(fd, _KEY0, map_info(fd).value_size))
        for (a, b), old in zip(spans, before, strict=True):
            current[a:b] = old
        map_update(fd, _KEY0, bytes(current))


__all__ = ["ApplyResult", "NodeReconciler"]
