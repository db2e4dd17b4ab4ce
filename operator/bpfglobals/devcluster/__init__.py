"""A local kube-apiserver + etcd (built from the Go module proxy) for tests and the demo."""

from bpfglobals.devcluster.binaries import ControlPlaneError, bin_dir
from bpfglobals.devcluster.cluster import ClusterInfo, DevCluster

__all__ = ["ClusterInfo", "ControlPlaneError", "DevCluster", "bin_dir"]
