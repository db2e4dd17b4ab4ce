"""Section name → program type, libbpf's SEC() conventions as a data table.

Names use libbpf/bpftool spelling (`sched_cls`, `tcx_ingress`); the kernel layer maps them to
numbers. Rows are tried in order; `+` rows match the bare prefix or `prefix/<target>`, where
the target (kprobe function, tracepoint, BTF function) becomes `ProgramType.attach_target`.
"""

from __future__ import annotations

from bpfglobals.elf.model import ProgramType
from bpfglobals.frozen import replace

# (section pattern, prog_type, expected attach type or None, flags)
# flags: "+" = takes a target after "/", "s" = sleepable, "f" = XDP frags
SECTION_DEFS: tuple[tuple[str, str, str | None, str], ...] = (
    ("socket", "socket_filter", None, ""),
    ("sk_reuseport/migrate", "sk_reuseport", "sk_reuseport_select_or_migrate", ""),
    ("sk_reuseport", "sk_reuseport", "sk_reuseport_select", ""),
    ("kprobe", "kprobe", None, "+"),
    ("uprobe", "kprobe", None, "+"),
    ("uprobe.s", "kprobe", None, "+s"),
    ("kretprobe", "kprobe", None, "+"),
    ("uretprobe", "kprobe", None, "+"),
    ("uretprobe.s", "kprobe", None, "+s"),
    ("kprobe.multi", "kprobe", "trace_kprobe_multi", "+"),
    ("kretprobe.multi", "kprobe", "trace_kprobe_multi", "+"),
    ("ksyscall", "kprobe", None, "+"),
    ("kretsyscall", "kprobe", None, "+"),
    ("usdt", "kprobe", None, "+"),
    ("tc/ingress", "sched_cls", "tcx_ingress", ""),
    ("tc/egress", "sched_cls", "tcx_egress", ""),
    ("tcx/ingress", "sched_cls", "tcx_ingress", ""),
    ("tcx/egress", "sched_cls", "tcx_egress", ""),
    ("tc", "sched_cls", None, ""),
    ("classifier", "sched_cls", None, ""),
    ("action", "sched_act", None, ""),
    ("tracepoint", "tracepoint", None, "+"),
    ("tp", "tracepoint", None, "+"),
    ("raw_tracepoint", "raw_tracepoint", None, "+"),
    ("raw_tp", "raw_tracepoint", None, "+"),
    ("raw_tracepoint.w", "raw_tracepoint_writable", None, "+"),
    ("raw_tp.w", "raw_tracepoint_writable", None, "+"),
    ("tp_btf", "tracing", "trace_raw_tp", "+"),
    ("fentry", "tracing", "trace_fentry", "+"),
    ("fmod_ret", "tracing", "modify_return", "+"),
    ("fexit", "tracing", "trace_fexit", "+"),
    ("fentry.s", "tracing", "trace_fentry", "+s"),
    ("fmod_ret.s", "tracing", "modify_return", "+s"),
    ("fexit.s", "tracing", "trace_fexit", "+s"),
    ("freplace", "ext", None, "+"),
    ("lsm", "lsm", "lsm_mac", "+"),
    ("lsm.s", "lsm", "lsm_mac", "+s"),
    ("lsm_cgroup", "lsm", "lsm_cgroup", "+"),
    ("iter", "tracing", "trace_iter", "+"),
    ("iter.s", "tracing", "trace_iter", "+s"),
    ("syscall", "syscall", None, "s"),
    ("xdp.frags/devmap", "xdp", "xdp_devmap", "f"),
    ("xdp/devmap", "xdp", "xdp_devmap", ""),
    ("xdp.frags/cpumap", "xdp", "xdp_cpumap", "f"),
    ("xdp/cpumap", "xdp", "xdp_cpumap", ""),
    ("xdp.frags", "xdp", "xdp", "f"),
    ("xdp", "xdp", "xdp", ""),
    ("perf_event", "perf_event", None, ""),
    ("lwt_in", "lwt_in", None, ""),
    ("lwt_out", "lwt_out", None, ""),
    ("lwt_xmit", "lwt_xmit", None, ""),
    ("lwt_seg6local", "lwt_seg6local", None, ""),
    ("sockops", "sock_ops", "cgroup_sock_ops", ""),
    ("sk_skb/stream_parser", "sk_skb", "sk_skb_stream_parser", ""),
    ("sk_skb/stream_verdict", "sk_skb", "sk_skb_stream_verdict", ""),
    ("sk_skb", "sk_skb", None, ""),
    ("sk_msg", "sk_msg", "sk_msg_verdict", ""),
    ("lirc_mode2", "lirc_mode2", "lirc_mode2", ""),
    ("flow_dissector", "flow_dissector", "flow_dissector", ""),
    ("cgroup_skb/ingress", "cgroup_skb", "cgroup_inet_ingress", ""),
    ("cgroup_skb/egress", "cgroup_skb", "cgroup_inet_egress", ""),
    ("cgroup/skb", "cgroup_skb", None, ""),
    ("cgroup/sock_create", "cgroup_sock", "cgroup_inet_sock_create", ""),
    ("cgroup/sock_release", "cgroup_sock", "cgroup_inet_sock_release", ""),
    ("cgroup/sock", "cgroup_sock", "cgroup_inet_sock_create", ""),
    ("cgroup/post_bind4", "cgroup_sock", "cgroup_inet4_post_bind", ""),
    ("cgroup/post_bind6", "cgroup_sock", "cgroup_inet6_post_bind", ""),
    ("cgroup/bind4", "cgroup_sock_addr", "cgroup_inet4_bind", ""),
    ("cgroup/bind6", "cgroup_sock_addr", "cgroup_inet6_bind", ""),
    ("cgroup/connect4", "cgroup_sock_addr", "cgroup_inet4_connect", ""),
    ("cgroup/connect6", "cgroup_sock_addr", "cgroup_inet6_connect", ""),
    ("cgroup/sendmsg4", "cgroup_sock_addr", "cgroup_udp4_sendmsg", ""),
    ("cgroup/sendmsg6", "cgroup_sock_addr", "cgroup_udp6_sendmsg", ""),
    ("cgroup/recvmsg4", "cgroup_sock_addr", "cgroup_udp4_recvmsg", ""),
    ("cgroup/recvmsg6", "cgroup_sock_addr", "cgroup_udp6_recvmsg", ""),
    ("cgroup/getpeername4", "cgroup_sock_addr", "cgroup_inet4_getpeername", ""),
    ("cgroup/getpeername6", "cgroup_sock_addr", "cgroup_inet6_getpeername", ""),
    ("cgroup/getsockname4", "cgroup_sock_addr", "cgroup_inet4_getsockname", ""),
    ("cgroup/getsockname6", "cgroup_sock_addr", "cgroup_inet6_getsockname", ""),
    ("cgroup/sysctl", "cgroup_sysctl", "cgroup_sysctl", ""),
    ("cgroup/getsockopt", "cgroup_sockopt", "cgroup_getsockopt", ""),
    ("cgroup/setsockopt", "cgroup_sockopt", "cgroup_setsockopt", ""),
    ("cgroup/dev", "cgroup_device", "cgroup_device", ""),
    ("struct_ops", "struct_ops", None, "+"),
    ("sk_lookup", "sk_lookup", "sk_lookup", ""),
    ("netfilter", "netfilter", "netfilter", ""),
)


def program_type(section: str) -> ProgramType | None:
    """What libbpf would make of a program in this section; None if it has no convention."""
    for pattern, prog_type, attach_type, flags in SECTION_DEFS:
        target = None
        if section == pattern:
            pass
        elif "+" in flags and section.startswith(pattern + "/"):
            target = section[len(pattern) + 1 :]
        else:
            continue
        pt = ProgramType(prog_type, attach_type, target)
        return replace(pt, sleepable="s" in flags, xdp_frags="f" in flags)
    return None
