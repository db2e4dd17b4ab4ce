"""CO-RE against the running kernel, three ways: our relocation, the kernel's own (PROG_LOAD
with core_relos) and libbpf's (`bpftool prog loadall`). Same verdict, same translated
instructions (map ids normalised), same test-run results; and the refusals say which
program, instruction, type and access failed."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from bpfglobals.elf import read_object
from bpfglobals.frozen import replace
from bpfglobals.kernel.objects import obj_get
from bpfglobals.kernel.progs import prog_test_run
from bpfglobals.loader import load
from bpfglobals.loader.core import CoreRelocationError
from bpfglobals.loader.errors import LoadError
from bpfglobals.loader.kernel_btf import vmlinux_btf
from tests.support.bpftool import bpftool
from tests.support.core_target import GREEN, compile_target, point_packet
from tests.support.kernel_facts import core_task_defines
from tests.support.progs import PROGS, compile_bpf
from tests.support.xlated import normalise, xlated_by_bpftool

CLI = str(Path(sys.executable).parent / "bpfglobals")


@pytest.fixture(scope="module")
def core_task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("core")
    return compile_bpf(PROGS / "core_task.bpf.c", out, core_task_defines())


def _truth() -> bytes:
    """What task_reads must find in current's task_struct: this thread's ids and comm."""
    tid = threading.get_native_id()
    with open(f"/proc/self/task/{tid}/comm", "rb") as f:
        comm = f.read().rstrip(b"\n")
    packet = tid.to_bytes(4, "little") + os.getpid().to_bytes(4, "little")
    packet += os.getppid().to_bytes(4, "little") + comm.ljust(16, b"\0")
    return packet.ljust(64, b"\0")


class _LibbpfLoad:
    """`bpftool prog loadall OBJ PIN`, removed again on exit."""

    def __init__(self, obj: Path) -> None:
        self.obj = obj
        self.pin = f"/sys/fs/bpf/bgt-core-{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> _LibbpfLoad:
        done = subprocess.run(
            ["bpftool", "prog", "loadall", str(self.obj), self.pin], capture_output=True, text=True
        )
        self.returncode, self.stderr = done.returncode, done.stderr
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["rm", "-rf", self.pin], check=False)


def test_core_task_reads_are_right_with_us_the_kernel_and_libbpf(core_task, tmp_path) -> None:
    obj = read_object(core_task)
    kinds = {r.kind for p in obj.programs for r in p.core_relos}
    assert kinds == {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}  # every kind clang 14 can emit
    with _LibbpfLoad(core_task) as libbpf:
        assert libbpf.returncode == 0, libbpf.stderr
        theirs = bpftool("prog", "show", "pinned", f"{libbpf.pin}/task_reads")
        want = normalise(xlated_by_bpftool(theirs["id"], tmp_path))
        with obj_get(f"{libbpf.pin}/task_reads") as fd:
            assert prog_test_run(fd, _truth()).retval == 0
        with load(obj) as ours, load(obj, core_in_kernel=True) as kernels:
            for loaded in (ours, kernels):
                prog = loaded.programs["task_reads"]
                assert normalise(xlated_by_bpftool(prog.info.id, tmp_path)) == want
                assert prog_test_run(prog.fd, _truth()).retval == 0


def test_core_task_reads_fail_visibly_without_relocation(core_task) -> None:
    """The fixture is not vacuous: the same code with the compiler's offsets returns the line
    of the first wrong read (here: pid, read at the local offset)."""
    obj = read_object(core_task)
    with load(obj, core_in_kernel=True) as loaded:
        assert prog_test_run(loaded.programs["task_reads"].fd, _truth()).retval == 0
    obj.programs = [replace(obj.programs[0], core_relos=())]
    with load(obj) as loaded:
        line = prog_test_run(loaded.programs["task_reads"].fd, _truth()).retval
    source = (PROGS / "core_task.bpf.c").read_text().splitlines()
    assert "BPF_CORE_READ(t, pid)" in source[line - 1]


def test_unguarded_missing_field_is_refused_like_libbpf_and_named(bpf_object) -> None:
    src = bpf_object("core_unguarded")
    with _LibbpfLoad(src) as libbpf:
        assert libbpf.returncode != 0
        assert "failed to resolve CO-RE relocation" in libbpf.stderr
        assert not os.path.exists(libbpf.pin + "/fine")
    pin = f"/sys/fs/bpf/bgt-core-{uuid.uuid4().hex[:8]}"
    for core_in_kernel in (False, True):
        with pytest.raises(CoreRelocationError) as e:
            load(read_object(src), pin=pin, core_in_kernel=core_in_kernel)
        msg = str(e.value)
        assert "program 'unguarded'" in msg and "instruction 1:" in msg
        assert "struct task_struct.no_such_field_in_any_kernel (0:1 @ offset 4)" in msg
        assert "failed to resolve CO-RE relocation" in msg
        assert "invalid func unknown#195896080" in e.value.log
        assert not os.path.exists(pin)  # nothing half-loaded stays pinned
    # the guarded twin of the same read loads and runs
    with load(read_object(src), programs=["fine"]) as loaded:
        assert prog_test_run(loaded.programs["fine"].fd, bytes(64)).retval == 2  # XDP_PASS


def test_custom_btf_path_equal_to_the_kernel_gives_the_kernel_result(core_task, tmp_path) -> None:
    obj = read_object(core_task)
    with load(obj) as a, load(obj, target_btf="/sys/kernel/btf/vmlinux") as b:
        xa = xlated_by_bpftool(a.programs["task_reads"].info.id, tmp_path)
        xb = xlated_by_bpftool(b.programs["task_reads"].info.id, tmp_path)
        assert normalise(xa) == normalise(xb)


def test_unreadable_custom_btf_is_a_clear_error(core_task, tmp_path) -> None:
    bogus = tmp_path / "not-btf"
    bogus.write_bytes(b"hello")
    with pytest.raises(LoadError, match=r"not-btf: not usable as BTF"):
        load(read_object(core_task), target_btf=str(bogus))
    with pytest.raises(LoadError, match=r"cannot read BTF .*missing"):
        load(read_object(core_task), target_btf=str(tmp_path / "missing"))


def test_custom_target_btf_relocates_to_a_made_up_layout(bpf_object, tmp_path) -> None:
    src = bpf_object("core_custom")
    target = compile_target(tmp_path)
    packet, expected = point_packet(target, x=4242, y=321, kind=19)
    with load(read_object(src), target_btf=str(target)) as loaded:
        got = prog_test_run(loaded.programs["read_point"].fd, packet).retval
    assert got == expected


def test_a_kernel_without_the_type_refuses_the_same_object_like_libbpf(bpf_object) -> None:
    src = bpf_object("core_custom")
    with _LibbpfLoad(src) as libbpf:
        assert libbpf.returncode != 0
        assert "failed to resolve CO-RE relocation" in libbpf.stderr
    with pytest.raises(CoreRelocationError, match=r"struct point\.x .*has no target in vmlinux"):
        load(read_object(src))


def _as_type_matches(obj: Path, out: Path) -> Path:
    """A copy of `obj` whose TYPE_EXISTS CO-RE records are TYPE_MATCHES records."""
    data = bytearray(obj.read_bytes())
    with open(obj, "rb") as f:
        sec = ELFFile(f).get_section_by_name(".BTF.ext")
        base = sec["sh_offset"]
    _magic, _ver, _flags, hdr_len = struct.unpack_from("<HBBI", data, base)
    core_off, core_len = struct.unpack_from("<II", data, base + 24)
    pos = base + hdr_len + core_off
    end = pos + core_len
    (rec_size,) = struct.unpack_from("<I", data, pos)
    pos += 4
    changed = 0
    while pos < end:
        _sec_name, count = struct.unpack_from("<II", data, pos)
        pos += 8
        for _ in range(count):
            if struct.unpack_from("<I", data, pos + 12)[0] == 8:  # BPF_CORE_TYPE_EXISTS
                struct.pack_into("<I", data, pos + 12, 12)  # BPF_CORE_TYPE_MATCHES
                changed += 1
            pos += rec_size
    assert changed == 7
    out.write_bytes(data)
    return out


def test_type_matches_agrees_with_libbpf_and_the_kernel(bpf_object, tmp_path) -> None:
    patched = _as_type_matches(bpf_object("core_matches"), tmp_path / "core_matches.bpf.o")
    obj = read_object(patched)
    assert {r.kind for r in obj.programs[0].core_relos} == {12}
    with _LibbpfLoad(patched) as libbpf:
        assert libbpf.returncode == 0, libbpf.stderr
        theirs = bpftool("prog", "show", "pinned", f"{libbpf.pin}/matches")
        want = normalise(xlated_by_bpftool(theirs["id"], tmp_path))
        with obj_get(f"{libbpf.pin}/matches") as fd:
            bits = prog_test_run(fd, bytes(64)).retval
        # exists-only would set every bit but the last; matching is stricter
        assert bits == 0b0011001, bin(bits)
        with load(obj) as ours, load(obj, core_in_kernel=True) as kernels:
            for loaded in (ours, kernels):
                prog = loaded.programs["matches"]
                assert normalise(xlated_by_bpftool(prog.info.id, tmp_path)) == want
                assert prog_test_run(prog.fd, bytes(64)).retval == bits


def test_the_kernel_btf_is_read_once_per_process(core_task) -> None:
    vmlinux_btf()  # whatever ran before, the file is read at most once from here on
    before = vmlinux_btf.cache_info()
    for _ in range(3):
        with load(read_object(core_task)):
            pass
    after = vmlinux_btf.cache_info()
    assert after.misses == before.misses and after.hits >= before.hits + 3


def test_cli_load_takes_a_custom_target_btf(bpf_object, tmp_path) -> None:
    target = compile_target(tmp_path)
    pin = f"/sys/fs/bpf/bgt-core-{uuid.uuid4().hex[:8]}"
    cli = [CLI, "load", str(bpf_object("core_custom"))]
    try:
        done = subprocess.run(
            [*cli, "--pin", pin, "--btf", str(target), "--json"], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        with obj_get(f"{pin}/programs/read_point") as fd:
            assert prog_test_run(fd, bytes(64)).retval == 100000 * GREEN  # in the target
        refused = subprocess.run([*cli, "--pin", pin + "x"], capture_output=True, text=True)
        assert refused.returncode == 2
        assert "struct point.x" in refused.stderr and "failed to resolve CO-RE" in refused.stderr
    finally:
        subprocess.run(["rm", "-rf", pin, pin + "x"], check=False)
