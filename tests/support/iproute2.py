"""iproute2's own legacy loader as an oracle (an `ip` built without libbpf).

Debian's `ip` and bpftool both use libbpf 1.x, which refuses SEC("maps") definitions; the
legacy loader is what those objects were written for. tools/iproute2-legacy/build.sh builds it
(`make setup` runs it); a missing binary fails the tests that need it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from bpfglobals.loader.maps import GLOBAL_PIN_DIR

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tools" / "iproute2-legacy" / "build.sh"


def legacy_ip() -> str:
    run = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True)
    path = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0 and os.access(path, os.X_OK), (
        f"iproute2's legacy loader could not be built ({BUILD}):\n{run.stderr[-2000:]}"
    )
    return path


@contextlib.contextmanager
def iproute2_tree_removed_if_new() -> Iterator[None]:
    """iproute2 (and our PIN_GLOBAL_NS pins) make bpffs/tc/globals and the ip/xdp symlinks
    to it; remove them afterwards when they were not there before and are empty."""
    tc = os.path.dirname(GLOBAL_PIN_DIR)
    bpffs = os.path.dirname(tc)
    existed = os.path.lexists(tc)
    try:
        yield
    finally:
        if not existed:
            for link in ("ip", "xdp"):
                path = os.path.join(bpffs, link)
                if os.path.islink(path) and os.path.realpath(path) == os.path.realpath(tc):
                    os.unlink(path)
            for d in (GLOBAL_PIN_DIR, tc):
                with contextlib.suppress(OSError):  # not empty: someone else uses it now
                    os.rmdir(d)


@contextlib.contextmanager
def global_pins_removed() -> Iterator[None]:
    """PIN_GLOBAL_NS maps pinned inside the block (by iproute2 or by our loader) unpinned after
    it, and the tc/globals tree removed when the block made it."""

    def pins() -> set[str]:
        return set(os.listdir(GLOBAL_PIN_DIR)) if os.path.isdir(GLOBAL_PIN_DIR) else set()

    with iproute2_tree_removed_if_new():
        before = pins()
        try:
            yield
        finally:
            for name in pins() - before:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(GLOBAL_PIN_DIR, name))
