"""`dev-cluster up --node`: this machine as a real Kubernetes node of the local control plane.

containerd (own config, root, state and socket), a kubelet registering the machine under its
hostname, and a registry on 127.0.0.1 for images built here. Every host-side object has a name
derived from one tag, so several clusters and other users of the machine never collide:

- the CNI bridge `bpfgbr<tag>` on a free 10.213.N.0/24 (the apiserver also listens on its
  gateway address: pods on the bridge reach it there, there is no kube-proxy);
- the kubelet's cgroup root `/bpfglobals-<tag>` in every cgroup hierarchy;
- containerd's root/state, runc's state, pod network namespaces, CNI IPAM state, the kubelet's
  root and pod logs, all under the cluster's state directory (so `down` can unmount them).

`teardown` undoes all of it even when start-up failed half-way.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bpfglobals.devcluster.binaries import REPO, ControlPlaneError

CGROUP_FS = Path("/sys/fs/cgroup")
BPFFS = "/sys/fs/bpf"
SUBNETS = [f"10.213.{i}" for i in range(0, 256, 7)]
PAUSE = REPO / "tools" / "image" / "pause.sh"
SYSTEM_BINARIES = ("containerd", "containerd-shim-runc-v2", "runc", "docker-registry", "buildah")
CNI_BIN = "/usr/lib/cni"


@dataclass(frozen=True)
class NodeSpec:
    """What `up --node` created on the host, kept in cluster.json for `down`."""

    tag: str
    name: str  # the Node's name: this machine's hostname
    bridge: str
    prefix: str  # "10.213.N": the pod subnet is PREFIX.0/24, the gateway PREFIX.1
    cgroup_root: str
    registry: str  # host:port
    containerd_socket: str
    bpffs_made_shared: bool = False

    @property
    def gateway(self) -> str:
        return f"{self.prefix}.1"

    @classmethod
    def from_dict(cls, d: dict) -> NodeSpec:
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


def node_name() -> str:
    return socket.gethostname().lower().replace("_", "-")


def _sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise ControlPlaneError(f"{' '.join(cmd)}: {r.stderr.strip() or r.stdout.strip()}")
    return r


def check_host_tools() -> None:
    """The Debian packages `tools/setup.sh` installs for the node."""
    from shutil import which

    missing = [b for b in SYSTEM_BINARIES if which(b) is None]
    missing += [p for p in ("bridge", "host-local", "loopback") if not Path(CNI_BIN, p).exists()]
    if missing:
        raise ControlPlaneError(
            f"dev-cluster --node needs {', '.join(missing)}: run `make setup` (tools/setup.sh)"
        )


def free_subnet() -> str:
    used = _sh("ip", "-4", "addr").stdout + _sh("ip", "-4", "route", "show", "table", "all").stdout
    for prefix in SUBNETS:
        if prefix + "." not in used:
            return prefix
    raise ControlPlaneError("no free 10.213.N.0/24 for the pod bridge")


def new_spec(state_dir: Path, registry_port: int) -> NodeSpec:
    tag = os.urandom(3).hex()
    return NodeSpec(
        tag=tag,
        name=node_name(),
        bridge=f"bpfgbr{tag}",
        prefix=free_subnet(),
        cgroup_root=f"/bpfglobals-{tag}",
        registry=f"127.0.0.1:{registry_port}",
        containerd_socket=str(state_dir / "containerd" / "containerd.sock"),
    )


# -- host preparation ---------------------------------------------------------------------------


def _mount_propagation(path: str) -> str:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == path:
                optional = fields[6 : fields.index("-")]
                return "shared" if any(o.startswith("shared:") for o in optional) else "private"
    raise ControlPlaneError(f"{path} is not a mount point (bpffs must be mounted)")


def make_bpffs_shared() -> bool:
    """`mountPropagation: HostToContainer` needs the host's bpffs to be a shared mount (systemd
    leaves it so; this machine does not). True when we changed it."""
    if _mount_propagation(BPFFS) == "shared":
        return False
    _sh("mount", "--make-shared", BPFFS)
    return True


def create_bridge(spec: NodeSpec) -> None:
    _sh("ip", "link", "add", spec.bridge, "type", "bridge")
    _sh("ip", "addr", "add", f"{spec.gateway}/24", "dev", spec.bridge)
    _sh("ip", "link", "set", spec.bridge, "up")


def create_cgroups(spec: NodeSpec) -> None:
    """The kubelet's cgroup root must exist in every hierarchy before it starts."""
    for hierarchy in _hierarchies():
        d = hierarchy / spec.cgroup_root.lstrip("/")
        d.mkdir(exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):  # a new cpuset starts empty
            if (d / knob).exists() and not (d / knob).read_text().strip():
                (d / knob).write_text((hierarchy / knob).read_text())


def _hierarchies() -> list[Path]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f if " - cgroup" in line]
    return [Path(p) for p in points if p.startswith(str(CGROUP_FS))]


# -- configuration files ------------------------------------------------------------------------


def write_configs(state: Path, spec: NodeSpec, ports: dict[str, int]) -> None:
    """containerd's, the CNI network's, the registry's and the kubelet's configuration."""
    ctd = state / "containerd"
    (ctd / "certs.d" / spec.registry).mkdir(parents=True, exist_ok=True)
    (ctd / "certs.d" / spec.registry / "hosts.toml").write_text(
        f'server = "http://{spec.registry}"\n'
        f'[host."http://{spec.registry}"]\n  capabilities = ["pull", "resolve", "push"]\n'
    )
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    (ctd / "config.toml").write_text(
        f"""version = 2
root = "{ctd / "root"}"
state = "{ctd / "state"}"
[grpc]
  address = "{spec.containerd_socket}"
[ttrpc]
  address = "{spec.containerd_socket}.ttrpc"
[metrics]
  address = ""
[{cri}]
  sandbox_image = "{spec.registry}/pause:1"
  # this VM lacks CAP_SYS_RESOURCE: runc could not lower containers' oom_score_adj
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true  # pod netns under our state dir, not /var/run/netns
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        Root = "{state / "runc"}"
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{state / "cni" / "net.d"}"
  [{cri}.registry]
    config_path = "{ctd / "certs.d"}"
"""
    )
    net_d = state / "cni" / "net.d"
    net_d.mkdir(parents=True, exist_ok=True)
    subnet = ipaddress.ip_network(f"{spec.prefix}.0/24")
    (net_d / "10-bpfglobals.conflist").write_text(
        json.dumps(
            {
                "cniVersion": "0.4.0",
                "name": f"bpfglobals-{spec.tag}",
                "plugins": [
                    {
                        "type": "bridge",
                        "bridge": spec.bridge,
                        "isGateway": True,
                        "ipMasq": False,  # no iptables rules: pods only talk to this host
                        "ipam": {
                            "type": "host-local",
                            "ranges": [[{"subnet": str(subnet), "gateway": spec.gateway}]],
                            "dataDir": str(state / "cni" / "ipam"),
                        },
                    }
                ],
            },
            indent=2,
        )
    )
    (state / "registry.yml").write_text(
        json.dumps(
            {
                "version": 0.1,
                "log": {"level": "warn"},
                "storage": {
                    "filesystem": {"rootdirectory": str(state / "registry")},
                    "delete": {"enabled": True},
                },
                "http": {"addr": spec.registry},
            }
        )
    )
    kubelet = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "containerRuntimeEndpoint": f"unix://{spec.containerd_socket}",
        # cgroup v1 here; cgroupfs (no systemd); a cgroup root of our own
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": spec.cgroup_root,
        "failSwapOn": False,
        # loopback only: `kubectl logs/exec` reach it through the hostname, which resolves there
        "address": "127.0.0.1",
        "port": ports["kubelet"],
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": ports["kubelet_healthz"],
        "authentication": {
            "anonymous": {"enabled": True},
            "webhook": {"enabled": False},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "podLogsDir": str(state / "pod-logs"),
        "volumePluginDir": str(state / "kubelet" / "volume-plugins"),
        "makeIPTablesUtilChains": False,
        # images pushed to the local registry without credentials
        "imagePullCredentialsVerificationPolicy": "NeverVerify",
        "evictionHard": {"memory.available": "100Mi"},
        "resolvConf": "/etc/resolv.conf",
        "nodeStatusUpdateFrequency": "5s",
        "syncFrequency": "10s",
    }
    (state / "kubelet.yaml").write_text(json.dumps(kubelet, indent=2))


# -- start --------------------------------------------------------------------------------------


Spawn = Callable[[str, list[str]], int]


def start_containerd(state: Path, spec: NodeSpec, spawn: Spawn) -> int:
    pid = spawn("containerd", ["containerd", "--config", str(state / "containerd" / "config.toml")])
    _wait(
        "containerd",
        lambda: (
            _sh("ctr", "--address", spec.containerd_socket, "version", check=False).returncode == 0
        ),
        30,
        state / "containerd.log",
    )
    return pid


def start_registry(state: Path, spec: NodeSpec, spawn: Spawn) -> int:
    pid = spawn("registry", ["docker-registry", "serve", str(state / "registry.yml")])

    def up() -> bool:
        with contextlib.suppress(OSError):
            socket.create_connection(tuple_addr(spec.registry), timeout=1).close()
            return True
        return False

    _wait("registry", up, 30, state / "registry.log")
    return pid


def tuple_addr(hostport: str) -> tuple[str, int]:
    host, port = hostport.rsplit(":", 1)
    return host, int(port)


def push_pause(spec: NodeSpec) -> None:
    r = subprocess.run(["bash", str(PAUSE), spec.registry], capture_output=True, text=True)
    if r.returncode != 0:
        raise ControlPlaneError(f"building the pause image: {r.stderr.strip()[-800:]}")


def kubelet_cmd(bins: Path, state: Path, kubeconfig: str) -> list[str]:
    return [
        str(bins / "kubelet"),
        f"--config={state / 'kubelet.yaml'}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={state / 'kubelet'}",
        f"--cert-dir={state / 'kubelet' / 'pki'}",
        "--v=1",
    ]


def _wait(what: str, ok: Callable[[], bool], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
    raise ControlPlaneError(f"{what} not ready after {timeout:.0f}s:\n{tail}")


# -- teardown -----------------------------------------------------------------------------------


def _kill_cgroup_tree(spec: NodeSpec) -> None:
    """SIGKILL every process the kubelet and runc placed under our cgroup root, then remove
    the cgroups (deepest first), in every hierarchy."""
    for _ in range(50):
        alive = False
        for hierarchy in _hierarchies():
            root = hierarchy / spec.cgroup_root.lstrip("/")
            if not root.exists():
                continue
            for procs in root.rglob("cgroup.procs"):
                with contextlib.suppress(OSError):
                    for pid in procs.read_text().split():
                        alive = True
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)
        if not alive:
            break
        time.sleep(0.1)
    for hierarchy in _hierarchies():
        root = hierarchy / spec.cgroup_root.lstrip("/")
        if root.exists():
            for d in sorted(
                (p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
            ):
                with contextlib.suppress(OSError):
                    d.rmdir()
            with contextlib.suppress(OSError):
                root.rmdir()


def _kill_shims(spec: NodeSpec) -> None:
    """containerd's shims run in their own process groups: find ours by the socket they serve."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            if b"containerd-shim" in cmd[0] and spec.containerd_socket.encode() in cmd:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), signal.SIGKILL)


def _unmount_under(state: Path) -> None:
    """Pod rootfs overlays, shm, volumes and network namespaces mounted under the state dir."""
    prefix = str(state) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted({p for p in points if p.startswith(prefix)}, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def teardown(state: Path, spec: NodeSpec) -> None:
    """After the kubelet and containerd were stopped: containers, mounts, cgroups, bridge."""
    _kill_cgroup_tree(spec)
    _kill_shims(spec)
    _unmount_under(state)
    _kill_cgroup_tree(spec)
    # The pods' veths go with their namespaces, but later (the kernel cleans up a namespace
    # from a workqueue): delete the host ends now, so nothing of ours is left when we return.
    ports = [p.name for p in Path(f"/sys/class/net/{spec.bridge}/brif").glob("*")]
    subprocess.run(["ip", "link", "del", spec.bridge], capture_output=True)
    for port in ports:
        subprocess.run(["ip", "link", "del", port], capture_output=True)
    # Another dev-cluster node still running needs bpffs shared: leave it so then.
    others = [h for h in _hierarchies() if any(h.glob("bpfglobals-*"))]
    if spec.bpffs_made_shared and not others:
        subprocess.run(["mount", "--make-private", BPFFS], capture_output=True)
