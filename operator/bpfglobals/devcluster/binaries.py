"""Find the control-plane binaries tools/k8s/build.sh builds (building them if needed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bpfglobals.errors import BpfGlobalsError

REPO = Path(__file__).resolve().parents[3]
BUILD = REPO / "tools" / "k8s" / "build.sh"
BIN_ENV = "BPFGLOBALS_K8S_BIN"
NAMES = (
    "kube-apiserver",
    "kube-controller-manager",
    "kubectl",
    "etcd",
    "helm",
    "kubelet",
    "kube-scheduler",
)


class ControlPlaneError(BpfGlobalsError):
    """The local control plane could not be built, started or reached."""


def bin_dir() -> Path:
    """$BPFGLOBALS_K8S_BIN, or what build.sh prints (instant when cached)."""
    if os.environ.get(BIN_ENV):
        d = Path(os.environ[BIN_ENV])
    elif BUILD.exists():
        r = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True)
        if r.returncode != 0:
            raise ControlPlaneError(f"building the control plane failed: {r.stderr.strip()[-800:]}")
        d = Path(r.stdout.strip().splitlines()[-1])
    else:
        raise ControlPlaneError(f"no control-plane binaries: set {BIN_ENV}")
    missing = [n for n in NAMES if not (d / n).exists()]
    if missing:
        raise ControlPlaneError(f"{d}: missing {', '.join(missing)} (run tools/k8s/build.sh)")
    return d
