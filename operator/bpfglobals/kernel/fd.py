"""File descriptors owned by objects, closed deterministically (and never fd 0)."""

from __future__ import annotations

import fcntl
import os
import warnings


class FD:
    """One owned file descriptor. bpf(2) reads fd 0 as "none" in several fields, so an fd 0
    (possible when a daemon closed stdin) is moved up with F_DUPFD_CLOEXEC, as cilium/ebpf does.
    """

    __slots__ = ("__weakref__", "_fd")

    def __init__(self, fd: int) -> None:
        if fd == 0:
            new = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 1)
            os.close(0)
            fd = new
        self._fd = fd

    @property
    def raw(self) -> int:
        if self._fd < 0:
            raise ValueError("use of a closed FD")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def dup(self) -> FD:
        return FD(fcntl.fcntl(self.raw, fcntl.F_DUPFD_CLOEXEC, 1))

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self) -> FD:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            warnings.warn(f"FD {self._fd} was not closed", ResourceWarning, stacklevel=1)
            self.close()

    def __repr__(self) -> str:
        return f"FD({self._fd})"
