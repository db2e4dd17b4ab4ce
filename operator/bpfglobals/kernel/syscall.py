"""The one chokepoint through which every bpf(2) call passes.

Having one place lets tests inject failures into any command (to prove that upper layers
clean up after a failure at any phase) and keeps errno handling uniform.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator

from bpfglobals.kernel.abi import SYS_BPF, ffi, libc
from bpfglobals.kernel.constants import Cmd
from bpfglobals.kernel.errors import KernelError


class _Fault:
    """A failure to inject (a plain class: `dataclasses` costs start-up, see bpfglobals.frozen)."""

    def __init__(self, command: Cmd, err: int, after: int, remaining: int) -> None:
        self.command = command
        self.errno = err
        self.after = after  # let this many calls of `command` succeed first
        self.remaining = remaining  # how many calls fail once triggered


_faults: list[_Fault] = []


@contextlib.contextmanager
def inject_fault(
    command: Cmd, err: int = errno.ENOMEM, after: int = 0, times: int = 1
) -> Iterator[None]:
    """Make the next call(s) of `command` fail with `err` (tests only)."""
    fault = _Fault(command, err, after, times)
    _faults.append(fault)
    try:
        yield
    finally:
        _faults.remove(fault)


def _injected(cmd: Cmd) -> int:
    for f in _faults:
        if f.command == cmd and f.remaining > 0:
            if f.after > 0:
                f.after -= 1
                return 0
            f.remaining -= 1
            return f.errno
    return 0


def bpf(cmd: Cmd, attr: object, subject: str = "") -> int:
    """Call bpf(cmd, attr, sizeof(attr)); return the result or raise KernelError.

    EINTR and EAGAIN are retried (the verifier can return EAGAIN under signal pressure,
    which libbpf retries too).
    """
    err = _injected(cmd)
    if err:
        raise KernelError(err, cmd.name, subject)
    size = ffi.sizeof(attr[0]) if ffi.typeof(attr).kind == "pointer" else ffi.sizeof(attr)
    for _ in range(5):
        ret = libc.syscall(SYS_BPF, ffi.cast("int", int(cmd)), attr, ffi.cast("unsigned int", size))
        if ret >= 0:
            return int(ret)
        err = ffi.errno
        if err not in (errno.EINTR, errno.EAGAIN):
            break
    raise KernelError(err, cmd.name, subject)


def new(ctype: str) -> object:
    """A zeroed attribute struct (cffi zero-fills), so unused fields are 0 as bpf(2) requires."""
    return ffi.new(f"{ctype} *")


def buffer(data: bytes) -> tuple[object, int]:
    """A C copy of `data` kept alive by the caller, and its address for a u64 field."""
    buf = ffi.new("char[]", data or b"\0")
    return buf, int(ffi.cast("uintptr_t", buf))


def addr(cdata: object) -> int:
    return int(ffi.cast("uintptr_t", cdata))
