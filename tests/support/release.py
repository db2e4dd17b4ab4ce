"""The source tree of an earlier commit, for tests and benchmarks that run an old release."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def source_tree(commit: str, into: Path) -> Path:
    """`operator/` of `commit`, extracted below `into` (its PYTHONPATH)."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into / "src.tar"
    subprocess.run(
        ["git", "-C", str(ROOT), "archive", "-o", str(archive), commit, "operator"], check=True
    )
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "operator"
