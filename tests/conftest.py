"""Session-wide fixtures: BPF objects compiled from the C sources in tests/progs/."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
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


@pytest.fixture(scope="session", autouse=True)
def parsed_object_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every `bpfglobals load` the tests run caches its parse in the session's temporary
    directory (elf/object_cache.py), not in /var/cache/bpfglobals: tests leave no host state."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    yield cache
    if before is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = before


__all__ = ["EXAMPLES", "PROGS"]
