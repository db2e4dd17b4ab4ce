"""The layer rules of pyproject.toml ([tool.importlinter]) hold for the whole package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is not installed in the test environment"
    result = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout  # the summary line: "Contracts: N kept, 0 broken."
    assert " 0 broken" in result.stdout


def test_ruff_is_clean() -> None:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent))
    assert exe, "ruff is not installed in the test environment"
    # Only the trees that exist in this checkout (git does not keep empty directories).
    trees = [d for d in ("operator", "tests", "bench") if (ROOT / d).is_dir()]
    result = subprocess.run([exe, "check", *trees], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
