"""bpffs: mount it when missing (these machines boot without it) and make pin directories."""

from __future__ import annotations

import os
import re

from bpfglobals.errors import BpfGlobalsError

DEFAULT_ROOT = "/sys/fs/bpf"


def is_bpffs(path: str) -> bool:
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path and line.split()[2] == "bpf" for line in f)


def mount(fstype: str, path: str) -> int:
    """mount -t FSTYPE FSTYPE PATH; 0, or the errno it failed with."""
    import ctypes  # only when bpffs is missing: ctypes is a start-up cost of every command

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(fstype.encode(), path.encode(), fstype.encode(), 0, None) != 0:
        return ctypes.get_errno()
    return 0


def ensure_bpffs(path: str = DEFAULT_ROOT) -> None:
    if is_bpffs(path):
        return
    os.makedirs(path, exist_ok=True)
    err = mount("bpf", path)
    if err:
        raise BpfGlobalsError(
            f"bpffs is not mounted at {path} and mounting it failed: {os.strerror(err)} "
            "(run as root, or `mount -t bpf bpf /sys/fs/bpf`)"
        )


def under_bpffs(path: str) -> bool:
    """Whether `path` lies inside a mounted bpffs (pins elsewhere fail with EPERM)."""
    real = os.path.realpath(path)
    with open("/proc/mounts") as f:
        mounts = [line.split()[1] for line in f if line.split()[2] == "bpf"]
    return any(real == m or real.startswith(m.rstrip("/") + "/") for m in mounts)


def pin_name(name: str) -> str:
    """A name bpffs accepts: it refuses '.' (libbpf's sanitize_pin_path turns it into '_');
    anything outside [A-Za-z0-9_-] is replaced too, so a name never makes a sub-directory."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)
