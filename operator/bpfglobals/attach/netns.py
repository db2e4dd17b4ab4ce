"""Enter another network namespace for the current thread (as bpfman does for container
interfaces): interface names resolve, and XDP/tcx links attach, in the namespace the thread
is in when it calls bpf(2)."""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator

from bpfglobals.attach.targets import AttachError

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int, what: str) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise AttachError(f"entering network namespace {what}: {os.strerror(err)}")


@contextlib.contextmanager
def in_netns(path: str | None) -> Iterator[None]:
    """Run the body in the network namespace at `path` (e.g. /run/netns/NAME); None: here."""
    if not path:
        yield
        return
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise AttachError(f"network namespace {path}: {e.strerror}") from None
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target, path)
        try:
            yield
        finally:
            _setns(own, "of this process (restoring)")
    finally:
        os.close(target)
        os.close(own)
