"""Maps as libbpf 1.1 (bpftool) makes them, on objects in the style of public ones.

For each fixture both loaders load the same object: every user map must show the same
`bpftool map show` facts (type, key/value sizes, max_entries, flags, BTF or none, BTF type
ids, map_extra) and hold the same initial slots; every program must translate to the same
instructions and give the same BPF_PROG_TEST_RUN results.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import struct
import time
from collections.abc import Callable

import pytest

from bpfglobals.elf import read_object
from bpfglobals.elf.btf_encode import encode_btf
from bpfglobals.kernel.btf import btf_load
from bpfglobals.kernel.constants import Cmd
from bpfglobals.kernel.errors import KernelError
from bpfglobals.kernel.fd import FD
from bpfglobals.kernel.maps import map_create, map_update
from bpfglobals.kernel.objects import ids, obj_get
from bpfglobals.kernel.progs import prog_test_run
from bpfglobals.kernel.syscall import inject_fault
from bpfglobals.loader import LoadError, load, unload
from bpfglobals.loader.map_defaults import possible_cpus
from tests.support.bpftool import bpftool
from tests.support.libbpf_load import fd_slots, libbpf_loaded, map_facts, slot_ids
from tests.support.xlated import normalise, xlated_by_bpftool

FIXTURES = [
    "maps_xdp_redirect",
    "maps_perf_output",
    "maps_tail_calls",
    "maps_in_maps",
    "maps_kinds",
]
PACKETS = [bytes(range(n)) for n in (64, 65, 66, 67)]  # lengths pick tail-call slots


def _populate_redirect_maps(maps: Callable[[str], FD]) -> None:
    """Give the devmaps a device (lo) so bpf_redirect_map returns XDP_REDIRECT."""
    lo = struct.pack("<I", socket.if_nametoindex("lo"))
    map_update(maps("tx_ports"), struct.pack("<I", 0), lo)
    map_update(maps("tx_hash"), struct.pack("<I", 7), lo + bytes(4))


SETUP = {"maps_xdp_redirect": _populate_redirect_maps}


@pytest.mark.parametrize("fixture", FIXTURES)
def test_user_maps_have_the_facts_and_slots_libbpf_gives_them(bpf_object, fixture) -> None:
    src = bpf_object(fixture)
    obj = read_object(src)
    assert obj.maps, fixture
    with libbpf_loaded(src) as theirs, load(obj) as ours:
        for spec in obj.maps:
            their_id = bpftool("map", "show", "pinned", f"{theirs.maps}/{spec.name}")["id"]
            our_id = ours.maps[spec.name].info.id
            assert map_facts(our_id) == map_facts(their_id), spec.name
            if spec.type in ("prog_array", "array_of_maps", "hash_of_maps"):
                assert fd_slots(our_id) == fd_slots(their_id), spec.name
                assert fd_slots(our_id) == dict(spec.init_slots), spec.name


@pytest.mark.parametrize("fixture", FIXTURES)
def test_programs_translate_and_run_as_under_libbpf(bpf_object, fixture, tmp_path) -> None:
    src = bpf_object(fixture)
    with libbpf_loaded(src) as theirs, load(read_object(src)) as ours:
        if fixture in SETUP:
            their_maps = {}

            def theirs_by_name(name: str) -> FD:
                their_maps[name] = obj_get(f"{theirs.maps}/{name}")
                return their_maps[name]

            SETUP[fixture](lambda name: ours.maps[name].fd)
            SETUP[fixture](theirs_by_name)
            for fd in their_maps.values():
                fd.close()
        assert ours.programs
        for name, prog in ours.programs.items():
            their_id = bpftool("prog", "show", "pinned", f"{theirs.progs}/{name}")["id"]
            assert normalise(xlated_by_bpftool(prog.info.id, tmp_path)) == normalise(
                xlated_by_bpftool(their_id, tmp_path)
            ), name
            with obj_get(f"{theirs.progs}/{name}") as their_fd:
                for packet in PACKETS:
                    assert (
                        prog_test_run(prog.fd, packet).retval
                        == prog_test_run(their_fd, packet).retval
                    ), (name, len(packet))


def test_the_corpus_does_what_it_says(bpf_object) -> None:
    """The verdicts the differential test compares are the interesting ones: a redirect, tail
    calls into each filled slot, lookups through inner maps (not all fall-throughs)."""
    xdp_pass, xdp_drop, xdp_tx, xdp_redirect = 2, 1, 3, 4
    with load(read_object(bpf_object("maps_xdp_redirect"))) as lo:
        run = lambda p: prog_test_run(lo.programs[p].fd, PACKETS[0]).retval  # noqa: E731
        assert run("xdp_redirect_map_prog") == xdp_pass  # empty devmap: the fallback
        assert run("xdp_sock_prog") == xdp_pass
        _populate_redirect_maps(lambda name: lo.maps[name].fd)
        assert run("xdp_redirect_map_prog") == xdp_redirect
        assert run("xdp_redirect_hash_prog") == xdp_redirect
    with load(read_object(bpf_object("maps_tail_calls"))) as lo:
        verdicts = [prog_test_run(lo.programs["dispatch"].fd, p).retval for p in PACKETS]
        assert verdicts == [xdp_tx, xdp_pass, xdp_drop, xdp_pass]  # slots 0 and 2 filled
    with load(read_object(bpf_object("maps_in_maps"))) as lo:
        r = prog_test_run(lo.programs["walk_maps"].fd, PACKETS[0]).retval
        # outer_arr[0], outer_arr[2], outer_hash[5] hold maps; [1], hash[4], empty do not
        assert r == 2 | 0 << 2 | 2 << 4 | 2 << 6 | 0 << 8 | 0 << 10
    with load(read_object(bpf_object("maps_perf_output"))) as lo:
        # no perf event open at any slot: each output is ENOENT, as the program expects
        assert prog_test_run(lo.programs["perf_out"].fd, PACKETS[0]).retval == xdp_tx
        assert lo.maps["events"].info.max_entries == possible_cpus()
        assert lo.maps["rb"].info.max_entries == 8192  # 5000 rounded up to 2 pages
    with load(read_object(bpf_object("maps_kinds"))) as lo:
        arena = lo.maps["arena"].info
        assert (arena.type, arena.map_extra, arena.flags) == (33, 0x100000, 0x400)
        assert lo.maps["stacks"].info.btf_id == 0 and lo.maps["prefixes"].info.btf_id != 0


def test_btf_refused_by_the_kernel_is_retried_without_and_logged(bpf_object, caplog) -> None:
    src = bpf_object("maps_perf_output")
    caplog.set_level(logging.INFO, logger="bpfglobals.loader")
    with libbpf_loaded(src) as theirs, load(read_object(src)) as ours:
        assert ours.maps["struct_keyed"].info.btf_id == 0
        assert "struct_keyed" in theirs.stderr and "Retrying without BTF" in theirs.stderr
    retried = [r.getMessage() for r in caplog.records if "without BTF" in r.getMessage()]
    assert len(retried) == 1 and "map 'struct_keyed'" in retried[0], retried
    assert "EINVAL" in retried[0]
    # types that take no BTF are not even tried with it: no ENOTSUPP round trip, no log line
    assert not any("ENOTSUPP" in r.getMessage() for r in caplog.records)


def test_enotsupp_is_named_with_what_it_usually_means(bpf_object) -> None:
    obj = read_object(bpf_object("maps_perf_output"))
    spec = next(m for m in obj.maps if m.name == "typed_events")
    with btf_load(encode_btf(obj.btf), "test BTF") as btf_fd, pytest.raises(KernelError) as e:
        map_create(
            map_type=spec.type_id,
            key_size=4,
            value_size=4,
            max_entries=2,
            btf_fd=btf_fd,
            btf_key_type_id=spec.btf_key_type_id,
            btf_value_type_id=spec.btf_value_type_id,
        )
    assert e.value.errno == 524
    msg = str(e.value)
    assert "ENOTSUPP" in msg and "Unknown error" not in msg
    assert "takes no BTF key/value types" in msg


def test_selected_programs_bring_the_programs_their_prog_array_holds(bpf_object) -> None:
    obj = read_object(bpf_object("maps_tail_calls"))
    with load(obj, programs=["dispatch"]) as lo:
        assert sorted(lo.programs) == ["dispatch", "tail_drop", "tail_tx"]
        assert fd_slots(lo.maps["jmp_table"].info.id) == {0: "tail_tx", 2: "tail_drop"}
        assert prog_test_run(lo.programs["dispatch"].fd, PACKETS[0]).retval == 3


def _leftovers(maps_before: set[int], progs_before: set[int]) -> tuple[set[int], set[int]]:
    for _ in range(100):  # the kernel frees objects after an RCU grace period
        new_maps, new_progs = set(ids("map")) - maps_before, set(ids("prog")) - progs_before
        if not new_maps and not new_progs:
            break
        time.sleep(0.02)
    return new_maps, new_progs


@pytest.mark.parametrize(
    ("fixture", "cmd", "after", "times"),
    [
        # .rodata, inner_a, inner_b, then outer_arr's inner template: with BTF and (as
        # libbpf) once more without
        ("maps_in_maps", Cmd.MAP_CREATE, 3, 2),
        ("maps_in_maps", Cmd.MAP_CREATE, 4, 1),  # outer_arr itself (its template is closed)
        ("maps_in_maps", Cmd.MAP_UPDATE_ELEM, 1, 1),  # outer_arr's second initial slot
        ("maps_tail_calls", Cmd.MAP_UPDATE_ELEM, 2, 1),  # a prog array slot, after PROG_LOAD
    ],
)
def test_a_failure_in_the_new_map_steps_leaves_nothing_behind(
    bpf_object, fixture, cmd, after, times
) -> None:
    obj = read_object(bpf_object(fixture))
    pin = f"/sys/fs/bpf/bgt-mapfail-{os.urandom(4).hex()}"
    maps_before, progs_before = set(ids("map")), set(ids("prog"))
    fds_before = len(os.listdir("/proc/self/fd"))
    try:
        with inject_fault(cmd, errno.ENOMEM, after, times), pytest.raises(Exception) as e:
            load(obj, pin=pin).close()
    finally:
        if os.path.exists(pin):
            unload(pin)
    assert "ENOMEM" in str(e.value)
    assert len(os.listdir("/proc/self/fd")) == fds_before
    assert not os.path.exists(pin)
    assert _leftovers(maps_before, progs_before) == (set(), set())


def test_a_map_in_map_slot_beyond_max_entries_is_refused_by_both(tmp_path) -> None:
    from tests.support.progs import compile_bpf

    src = tmp_path / "mim_overflow.bpf.c"
    src.write_text(
        MIM_HEADER
        + """
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps") = { .values = { [1] = &in0 } };
"""
        + MIM_PROG
    )
    obj_path = compile_bpf(src, tmp_path)
    with pytest.raises(Exception, match="slot 1 is beyond max_entries 1"):
        read_object(obj_path)
    with pytest.raises(AssertionError, match="libbpf refused"), libbpf_loaded(obj_path, []):
        pass


MIM_HEADER = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
};
struct inner in0 SEC(".maps");
"""
MIM_PROG = """
SEC("xdp")
int prog(struct xdp_md *ctx)
{
	__u32 k = 0;
	return bpf_map_lookup_elem(&outer, &k) ? XDP_PASS : XDP_DROP;
}
char LICENSE[] SEC("license") = "GPL";
"""


def test_load_errors_name_the_map(bpf_object) -> None:
    obj = read_object(bpf_object("maps_xdp_redirect"))
    with contextlib.ExitStack() as stack:
        stack.enter_context(inject_fault(Cmd.MAP_CREATE, errno.E2BIG, after=1))
        with pytest.raises(LoadError, match=r"map 'tx_hash' \(devmap_hash\): .*E2BIG"):
            load(obj)


def test_load_verbose_says_what_the_loader_filled_in_and_left_out(bpf_object) -> None:
    import subprocess
    import sys
    from pathlib import Path

    cli = str(Path(sys.executable).parent / "bpfglobals")
    pin = f"/sys/fs/bpf/bgt-verbose-{os.urandom(4).hex()}"
    src = str(bpf_object("maps_perf_output"))
    try:
        run = subprocess.run([cli, "load", src, "--pin", pin, "-v"], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert f"map 'events': perf event array sized to {possible_cpus()} possible CPUs" in (
            run.stderr
        )
        assert "map 'rb': ring buffer size 5000 rounded to 8192" in run.stderr
        assert "map 'struct_keyed'" in run.stderr and "retrying without BTF" in run.stderr
    finally:
        subprocess.run([cli, "unload", pin], capture_output=True)


@pytest.mark.parametrize("fixture", FIXTURES)
def test_every_kind_of_user_map_can_be_handed_to_the_next_load(bpf_object, fixture) -> None:
    """What the node core does across variants: the kernel's view of each map (flags it adds,
    sizes libbpf fills in) must still count as compatible with the definition."""
    obj = read_object(bpf_object(fixture))
    with load(obj) as first:
        handed = {m.name: first.maps[m.name].fd for m in obj.maps}
        with load(obj, reuse_maps=handed) as second:
            for m in obj.maps:
                assert second.maps[m.name].reused, m.name
                assert second.maps[m.name].info.id == first.maps[m.name].info.id, m.name


def test_a_reused_pinned_prog_array_gets_the_new_programs_as_under_libbpf(tmp_path) -> None:
    """LIBBPF_PIN_BY_NAME on a prog array: the second load reuses the pinned map and, as
    libbpf does, writes its own programs into the initial slots."""
    import shutil
    import subprocess

    from tests.support.progs import PROGS, compile_bpf

    name = f"jt_{os.urandom(4).hex()}"
    src = (PROGS / "maps_tail_calls.bpf.c").read_text().replace("jmp_table", name)
    src = src.replace(
        "__uint(key_size, sizeof(__u32));\n\t__array",
        "__uint(key_size, sizeof(__u32));\n\t__uint(pinning, LIBBPF_PIN_BY_NAME);\n\t__array",
    )
    (tmp_path / "pinned_tails.bpf.c").write_text(src)
    obj_path = compile_bpf(tmp_path / "pinned_tails.bpf.c", tmp_path)
    tag = os.urandom(4).hex()
    libbpf_pins = [f"/sys/fs/bpf/bgt-pt-{tag}-{i}" for i in (1, 2)]
    ours_pin = f"/sys/fs/bpf/bgt-pt-{tag}-ours"
    try:
        for p in libbpf_pins:
            subprocess.run(["bpftool", "prog", "loadall", str(obj_path), p], check=True)
        their_tail = bpftool("prog", "show", "pinned", f"{libbpf_pins[1]}/tail_tx")["id"]
        their_table = bpftool("map", "show", "pinned", f"/sys/fs/bpf/{name}")["id"]
        assert slot_ids(their_table)[0] == their_tail
        obj = read_object(obj_path)
        with load(obj, pin=ours_pin) as first:
            for sub in ("programs", "maps"):  # keep only the prog array's pin
                for pinned in os.listdir(f"{ours_pin}/{sub}"):
                    if pinned != name:
                        os.unlink(f"{ours_pin}/{sub}/{pinned}")
            with load(obj, pin=ours_pin) as second:
                assert second.maps[name].reused
                assert second.maps[name].info.id == first.maps[name].info.id
                slots = slot_ids(second.maps[name].info.id)
                assert slots[0] == second.programs["tail_tx"].info.id
                assert slots[2] == second.programs["tail_drop"].info.id
    finally:
        for p in [*libbpf_pins, f"/sys/fs/bpf/{name}"]:
            subprocess.run(["rm", "-rf", p], check=False)
        shutil.rmtree(ours_pin, ignore_errors=True)
