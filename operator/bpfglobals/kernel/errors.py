"""Kernel errors: errno from bpf(2), typed, naming the command and the object it concerned."""

from __future__ import annotations

import errno as _errno
import os

from bpfglobals.errors import BpfGlobalsError


class KernelError(BpfGlobalsError):
    """bpf(2) failed. `.errno`, `.command` (e.g. "MAP_CREATE") and `.subject` say what/where."""

    def __init__(self, err: int, command: str, subject: str = "", log: str = "") -> None:
        self.errno = err
        self.command = command
        self.subject = subject
        self.log = log  # verifier/BTF log when the kernel wrote one
        what = f" ({subject})" if subject else ""
        hint = _HINTS.get((command, err), _HINTS.get(err, ""))
        call = command if command.islower() else f"bpf({command})"  # or another syscall
        super().__init__(
            f"{call}{what}: {_errno.errorcode.get(err, err)}: {os.strerror(err)}{hint}"
        )


_HINTS: dict[object, str] = {
    ("OBJ_PIN", _errno.EPERM): " (the path must be inside a bpffs mount, without '.' in names)",
    ("OBJ_PIN", _errno.EEXIST): " (something is already pinned there)",
    ("MAP_UPDATE_ELEM", _errno.EPERM): " (the map is frozen or read-only for user space)",
    ("perf_event_open", _errno.EACCES): " (need CAP_PERFMON or root)",
    _errno.EPERM: " (need root or CAP_BPF/CAP_SYS_ADMIN; or the object is frozen/read-only)",
    _errno.ENOSYS: " (bpf(2) is not available in this kernel)",
}
