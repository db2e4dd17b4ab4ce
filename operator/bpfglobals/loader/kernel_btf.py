"""The running kernel's BTF, read once per process.

/sys/kernel/btf/vmlinux does not change under a running agent, and a module's BTF only when the
module is reloaded (its name then names a new file, which we have not cached yet). Indexing
vmlinux costs ~0.1 s; every later load reuses the index and the types decoded so far.
"""

from __future__ import annotations

import functools
import os

from bpfglobals.elf.elf_file import read_elf
from bpfglobals.elf.kernel_btf import LazyBtf
from bpfglobals.errors import BtfError
from bpfglobals.loader.errors import LoadError

KERNEL_BTF_DIR = "/sys/kernel/btf"
VMLINUX_BTF = os.path.join(KERNEL_BTF_DIR, "vmlinux")


@functools.cache
def vmlinux_btf() -> LazyBtf:
    """The kernel's own BTF; a LoadError naming the file and the kernel option if missing."""
    return _read(VMLINUX_BTF, None)


def module_btfs() -> dict[str, LazyBtf]:
    """Module name -> its split BTF (on top of vmlinux's), for every module the kernel lists."""
    try:
        names = sorted(n for n in os.listdir(KERNEL_BTF_DIR) if n != "vmlinux")
    except OSError as e:
        raise LoadError(f"cannot list {KERNEL_BTF_DIR} ({e.strerror})") from e
    return {n: _module_btf(n) for n in names}


@functools.cache
def _module_btf(name: str) -> LazyBtf:
    return _read(os.path.join(KERNEL_BTF_DIR, name), vmlinux_btf())


@functools.cache
def custom_btf(path: str) -> LazyBtf:
    """A user-supplied target BTF (`--btf PATH`): raw BTF, or an ELF object with a .BTF section."""
    return _read(path, None)


def _read(path: str, base: LazyBtf | None) -> LazyBtf:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        hint = "; the kernel needs CONFIG_DEBUG_INFO_BTF" if path == VMLINUX_BTF else ""
        raise LoadError(f"cannot read BTF {path} ({e.strerror}){hint}") from e
    try:
        if data[:4] == b"\x7fELF":
            data = _elf_btf(data, path)
        return LazyBtf.from_bytes(data, base)
    except BtfError as e:
        raise LoadError(f"{path}: not usable as BTF: {e}") from e


def _elf_btf(data: bytes, path: str) -> bytes:
    sec = read_elf(data, path).by_name(".BTF")
    if sec is None:
        raise BtfError("an ELF file without a .BTF section")
    return sec.data
