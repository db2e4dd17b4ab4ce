"""A throw-away local control plane for a benchmark: etcd + kube-apiserver (with the CRDs from
crds/) in a temp dir, torn down and removed however the benchmark ends (a plain kill too)."""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bpfglobals.devcluster import ClusterInfo, DevCluster


@contextmanager
def local_cluster(prefix: str) -> Iterator[tuple[ClusterInfo, Path]]:
    """(the cluster, a temp dir for the benchmark's own files)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on a plain kill too
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    cluster = DevCluster(str(tmp / "cluster"))
    try:
        yield cluster.up(), tmp
    finally:
        cluster.down()
        shutil.rmtree(tmp, ignore_errors=True)
