"""What externs read from the running kernel: its config, version, features and kallsyms.

The sources libbpf reads, in its order: `/boot/config-$(uname -r)` (plain or gzip) then
`/proc/config.gz`; `LINUX_KERNEL_VERSION` from Ubuntu's `/proc/version_signature` or the
uname release; `/proc/kallsyms` for typeless ksyms.
"""

from __future__ import annotations

import functools
import os
import re

from bpfglobals.kernel.constants import BPF_FUNC_GET_ATTACH_COOKIE, prog_type_id
from bpfglobals.kernel.errors import KernelError
from bpfglobals.kernel.progs import prog_load
from bpfglobals.loader.errors import LoadError

PROC_CONFIG = "/proc/config.gz"
KALLSYMS = "/proc/kallsyms"
VERSION_SIGNATURE = "/proc/version_signature"


def config_paths() -> list[str]:
    return [f"/boot/config-{os.uname().release}", PROC_CONFIG]


def read_config_lines(paths: list[str] | None = None) -> tuple[list[str] | None, str]:
    """(lines, where they came from) or (None, why none could be read)."""
    tried = []
    for path in paths or config_paths():
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as e:
            tried.append(f"{path}: {e.strerror}")
            continue
        if raw[:2] == b"\x1f\x8b":
            import gzip  # only for a compressed config: gzip is a start-up cost of `load`

            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError) as e:
                tried.append(f"{path}: not a valid gzip file ({e})")
                continue
        return raw.decode(errors="replace").splitlines(), path
    return None, "; ".join(tried)


def kernel_version(release: str | None = None, signature: str | None = None) -> int:
    """KERNEL_VERSION(major, minor, patch) as libbpf's get_kernel_version computes it."""
    if signature is None and os.access(VERSION_SIGNATURE, os.R_OK):
        with open(VERSION_SIGNATURE) as f:
            signature = f.read()
    if signature:
        m = re.match(r"\S+\s+\S+\s+(\d+)\.(\d+)\.(\d+)", signature)
        if m:
            return _kv(*map(int, m.groups()))
    release = release if release is not None else os.uname().release
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", release)
    if m is None:
        raise LoadError(
            f"extern LINUX_KERNEL_VERSION: kernel release '{release}' is not major.minor.patch"
        )
    return _kv(*map(int, m.groups()))


def _kv(major: int, minor: int, patch: int) -> int:
    # libbpf's KERNEL_VERSION macro: the patch level saturates at 255
    return (major << 16) + (minor << 8) + min(patch, 255)


@functools.cache
def has_bpf_cookie() -> bool:
    """libbpf's probe: a kprobe program calling bpf_get_attach_cookie loads."""
    insns = bytes([0x85, 0, 0, 0]) + BPF_FUNC_GET_ATTACH_COOKIE.to_bytes(4, "little")
    insns += bytes([0x95, 0, 0, 0, 0, 0, 0, 0])
    try:
        prog_load(prog_type=prog_type_id("kprobe"), insns=insns, license="GPL", log_level=0).close()
    except KernelError:
        return False
    return True


def kallsyms(names: set[str], path: str | None = None) -> dict[str, int]:
    """Addresses of `names` in kallsyms; two different addresses for one name is an error."""
    found: dict[str, int] = {}
    path = path or KALLSYMS
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 3 or parts[2] not in names:
                continue
            addr = int(parts[0], 16)
            if found.get(parts[2], addr) != addr:
                raise LoadError(
                    f"extern (ksym) '{parts[2]}': {path} lists it at two addresses "
                    f"({found[parts[2]]:#x} and {addr:#x}); the resolution is ambiguous"
                )
            found[parts[2]] = addr
    return found


KPROBE_PMU = "/sys/bus/event_source/devices/kprobe/type"
KPROBE_EVENTS = ("/sys/kernel/tracing/kprobe_events", "/sys/kernel/debug/tracing/kprobe_events")


@functools.cache
def has_syscall_wrapper() -> bool:
    """libbpf 1.1 answers "can a kprobe be put on the arch's `__<arch>_sys_bpf`?". Without
    creating one: kprobes are available (the kprobe PMU, or tracefs kprobe_events for
    libbpf's legacy path) and the symbol is in kallsyms. A kernel built without kprobes
    answers 0, as it does for libbpf."""
    prefix = {"x86_64": "x64", "aarch64": "arm64", "s390x": "s390"}.get(os.uname().machine)
    if prefix is None:
        return False
    if not (os.path.exists(KPROBE_PMU) or any(os.path.exists(p) for p in KPROBE_EVENTS)):
        return False
    return bool(kallsyms({f"__{prefix}_sys_bpf"}))
