"""Map definitions as libbpf (`.maps`) and iproute2 (legacy `maps`) read them: what is
understood becomes the spec, everything else is refused with where and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpfglobals.elf import read_object
from bpfglobals.elf.map_types import PIN_BY_NAME, PIN_GLOBAL_NS, PIN_NONE
from bpfglobals.errors import ElfError
from bpfglobals.kernel.errors import KernelError, errno_name
from bpfglobals.loader.errors import LoadError
from bpfglobals.loader.map_defaults import count_cpu_list, ring_buffer_size
from tests.support.progs import compile_bpf

HEADER = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
"""
LEGACY_DEF = """
struct bpf_elf_map {
	__u32 type, size_key, size_value, max_elem, flags, id, pinning, inner_id, inner_idx;
};
"""


def _object(tmp_path: Path, body: str) -> Path:
    src = tmp_path / "snippet.bpf.c"
    src.write_text(HEADER + body)
    return compile_bpf(src, tmp_path)


def test_map_in_map_inner_templates_and_initial_slots(bpf_object) -> None:
    maps = {m.name: m for m in read_object(bpf_object("maps_in_maps")).maps}
    outer = maps["outer_arr"]
    assert (outer.type, outer.key_size, outer.value_size, outer.max_entries) == (
        "array_of_maps",
        4,
        4,
        3,
    )
    assert outer.init_slots == ((0, "inner_a"), (2, "inner_b"))
    assert outer.inner is not None
    assert (outer.inner.name, outer.inner.type, outer.inner.max_entries) == (
        "outer_arr.inner",
        "array",
        4,
    )
    assert maps["outer_hash"].init_slots == ((5, "inner_b"),)
    assert maps["outer_hash"].type == "hash_of_maps"
    empty = maps["outer_empty"]
    assert empty.init_slots == () and empty.inner is not None
    assert (empty.inner.type, empty.inner.key_size, empty.inner.value_size) == ("hash", 8, 8)


def test_prog_array_slots_name_programs(bpf_object) -> None:
    maps = {m.name: m for m in read_object(bpf_object("maps_tail_calls")).maps}
    assert maps["jmp_table"].init_slots == ((0, "tail_tx"), (2, "tail_drop"))
    assert maps["jmp_table"].value_size == 4 and maps["jmp_table"].inner is None
    assert maps["typed_jmp"].init_slots == ()


def test_perf_event_array_without_size_is_left_for_the_loader(bpf_object) -> None:
    maps = {m.name: m for m in read_object(bpf_object("maps_perf_output")).maps}
    assert maps["events"].max_entries == 0  # sized to the possible CPUs at load
    assert maps["seen"].map_extra == 3
    assert maps["typed_events"].btf_key_type_id != 0  # kept: the loader decides per type


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            """struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1);
            __type(key, int); __array(values, int (void *)); } m SEC(".maps");""",
            "'values' is for map-in-map and prog arrays, not hash",
        ),
        (
            """struct { __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); __uint(max_entries, 1);
            __type(key, int); __type(value, int); } m SEC(".maps");""",
            "array_of_maps needs its inner map declared with __array(values",
        ),
        (
            """struct { __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); __uint(max_entries, 1);
            __type(key, int); __array(values, struct { __uint(type, BPF_MAP_TYPE_ARRAY);
            __uint(max_entries, 1); __type(key, int); __type(value, int);
            __uint(pinning, LIBBPF_PIN_BY_NAME); }); } m SEC(".maps");""",
            "an inner map definition cannot be pinned",
        ),
        (
            """struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);
            __type(key, int); __type(value, int); __uint(pinning, 2); } m SEC(".maps");""",
            "pinning 2 is neither LIBBPF_PIN_NONE nor _BY_NAME",
        ),
        (
            """struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 2);
            __uint(value_size, 8); __array(values, int (void *)); } m SEC(".maps");""",
            "'values' makes value_size 4; it conflicts with 8",
        ),
        (
            """__attribute__((noinline)) int helper(void *ctx) { return 1; }
            struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 2);
            __uint(key_size, 4); __array(values, int (void *)); } m SEC(".maps") =
            { .values = { [1] = (void *)&helper } };
            SEC("xdp") int p(struct xdp_md *c) { return helper(c); }""",
            "map 'm' initialiser: 'helper' is not a program's entry point",
        ),
        (
            """SEC("xdp") int t(struct xdp_md *c) { return 1; }
            struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 2);
            __uint(key_size, 4); __array(values, int (void *)); } m SEC(".maps") =
            { .values = { [2] = (void *)&t } };""",
            "slot 2 is beyond max_entries 2",
        ),
        (
            """struct inner { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);
            __type(key, int); __type(value, int); };
            struct inner in0 SEC(".maps");
            struct { __uint(type, BPF_MAP_TYPE_HASH_OF_MAPS); __uint(max_entries, 2);
            __type(key, __u64); __array(values, struct inner); } m SEC(".maps") =
            { .values = { [1] = &in0 } };""",
            "a hash of maps with initial slots needs a 4-byte key",
        ),
        (
            """struct { __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); __uint(max_entries, 1);
            __type(key, int); __array(values, struct { __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
            __uint(max_entries, 1); __type(key, int); __array(values, struct {
            __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, int);
            __type(value, int); }); }); } m SEC(".maps");""",
            "multi-level inner maps are not supported",
        ),
    ],
)
def test_btf_map_definitions_refused_with_where_and_why(tmp_path, body, message) -> None:
    with pytest.raises(ElfError, match=message.replace("(", r"\(")):
        read_object(_object(tmp_path, body))


@pytest.mark.parametrize(
    ("fields", "pinning"),
    [
        ("", PIN_NONE),
        (".pinning = 1", PIN_BY_NAME),  # iproute2 PIN_OBJECT_NS: the load's own directory
        (".pinning = 2", PIN_GLOBAL_NS),
    ],
)
def test_legacy_iproute2_definitions_keep_their_pinning(tmp_path, fields, pinning) -> None:
    body = LEGACY_DEF + (
        'struct bpf_elf_map SEC("maps") m = { .type = BPF_MAP_TYPE_HASH, .size_key = 4,'
        f" .size_value = 8, .max_elem = 3, .flags = 1, {fields} }};"
    )
    (m,) = read_object(_object(tmp_path, body)).maps
    assert (m.type, m.key_size, m.value_size, m.max_entries, m.flags) == ("hash", 4, 8, 3, 1)
    assert m.legacy and m.pinning == pinning


def test_legacy_bpf_map_def_and_shorter_definitions(tmp_path) -> None:
    body = """struct d { __u32 t, k, v, n; };
    struct d SEC("maps") short_def = { BPF_MAP_TYPE_ARRAY, 4, 4, 2 };"""
    (m,) = read_object(_object(tmp_path, body)).maps
    assert (m.type, m.max_entries, m.flags, m.pinning) == ("array", 2, 0, PIN_NONE)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            LEGACY_DEF
            + """struct bpf_elf_map SEC("maps") m = { .type = BPF_MAP_TYPE_ARRAY_OF_MAPS,
            .size_key = 4, .size_value = 4, .max_elem = 1, .inner_id = 3 };""",
            "iproute2 map-in-map fields (id 0, inner_id 3, inner_idx 0; bytes 20-35",
        ),
        (
            # cilium/ebpf's testdata/invalid_map.c: struct bpf_map_def and a non-zero u32
            """struct bpf_map_def { __u32 type, key_size, value_size, max_entries, map_flags; };
            struct { struct bpf_map_def def; __u32 dummy; } m SEC("maps") =
            { .def = { BPF_MAP_TYPE_HASH, 4, 2, 1 }, .dummy = 1 };""",
            "map 'm': iproute2 map-in-map fields (id 1, inner_id 0, inner_idx 0;",
        ),
        (
            LEGACY_DEF
            + """struct bpf_elf_map SEC("maps") m = { .type = BPF_MAP_TYPE_ARRAY,
            .size_key = 4, .size_value = 4, .max_elem = 1, .pinning = 5 };""",
            "pinning 5 is not PIN_NONE",
        ),
        (
            """struct big { __u32 f[10]; };
            struct big SEC("maps") m = { { BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0, 0, 0, 0, 0, 9 } };""",
            "definitions are 40 bytes, longer than iproute2's struct bpf_elf_map",
        ),
        (
            """struct tiny { __u32 f[3]; };
            struct tiny SEC("maps") m = { { BPF_MAP_TYPE_ARRAY, 4, 4 } };""",
            "definition size 12 is not whole u32 fields of at least",
        ),
    ],
)
def test_legacy_definitions_refused_with_where_and_why(tmp_path, body, message) -> None:
    with pytest.raises(ElfError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_object(_object(tmp_path, body))


def test_possible_cpu_lists_count_like_libbpf() -> None:
    assert count_cpu_list("0-1", "x") == 2
    assert count_cpu_list("0-3,8,10-11", "x") == 7
    assert count_cpu_list("0\n".strip(), "x") == 1
    for bad in ("", "a-b", "3-1", "1,,x"):
        with pytest.raises(LoadError, match="x: "):
            count_cpu_list(bad, "x")


def test_ring_buffer_sizes_round_up_like_libbpf() -> None:
    page = 4096
    assert ring_buffer_size(4096, page) == 4096
    assert ring_buffer_size(5000, page) == 8192
    assert ring_buffer_size(3 * page, page) == 4 * page
    assert ring_buffer_size(1, page) == page
    assert ring_buffer_size(0, page) == 0  # no size: the kernel says so
    assert ring_buffer_size(0xFFFF_F000, page) == 0xFFFF_F000  # no power of 2 fits: as is


def test_kernel_internal_errnos_are_named_with_a_hint() -> None:
    msg = str(KernelError(524, "MAP_CREATE", "map 'tx_ports'"))
    assert msg.startswith("bpf(MAP_CREATE) (map 'tx_ports'): ENOTSUPP: kernel-internal error 524")
    assert "takes no BTF key/value types" in msg and "Unknown error" not in msg
    assert errno_name(512) == "ERESTARTSYS" and errno_name(2) == "ENOENT"
    assert errno_name(4242) == "4242"


def test_inspect_shows_inner_maps_slots_and_load_time_sizes(bpf_object) -> None:
    from bpfglobals.cli.inspect import describe

    maps = {m["name"]: m for m in describe(read_object(bpf_object("maps_in_maps")))["maps"]}
    assert maps["outer_arr"]["slots"] == {"0": "inner_a", "2": "inner_b"}
    assert maps["outer_arr"]["inner"] == {
        "name": "outer_arr.inner",
        "type": "array",
        "key_size": 4,
        "value_size": 4,
        "max_entries": 4,
        "flags": 0,
        "map_extra": 0,
    }
    perf = {m["name"]: m for m in describe(read_object(bpf_object("maps_perf_output")))["maps"]}
    assert perf["events"]["max_entries"] == "possible CPUs"
    assert perf["sized_events"]["max_entries"] == 3
    assert perf["seen"]["map_extra"] == 3
    tails = {m["name"]: m for m in describe(read_object(bpf_object("maps_tail_calls")))["maps"]}
    assert tails["jmp_table"]["slots"] == {"0": "tail_tx", "2": "tail_drop"}
