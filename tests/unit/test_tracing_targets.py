"""Tracing targets, without the kernel: the fast BTF type lookup agrees with the full parser
(and with the kernel's own BTF), and attach-point mistakes are named before any syscall."""

from __future__ import annotations

import subprocess

import pytest
from elftools.elf.elffile import ELFFile

from bpfglobals.attach.points import AttachPoint, TracingPoint, XdpPoint
from bpfglobals.attach.targets import AttachError, resolve
from bpfglobals.elf import parse_btf
from bpfglobals.elf.btf_types import BtfKind
from bpfglobals.elf.kernel_btf import LazyBtf
from bpfglobals.elf.model import ProgramType
from bpfglobals.elf.progtypes import program_type
from bpfglobals.errors import BtfError


@pytest.mark.parametrize("fixture", ["globals", "calls", "maps", "examples/syscall_count.bpf.c"])
def test_lookup_finds_every_named_type_the_parser_finds(bpf_object, fixture: str) -> None:
    with open(bpf_object(fixture), "rb") as f:
        raw = ELFFile(f).get_section_by_name(".BTF").data()
    btf = parse_btf(raw)
    first: dict[tuple[str, int], int] = {}
    for tid, t in enumerate(btf.types):
        name = getattr(t, "name", "")
        if name:
            first.setdefault((name, t.kind), tid)
    assert first
    lazy = LazyBtf.from_bytes(raw)
    for (name, kind), tid in first.items():
        assert lazy.find(kind, name) == tid, (name, kind)
    assert lazy.find(BtfKind.FUNC, "no_such_type") is None


def test_lookup_in_the_kernel_btf_matches_bpftool() -> None:
    with open("/sys/kernel/btf/vmlinux", "rb") as f:
        raw = f.read()
    tid = LazyBtf.from_bytes(raw).find(BtfKind.TYPEDEF, "btf_trace_sys_enter")
    shown = subprocess.run(
        ["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"[{tid}] TYPEDEF 'btf_trace_sys_enter'" in shown


def test_lookup_rejects_what_is_not_btf() -> None:
    with pytest.raises(BtfError, match="bad magic"):
        LazyBtf.from_bytes(b"\0" * 32)
    with pytest.raises(BtfError, match="shorter"):
        LazyBtf.from_bytes(b"\x9f\xeb")


def _type(section: str) -> ProgramType:
    t = program_type(section)
    assert t is not None
    return t


@pytest.mark.parametrize(
    ("section", "point", "why"),
    [
        ("kprobe/do_unlinkat", TracingPoint(), "kprobe"),
        ("iter/task", TracingPoint(), "trace_iter programs cannot be attached"),
        ("fentry/foo", TracingPoint(target="bar"), "fixed by its section (foo)"),
        ("raw_tp", TracingPoint(), "name the raw tracepoint"),
        ("tracepoint", TracingPoint(), "a tracepoint is 'category/name'"),
        ("xdp", TracingPoint(), "tracing attach needs a tracepoint"),
        ("tp_btf/sys_enter", XdpPoint(interface="lo", mode="generic"), "XDP attach"),
    ],
)
def test_attach_mistakes_are_named(section: str, point: AttachPoint, why: str) -> None:
    with pytest.raises(AttachError) as e:
        resolve(point, _type(section), "prog")
    assert why in str(e.value) and "program 'prog'" in str(e.value)


def test_btf_typed_programs_take_their_target_from_the_section() -> None:
    r = resolve(TracingPoint(), _type("fexit/do_unlinkat"), "prog")
    assert (r.trace, r.trace_name, r.updatable) == ("btf", "do_unlinkat", False)
    r = resolve(TracingPoint(target="sched_switch"), _type("raw_tp"), "prog")
    assert (r.trace, r.trace_name) == ("raw_tp", "sched_switch")
