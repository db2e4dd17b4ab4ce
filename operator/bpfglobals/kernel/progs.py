"""PROG_LOAD (with verifier log retrieval) and PROG_TEST_RUN."""

from __future__ import annotations

import errno

from bpfglobals.frozen import frozen
from bpfglobals.kernel.abi import ffi
from bpfglobals.kernel.constants import BPF_OBJ_NAME_LEN, Cmd
from bpfglobals.kernel.errors import KernelError
from bpfglobals.kernel.fd import FD
from bpfglobals.kernel.syscall import addr, bpf, buffer, new

LOG_START = 1 << 16
LOG_MAX = 1 << 26  # the kernel's own cap on log_size is (UINT_MAX >> 2)


def prog_load(
    *,
    prog_type: int,
    insns: bytes,
    license: str,
    name: str = "",
    expected_attach_type: int = 0,
    kern_version: int = 0,
    prog_flags: int = 0,
    btf_fd: FD | None = None,
    func_info: bytes = b"",
    func_info_rec_size: int = 8,
    line_info: bytes = b"",
    line_info_rec_size: int = 16,
    attach_btf_id: int = 0,
    fd_array: list[int] | None = None,
    core_relos: bytes = b"",
    core_relo_rec_size: int = 16,
    log_level: int = 1,
) -> FD:
    """Load a program. On rejection, reload with a verifier log (growing the buffer on
    ENOSPC) and raise KernelError with `.log` holding what the verifier said."""
    keep = []

    def ptr(data: bytes) -> int:
        buf, a = buffer(data)
        keep.append(buf)
        return a

    a = new("struct bpf_prog_load_attr")
    a.prog_type, a.insn_cnt, a.insns = prog_type, len(insns) // 8, ptr(insns)
    a.license = ptr(license.encode() + b"\0")
    a.kern_version, a.prog_flags = kern_version, prog_flags
    a.prog_name = name.encode()[: BPF_OBJ_NAME_LEN - 1]
    a.expected_attach_type, a.attach_btf_id = expected_attach_type, attach_btf_id
    if fd_array:  # module BTF fds of kfunc calls (insn.off indexes it; slot 0 unused)
        a.fd_array = ptr(b"".join(fd.to_bytes(4, "little", signed=True) for fd in fd_array))
    if btf_fd is not None:
        a.prog_btf_fd = btf_fd.raw
        if func_info:
            a.func_info_rec_size, a.func_info = func_info_rec_size, ptr(func_info)
            a.func_info_cnt = len(func_info) // func_info_rec_size
        if line_info:
            a.line_info_rec_size, a.line_info = line_info_rec_size, ptr(line_info)
            a.line_info_cnt = len(line_info) // line_info_rec_size
        if core_relos:  # the kernel's own CO-RE (>= 5.17) against vmlinux/module BTF
            a.core_relo_rec_size, a.core_relos = core_relo_rec_size, ptr(core_relos)
            a.core_relo_cnt = len(core_relos) // core_relo_rec_size
    subject = f"program '{name}'"
    try:
        return FD(bpf(Cmd.PROG_LOAD, a, subject))
    except KernelError as first:
        if first.errno in (errno.EPERM, errno.ENOMEM) or not log_level:
            raise
        error = first
    size = LOG_START
    while size <= LOG_MAX:
        log = ffi.new("char[]", size)
        a.log_level, a.log_size, a.log_buf = log_level, size, addr(log)
        try:
            return FD(bpf(Cmd.PROG_LOAD, a, subject))  # pragma: no cover - rejected before
        except KernelError as e:
            error = e
            text = ffi.string(log).decode(errors="replace")
            if e.errno == errno.ENOSPC and size < LOG_MAX:
                size *= 4
                continue
            e.log = text
            break
    raise error


@frozen
class RunResult:
    """What BPF_PROG_TEST_RUN returned."""

    retval: int
    duration_ns: int
    data_out: bytes
    ctx_out: bytes


def prog_test_run(
    fd: FD,
    data_in: bytes = b"",
    *,
    ctx_in: bytes = b"",
    ctx_out_size: int = 0,
    data_out_size: int | None = None,
    repeat: int = 1,
    flags: int = 0,
) -> RunResult:
    a = new("struct bpf_test_run_attr")
    keep = []
    out_size = len(data_in) + 256 if data_out_size is None else data_out_size
    out = ffi.new("char[]", max(out_size, 1))
    a.prog_fd, a.repeat, a.flags = fd.raw, repeat, flags
    if data_in:
        buf, a.data_in = buffer(data_in)
        keep.append(buf)
        a.data_size_in, a.data_out, a.data_size_out = len(data_in), addr(out), out_size
    ctx = ffi.new("char[]", max(ctx_out_size, 1))
    if ctx_in:
        buf, a.ctx_in = buffer(ctx_in)
        keep.append(buf)
        a.ctx_size_in = len(ctx_in)
    if ctx_out_size:
        a.ctx_out, a.ctx_size_out = addr(ctx), ctx_out_size
    bpf(Cmd.PROG_TEST_RUN, a, f"prog fd {fd.raw}")
    return RunResult(
        a.retval,
        a.duration,
        bytes(ffi.buffer(out, min(a.data_size_out, out_size))) if data_in else b"",
        bytes(ffi.buffer(ctx, a.ctx_size_out)) if ctx_out_size else b"",
    )
