"""kubectl against a local control plane, as a function (used by the e2e tests and bench/)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from bpfglobals.devcluster import ClusterInfo

Kubectl = Callable[..., subprocess.CompletedProcess]


def kubectl_for(info: ClusterInfo) -> Kubectl:
    def run(
        *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess:
        r = subprocess.run(
            [info.kubectl, f"--kubeconfig={info.kubeconfig}", *args],
            capture_output=True,
            text=True,
            input=input,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {r.stderr}")
        return r

    return run
