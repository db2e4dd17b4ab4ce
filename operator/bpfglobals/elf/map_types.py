"""Facts about map types that parsing and loading share (uapi enum bpf_map_type)."""

from __future__ import annotations

# BPF_MAP_TYPE_* in uapi order, spelled as libbpf/bpftool spell them.
MAP_TYPE_NAMES = (
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
)
_ID = {name: i for i, name in enumerate(MAP_TYPE_NAMES)}
PROG_ARRAY = _ID["prog_array"]
PERF_EVENT_ARRAY = _ID["perf_event_array"]
ARRAY_OF_MAPS = _ID["array_of_maps"]
HASH_OF_MAPS = _ID["hash_of_maps"]
RINGBUF = _ID["ringbuf"]
USER_RINGBUF = _ID["user_ringbuf"]
DEVMAP = _ID["devmap"]
DEVMAP_HASH = _ID["devmap_hash"]

MAP_IN_MAP = frozenset({ARRAY_OF_MAPS, HASH_OF_MAPS})
RING_BUFFERS = frozenset({RINGBUF, USER_RINGBUF})
# Types whose kernel implementation refuses BTF key/value types (map_check_no_btf: ENOTSUPP);
# libbpf 1.1's bpf_object__create_map leaves BTF out for exactly these.
NO_BTF_TYPES = frozenset(
    _ID[n]
    for n in (
        "perf_event_array",
        "cgroup_array",
        "stack_trace",
        "array_of_maps",
        "hash_of_maps",
        "devmap",
        "devmap_hash",
        "cpumap",
        "xskmap",
        "sockmap",
        "sockhash",
        "queue",
        "stack",
    )
)

# `pinning` as MapSpec holds it (see MapSpec.pinning).
PIN_NONE = 0
PIN_BY_NAME = 1  # LIBBPF_PIN_BY_NAME; iproute2's PIN_OBJECT_NS
PIN_GLOBAL_NS = 2  # iproute2's PIN_GLOBAL_NS


def map_type_name(type_id: int) -> str:
    return MAP_TYPE_NAMES[type_id] if 0 <= type_id < len(MAP_TYPE_NAMES) else f"type_{type_id}"
