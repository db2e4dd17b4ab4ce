"""Kernel errors: errno from bpf(2), typed, naming the command and the object it concerned."""

from __future__ import annotations

import errno as _errno
import os

from bpfglobals.errors import BpfGlobalsError

# Codes from the kernel's include/linux/errno.h: internal to the kernel, yet bpf(2) lets some
# of them reach user space (libc knows no name for them: strerror says "Unknown error 524").
KERNEL_INTERNAL_ERRNOS: dict[int, tuple[str, str]] = {
    512: ("ERESTARTSYS", "interrupted by a signal; retry"),
    513: ("ERESTARTNOINTR", "interrupted by a signal; retry"),
    514: ("ERESTARTNOHAND", "interrupted by a signal; retry"),
    515: ("ENOIOCTLCMD", "no such ioctl command"),
    516: ("ERESTART_RESTARTBLOCK", "interrupted by a signal; retry"),
    517: ("EPROBE_DEFER", "a driver needs another one to probe first"),
    518: ("EOPENSTALE", "stale open"),
    519: ("ENOPARAM", "parameter not supported"),
    521: ("EBADHANDLE", "illegal NFS file handle"),
    522: ("ENOTSYNC", "update synchronisation mismatch"),
    523: ("EBADCOOKIE", "cookie is stale"),
    524: (
        "ENOTSUPP",
        "operation not supported by this kernel for this object; from MAP_CREATE it usually "
        "means the map type takes no BTF key/value types, or the kernel lacks the feature",
    ),
    525: ("ETOOSMALL", "buffer or request too small"),
    526: ("ESERVERFAULT", "server fault"),
    527: ("EBADTYPE", "type not supported by the server"),
    528: ("EJUKEBOX", "request initiated, wait and retry"),
    529: ("EIOCBQUEUED", "I/O queued"),
    530: ("ERECALLCONFLICT", "conflict with a recalled state"),
    531: ("ENOGRACE", "NFS file lock reclaim refused"),
}


def errno_name(err: int) -> str:
    """ "ENOENT", "ENOTSUPP", ... or the number when nobody names it."""
    if err in _errno.errorcode:
        return _errno.errorcode[err]
    internal = KERNEL_INTERNAL_ERRNOS.get(err)
    return internal[0] if internal else str(err)


def describe_errno(err: int) -> str:
    """libc's strerror, or what a kernel-internal code means (libc has no text for those)."""
    internal = KERNEL_INTERNAL_ERRNOS.get(err)
    if internal is not None and err not in _errno.errorcode:
        return f"kernel-internal error {err}: {internal[1]}"
    return os.strerror(err)


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
        super().__init__(f"{call}{what}: {errno_name(err)}: {describe_errno(err)}{hint}")


_HINTS: dict[object, str] = {
    ("OBJ_PIN", _errno.EPERM): " (the path must be inside a bpffs mount, without '.' in names)",
    ("OBJ_PIN", _errno.EEXIST): " (something is already pinned there)",
    ("MAP_UPDATE_ELEM", _errno.EPERM): " (the map is frozen or read-only for user space)",
    ("perf_event_open", _errno.EACCES): " (need CAP_PERFMON or root)",
    _errno.EPERM: " (need root or CAP_BPF/CAP_SYS_ADMIN; or the object is frozen/read-only)",
    _errno.ENOSYS: " (bpf(2) is not available in this kernel)",
}
