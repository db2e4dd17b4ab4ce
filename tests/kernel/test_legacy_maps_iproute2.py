"""Legacy SEC("maps") definitions against iproute2's legacy loader (the peer for them: libbpf
>= 1.0 refuses the section). iproute2 pins PIN_GLOBAL_NS maps at BPFFS/tc/globals/<name>; we
pin there too and reuse what is pinned, so both loaders' programs share one map."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bpfglobals.elf import read_object
from bpfglobals.errors import BpfGlobalsError
from bpfglobals.kernel.constants import Cmd
from bpfglobals.kernel.maps import map_lookup
from bpfglobals.kernel.objects import fd_by_id
from bpfglobals.kernel.progs import prog_test_run
from bpfglobals.kernel.syscall import inject_fault
from bpfglobals.loader import LoadError, load
from bpfglobals.loader.maps import GLOBAL_PIN_DIR
from tests.support.bpftool import bpftool
from tests.support.iproute2 import iproute2_tree_removed_if_new, legacy_ip
from tests.support.libbpf_load import map_facts
from tests.support.progs import PROGS, compile_bpf
from tests.support.xlated import normalise, xlated_by_bpftool

XDP_PASS, XDP_DROP = 2, 1


@pytest.fixture
def legacy_object(tmp_path) -> Iterator[tuple[Path, str]]:
    """The fixture compiled with a unique PIN_GLOBAL_NS map name; its global pin removed."""
    name = f"bgt_{uuid.uuid4().hex[:8]}"
    obj = compile_bpf(PROGS / "legacy_iproute2.bpf.c", tmp_path, [f"-DGLOBAL_MAP={name}"])
    with iproute2_tree_removed_if_new():
        try:
            yield obj, name
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(GLOBAL_PIN_DIR, name))


@contextlib.contextmanager
def iproute2_loaded(obj: Path) -> Iterator[int]:
    """`ip link set DEV xdpgeneric obj OBJ` with the legacy loader; yields the program id.
    The device stays down: no packet but the test's reaches the program."""
    ip = legacy_ip()
    dev = f"bgt{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["ip", "link", "add", dev, "type", "veth", "peer", "name", dev + "p"], check=True
    )
    try:
        subprocess.run(
            [ip, "link", "set", "dev", dev, "xdpgeneric", "obj", str(obj), "sec", "xdp"],
            check=True,
            capture_output=True,
        )
        shown = subprocess.run(
            ["ip", "-d", "link", "show", dev], check=True, capture_output=True, text=True
        ).stdout
        match = re.search(r"prog/xdp id (\d+)", shown)
        assert match, shown
        yield int(match.group(1))
    finally:
        subprocess.run(["ip", "link", "del", dev], capture_output=True)


def _by_type(map_id: int) -> tuple:
    """Legacy maps carry no name under iproute2: tell them apart by their facts."""
    m = bpftool("map", "show", "id", str(map_id))
    return (m["type"], m["bytes_key"], m["bytes_value"], m["max_entries"], m["flags"])


def test_global_ns_map_is_shared_with_iproute2_and_programs_match(legacy_object, tmp_path) -> None:
    obj_path, name = legacy_object
    pin = os.path.join(GLOBAL_PIN_DIR, name)
    with iproute2_loaded(obj_path) as their_prog:
        assert os.path.exists(pin), "iproute2 pins PIN_GLOBAL_NS maps in tc/globals"
        their_global = bpftool("map", "show", "pinned", pin)["id"]
        with load(read_object(obj_path)) as ours:
            shared = ours.maps[name]
            assert shared.reused and shared.pin == pin and shared.info.id == their_global
            their_map_ids = bpftool("prog", "show", "id", str(their_prog))["map_ids"]
            their_private = next(i for i in their_map_ids if i != their_global)
            ignore_name = lambda facts: {**facts, "name": None}  # noqa: E731
            assert ignore_name(map_facts(ours.maps["private_seen"].info.id)) == ignore_name(
                map_facts(their_private)
            )
            assert normalise(
                xlated_by_bpftool(ours.programs["count_packets"].info.id, tmp_path), _by_type
            ) == normalise(xlated_by_bpftool(their_prog, tmp_path), _by_type)
            with fd_by_id("prog", their_prog) as their_fd:
                # one counter for both: the first run passes, every later one drops
                assert prog_test_run(their_fd, bytes(64)).retval == XDP_PASS
                assert prog_test_run(ours.programs["count_packets"].fd, bytes(64)).retval == (
                    XDP_DROP
                )
            count = map_lookup(shared.fd, (1).to_bytes(4, "little"), 8)
            assert int.from_bytes(count, "little") == 2


def test_global_ns_map_pinned_by_us_is_taken_by_iproute2(legacy_object) -> None:
    obj_path, name = legacy_object
    pin = os.path.join(GLOBAL_PIN_DIR, name)
    with load(read_object(obj_path)) as ours:
        assert ours.maps[name].pin == pin and not ours.maps[name].reused
        ours_id = ours.maps[name].info.id
    assert bpftool("map", "show", "pinned", pin)["id"] == ours_id  # outlives our fds
    with iproute2_loaded(obj_path) as their_prog:
        assert ours_id in bpftool("prog", "show", "id", str(their_prog))["map_ids"]


def test_a_failed_load_removes_the_global_pin_it_made(legacy_object) -> None:
    obj_path, name = legacy_object
    pin = os.path.join(GLOBAL_PIN_DIR, name)
    with inject_fault(Cmd.PROG_LOAD, errno.ENOMEM), pytest.raises(LoadError):
        load(read_object(obj_path))
    assert not os.path.exists(pin)


def test_an_incompatible_global_pin_is_refused_with_the_difference(legacy_object, tmp_path):
    obj_path, name = legacy_object
    with load(read_object(obj_path)):
        pass
    src = (PROGS / "legacy_iproute2.bpf.c").read_text().replace(".max_elem = 4", ".max_elem = 8")
    (tmp_path / "bigger.bpf.c").write_text(src)
    bigger = compile_bpf(tmp_path / "bigger.bpf.c", tmp_path, [f"-DGLOBAL_MAP={name}"])
    with pytest.raises(LoadError, match=f"map '{name}': existing .* has max_entries 4, the"):
        load(read_object(bigger))


LEGACY_HEADER = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct bpf_elf_map {
	__u32 type, size_key, size_value, max_elem, flags, id, pinning, inner_id, inner_idx;
};
"""
LEGACY_PROG = """
SEC("xdp") int probe(struct xdp_md *c)
{
	__u32 k = 0;
	return bpf_map_lookup_elem(&m, &k) ? XDP_PASS : XDP_DROP;
}
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.parametrize(
    ("definition", "iproute2_loads", "we_load"),
    [
        # libbpf's struct bpf_map_def (20 bytes): both, same facts and instructions
        (
            'struct d { __u32 f[5]; }; struct d SEC("maps") m = '
            "{ { BPF_MAP_TYPE_ARRAY, 4, 8, 2, 0 } };",
            True,
            True,
        ),
        # the whole struct bpf_elf_map, flags set: both
        (
            'struct bpf_elf_map SEC("maps") m = { .type = BPF_MAP_TYPE_HASH, .size_key = 4, '
            ".size_value = 4, .max_elem = 8, .flags = BPF_F_NO_PREALLOC };",
            True,
            True,
        ),
        # longer than struct bpf_elf_map: both refuse
        (
            'struct big { __u32 f[10]; }; struct big SEC("maps") m = '
            "{ { BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0, 0, 0, 0, 0, 7 } };",
            False,
            False,
        ),
        # fields iproute2 silently ignores here (an id nothing refers to, a pinning value
        # with no /etc/iproute2/bpf_pinning entry): we refuse them instead of ignoring them
        (
            'struct bpf_elf_map SEC("maps") m = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, '
            ".size_value = 4, .max_elem = 1, .id = 1 };",
            True,
            False,
        ),
        (
            'struct bpf_elf_map SEC("maps") m = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, '
            ".size_value = 4, .max_elem = 1, .pinning = 5 };",
            True,
            False,
        ),
    ],
)
def test_legacy_verdicts_and_facts_against_iproute2(
    tmp_path, definition, iproute2_loads, we_load
) -> None:
    src = tmp_path / "legacy_case.bpf.c"
    src.write_text(LEGACY_HEADER + definition + LEGACY_PROG)
    obj_path = compile_bpf(src, tmp_path)
    with iproute2_tree_removed_if_new():
        _legacy_case(obj_path, tmp_path, iproute2_loads, we_load)


def _legacy_case(obj_path: Path, tmp_path: Path, iproute2_loads: bool, we_load: bool) -> None:
    try:
        ours = load(read_object(obj_path))
    except BpfGlobalsError as e:
        assert not we_load, str(e)
        assert "maps: " in str(e)  # says which definition and why
        ours = None
    else:
        assert we_load
    with contextlib.ExitStack() as stack:
        if ours is not None:
            stack.enter_context(ours)
        try:
            their_prog = stack.enter_context(iproute2_loaded(obj_path))
        except subprocess.CalledProcessError:
            assert not iproute2_loads
            return
        assert iproute2_loads
        if ours is None:
            return
        (their_map,) = bpftool("prog", "show", "id", str(their_prog))["map_ids"]
        assert {**map_facts(ours.maps["m"].info.id), "name": None} == {
            **map_facts(their_map),
            "name": None,
        }
        xlated = lambda prog_id: normalise(xlated_by_bpftool(prog_id, tmp_path), _by_type)  # noqa: E731
        assert xlated(ours.programs["probe"].info.id) == xlated(their_prog)
        with fd_by_id("prog", their_prog) as their_fd:
            assert (
                prog_test_run(their_fd, bytes(64)).retval
                == prog_test_run(ours.programs["probe"].fd, bytes(64)).retval
            )
