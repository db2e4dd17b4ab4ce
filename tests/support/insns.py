"""A tiny BPF assembler for syscall-layer tests (raw instructions, no clang)."""

from __future__ import annotations

import struct


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def mov64_imm(dst: int, imm: int) -> bytes:
    return insn(0xB7, dst, imm=imm)


def exit_() -> bytes:
    return insn(0x95)


def ld_map_value(dst: int, map_fd: int, offset: int) -> bytes:
    """ldimm64 dst = &map_value[offset] (BPF_PSEUDO_MAP_VALUE)."""
    return insn(0x18, dst, 2, imm=map_fd) + insn(0, imm=offset)


def ldx_w(dst: int, src: int, off: int = 0) -> bytes:
    return insn(0x61, dst, src, off)


def return_const(n: int) -> bytes:
    return mov64_imm(0, n) + exit_()
