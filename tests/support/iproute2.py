"""iproute2's own legacy loader as an oracle (an `ip` built without libbpf).

Debian's `ip` and bpftool both use libbpf 1.x, which refuses SEC("maps") definitions; the
legacy loader is what those objects were written for. tools/iproute2-legacy/build.sh builds it
(`make setup` runs it); a missing binary fails the tests that need it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tools" / "iproute2-legacy" / "build.sh"


def legacy_ip() -> str:
    run = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True)
    path = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0 and os.access(path, os.X_OK), (
        f"iproute2's legacy loader could not be built ({BUILD}):\n{run.stderr[-2000:]}"
    )
    return path
