"""BTF_LOAD: hand a BTF blob to the kernel (with its log on failure)."""

from __future__ import annotations

import errno

from bpfglobals.kernel.abi import ffi
from bpfglobals.kernel.constants import Cmd
from bpfglobals.kernel.errors import KernelError
from bpfglobals.kernel.fd import FD
from bpfglobals.kernel.syscall import addr, bpf, buffer, new

LOG_SIZE = 1 << 20


def btf_load(blob: bytes, subject: str = "BTF") -> FD:
    data, data_addr = buffer(blob)
    a = new("struct bpf_btf_load_attr")
    a.btf, a.btf_size = data_addr, len(blob)
    try:
        return FD(bpf(Cmd.BTF_LOAD, a, subject))
    except KernelError as first:
        if first.errno in (errno.EPERM, errno.ENOMEM):
            raise
        log = ffi.new("char[]", LOG_SIZE)
        a.btf_log_buf, a.btf_log_size, a.btf_log_level = addr(log), LOG_SIZE, 1
        try:
            return FD(bpf(Cmd.BTF_LOAD, a, subject))  # pragma: no cover - flaky kernel
        except KernelError as e:
            e.log = ffi.string(log).decode(errors="replace")
            raise
    finally:
        del data
