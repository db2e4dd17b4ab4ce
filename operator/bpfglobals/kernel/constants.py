"""Numbers from the kernel uapi `include/uapi/linux/bpf.h` (names in libbpf/bpftool spelling)."""

from __future__ import annotations

from enum import IntEnum, IntFlag


class Cmd(IntEnum):
    MAP_CREATE = 0
    MAP_LOOKUP_ELEM = 1
    MAP_UPDATE_ELEM = 2
    MAP_DELETE_ELEM = 3
    MAP_GET_NEXT_KEY = 4
    PROG_LOAD = 5
    OBJ_PIN = 6
    OBJ_GET = 7
    PROG_TEST_RUN = 10
    PROG_GET_NEXT_ID = 11
    MAP_GET_NEXT_ID = 12
    PROG_GET_FD_BY_ID = 13
    MAP_GET_FD_BY_ID = 14
    OBJ_GET_INFO_BY_FD = 15
    RAW_TRACEPOINT_OPEN = 17
    BTF_LOAD = 18
    BTF_GET_FD_BY_ID = 19
    MAP_FREEZE = 22
    BTF_GET_NEXT_ID = 23
    LINK_CREATE = 28
    LINK_UPDATE = 29
    LINK_GET_FD_BY_ID = 30
    LINK_GET_NEXT_ID = 31
    LINK_DETACH = 34


# enum bpf_prog_type, in order
PROG_TYPES = (
    "unspec",
    "socket_filter",
    "kprobe",
    "sched_cls",
    "sched_act",
    "tracepoint",
    "xdp",
    "perf_event",
    "cgroup_skb",
    "cgroup_sock",
    "lwt_in",
    "lwt_out",
    "lwt_xmit",
    "sock_ops",
    "sk_skb",
    "cgroup_device",
    "sk_msg",
    "raw_tracepoint",
    "cgroup_sock_addr",
    "lwt_seg6local",
    "lirc_mode2",
    "sk_reuseport",
    "flow_dissector",
    "cgroup_sysctl",
    "raw_tracepoint_writable",
    "cgroup_sockopt",
    "tracing",
    "struct_ops",
    "ext",
    "lsm",
    "sk_lookup",
    "syscall",
    "netfilter",
)

# enum bpf_attach_type, in order
ATTACH_TYPES = (
    "cgroup_inet_ingress",
    "cgroup_inet_egress",
    "cgroup_inet_sock_create",
    "cgroup_sock_ops",
    "sk_skb_stream_parser",
    "sk_skb_stream_verdict",
    "cgroup_device",
    "sk_msg_verdict",
    "cgroup_inet4_bind",
    "cgroup_inet6_bind",
    "cgroup_inet4_connect",
    "cgroup_inet6_connect",
    "cgroup_inet4_post_bind",
    "cgroup_inet6_post_bind",
    "cgroup_udp4_sendmsg",
    "cgroup_udp6_sendmsg",
    "lirc_mode2",
    "flow_dissector",
    "cgroup_sysctl",
    "cgroup_udp4_recvmsg",
    "cgroup_udp6_recvmsg",
    "cgroup_getsockopt",
    "cgroup_setsockopt",
    "trace_raw_tp",
    "trace_fentry",
    "trace_fexit",
    "modify_return",
    "lsm_mac",
    "trace_iter",
    "cgroup_inet4_getpeername",
    "cgroup_inet6_getpeername",
    "cgroup_inet4_getsockname",
    "cgroup_inet6_getsockname",
    "xdp_devmap",
    "cgroup_inet_sock_release",
    "xdp_cpumap",
    "sk_lookup",
    "xdp",
    "sk_skb_verdict",
    "sk_reuseport_select",
    "sk_reuseport_select_or_migrate",
    "perf_event",
    "trace_kprobe_multi",
    "lsm_cgroup",
    "struct_ops",
    "netfilter",
    "tcx_ingress",
    "tcx_egress",
)

LINK_TYPES = (
    "unspec",
    "raw_tracepoint",
    "tracing",
    "cgroup",
    "iter",
    "netns",
    "xdp",
    "perf_event",
    "kprobe_multi",
    "struct_ops",
    "netfilter",
    "tcx",
    "uprobe_multi",
    "netkit",
)


def prog_type_id(name: str) -> int:
    return PROG_TYPES.index(name)


def attach_type_id(name: str) -> int:
    return ATTACH_TYPES.index(name)


def name_of(table: tuple[str, ...], number: int) -> str:
    return table[number] if 0 <= number < len(table) else str(number)


class MapFlags(IntFlag):
    NO_PREALLOC = 0x1
    NO_COMMON_LRU = 0x2
    NUMA_NODE = 0x4
    RDONLY = 0x8
    WRONLY = 0x10
    RDONLY_PROG = 0x80
    WRONLY_PROG = 0x100
    MMAPABLE = 0x400


class ProgFlags(IntFlag):
    STRICT_ALIGNMENT = 0x1
    SLEEPABLE = 0x10
    XDP_HAS_FRAGS = 0x20


class UpdateFlags(IntEnum):
    ANY = 0
    NOEXIST = 1
    EXIST = 2


BPF_F_REPLACE = 1 << 2  # LINK_UPDATE: only if the link still runs old_prog_fd
BPF_ARRAY = 2  # BPF_MAP_TYPE_ARRAY
# ldimm64 src_reg values
BPF_PSEUDO_MAP_FD = 1
BPF_PSEUDO_MAP_VALUE = 2
BPF_PSEUDO_FUNC = 4
BPF_PSEUDO_CALL = 1  # call src_reg
BPF_OBJ_NAME_LEN = 16
BPF_PSEUDO_BTF_ID = 3  # ldimm64 src_reg: imm = kernel BTF id of a VAR, imm2 = BTF object fd
BPF_PSEUDO_KFUNC_CALL = 2  # call src_reg: imm = kernel BTF id of a FUNC, off = fd_array index
BPF_FUNC_GET_ATTACH_COOKIE = 174  # helper id (probe for LINUX_HAS_BPF_COOKIE)
