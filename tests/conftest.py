"""Session-wide fixtures: BPF objects compiled from the C sources in tests/progs/."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.progs import EXAMPLES, PROGS, compile_bpf


@pytest.fixture(scope="session")
def bpf_object(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`bpf_object("globals")` compiles tests/progs/globals.bpf.c once per session.

    A name with a slash is taken relative to the repository (e.g. "examples/xdp_drop.bpf.c").
    """
    out_dir = tmp_path_factory.mktemp("bpfobj")
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            src = EXAMPLES.parent / name if "/" in name else PROGS / f"{name}.bpf.c"
            cache[name] = compile_bpf(src, out_dir)
        return cache[name]

    return get


__all__ = ["EXAMPLES", "PROGS"]
