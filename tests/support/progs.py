"""Compile the BPF C fixtures under tests/progs and examples/ with clang (never checked in)."""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROGS = ROOT / "tests" / "progs"
EXAMPLES = ROOT / "examples"

_MULTIARCH = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}


def clang_flags() -> list[str]:
    """Flags libbpf users pass: -O2 -g -target bpf, plus the multiarch include dir for asm/."""
    arch = _MULTIARCH.get(platform.machine(), f"{platform.machine()}-linux-gnu")
    return ["-O2", "-g", "-target", "bpf", f"-I/usr/include/{arch}", f"-I{PROGS}"]


def compile_bpf(source: Path, out_dir: Path, extra: list[str] | None = None) -> Path:
    clang = shutil.which("clang")
    if clang is None:
        raise RuntimeError("clang is not installed: run `make setup`")
    out = out_dir / (source.name.removesuffix(".c") + ".o")
    cmd = [clang, *clang_flags(), *(extra or []), "-c", str(source), "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


def corpus_flags(vmlinux_dir: Path) -> list[str]:
    """clang flags tests/progs/corpus programs are built with: vmlinux.h (the `vmlinux_h`
    fixture's directory) and the target arch for bpf_tracing.h."""
    arch = {"x86_64": "x86", "aarch64": "arm64"}[platform.machine()]
    return [f"-I{vmlinux_dir}", f"-D__TARGET_ARCH_{arch}"]
