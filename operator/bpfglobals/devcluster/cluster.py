"""A local control plane: etcd + kube-apiserver (+ kube-controller-manager), on loopback only;
with `node=True` this machine also joins as a real node (see devcluster/node.py).

Everything lives in one state directory: certificates, etcd data, logs, a kubeconfig, pid
files and `cluster.json`. `up` is idempotent (a healthy running cluster is reused, a stale one
is cleaned up first); `down` stops every process group and removes the directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from bpfglobals.devcluster import node as nodes
from bpfglobals.devcluster import pki
from bpfglobals.devcluster.binaries import REPO, ControlPlaneError, bin_dir

DEFAULT_STATE = "/var/run/bpfglobals-devcluster"
STATE_ENV = "BPFGLOBALS_DEVCLUSTER_DIR"
LOOPBACK = "127.0.0.1"


@dataclass
class ClusterInfo:
    state_dir: str
    kubeconfig: str
    server: str
    bin_dir: str
    pids: dict[str, int]
    node: dict | None = None  # a NodeSpec, with `up --node`

    @property
    def registry(self) -> str | None:
        """host:port of the local registry (`up --node`)."""
        return self.node["registry"] if self.node else None

    @property
    def kubectl(self) -> str:
        return os.path.join(self.bin_dir, "kubectl")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class DevCluster:
    def __init__(self, state_dir: str | None = None) -> None:
        self.dir = Path(state_dir or os.environ.get(STATE_ENV, DEFAULT_STATE)).absolute()

    @property
    def info_file(self) -> Path:
        return self.dir / "cluster.json"

    def info(self) -> ClusterInfo | None:
        if not self.info_file.exists():
            return None
        return ClusterInfo(**json.loads(self.info_file.read_text()))

    # -- lifecycle ------------------------------------------------------------------------------

    def up(
        self,
        *,
        controller_manager: bool = False,
        node: bool = False,
        crds: Path | None = None,
        timeout: float = 120,
    ) -> ClusterInfo:
        controller_manager = controller_manager or node
        current = self.info()
        if (
            current is not None
            and all(_alive(p) for p in current.pids.values())
            and self._ready(current)
            and (not controller_manager or "kcm" in current.pids)
            and (not node or "kubelet" in current.pids)
        ):
            return current
        self.down()
        bins = bin_dir()
        if node:
            nodes.check_host_tools()
        self.dir.mkdir(parents=True, exist_ok=True)
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        spec = nodes.new_spec(self.dir, free_port()) if node else None
        # With a node, pods on its bridge reach the apiserver at the bridge's gateway address.
        address = spec.gateway if spec else LOOPBACK
        server = f"https://{address}:{api_port}"
        info = ClusterInfo(str(self.dir), str(self.dir / "kubeconfig"), server, str(bins), {})
        try:
            if spec is not None:
                info.node = spec.to_dict()
                self._save(info)  # from here on, `down` knows what to clean up
                nodes.create_bridge(spec)
            pki.generate(self.dir / "pki", extra_ips=[address])
            self._write_kubeconfig(info)
            info.pids["etcd"] = self._spawn(
                "etcd",
                [
                    str(bins / "etcd"),
                    "--name",
                    "default",
                    "--data-dir",
                    str(self.dir / "etcd"),
                    "--listen-client-urls",
                    f"http://{LOOPBACK}:{etcd_port}",
                    "--advertise-client-urls",
                    f"http://{LOOPBACK}:{etcd_port}",
                    "--listen-peer-urls",
                    f"http://{LOOPBACK}:{peer_port}",
                    "--initial-advertise-peer-urls",
                    f"http://{LOOPBACK}:{peer_port}",
                    "--initial-cluster",
                    f"default=http://{LOOPBACK}:{peer_port}",
                    "--unsafe-no-fsync",
                    "--log-level",
                    "warn",
                ],
            )
            p = self.dir / "pki"
            info.pids["apiserver"] = self._spawn(
                "kube-apiserver",
                [
                    str(bins / "kube-apiserver"),
                    f"--etcd-servers=http://{LOOPBACK}:{etcd_port}",
                    f"--bind-address={address}",
                    f"--advertise-address={address}",
                    f"--secure-port={api_port}",
                    f"--tls-cert-file={p / 'apiserver.crt'}",
                    f"--tls-private-key-file={p / 'apiserver.key'}",
                    f"--client-ca-file={p / 'ca.crt'}",
                    "--service-account-issuer=https://kubernetes.default.svc",
                    f"--service-account-key-file={p / 'sa.pub'}",
                    f"--service-account-signing-key-file={p / 'sa.key'}",
                    "--authorization-mode=RBAC",
                    # pods (with a node) get their service account tokens mounted
                    *([] if node else ["--disable-admission-plugins=ServiceAccount"]),
                    # no kube-proxy here: the apiserver calls webhook Services (the chart's
                    # admission webhook) at their endpoints' pod IPs, not the ClusterIP
                    *(["--enable-aggregator-routing=true"] if node else []),
                    "--service-cluster-ip-range=10.0.0.0/24",
                    "--allow-privileged=true",
                    "--enable-priority-and-fairness=false",
                ],
            )
            self._save(info)
            self._wait_ready(info, timeout)
            if controller_manager:
                info.pids["kcm"] = self._spawn(
                    "kube-controller-manager",
                    [
                        str(bins / "kube-controller-manager"),
                        f"--kubeconfig={info.kubeconfig}",
                        "--leader-elect=false",
                        f"--bind-address={LOOPBACK}",
                        f"--secure-port={free_port()}",
                        f"--controllers={','.join(NODE_CONTROLLERS if node else CONTROLLERS)}",
                        f"--service-account-private-key-file={p / 'sa.key'}",
                        f"--root-ca-file={p / 'ca.crt'}",
                    ],
                )
                self._save(info)
            if spec is not None:
                self._up_node(info, spec, bins, timeout)
            self.install_crds(info, crds if crds is not None else REPO / "crds")
        except BaseException:
            self.down()
            raise
        return info

    def _up_node(self, info: ClusterInfo, spec: nodes.NodeSpec, bins: Path, timeout: float):
        """containerd, registry, pause image, scheduler and kubelet; until the Node is Ready."""
        spec = dataclasses.replace(spec, bpffs_made_shared=nodes.make_bpffs_shared())
        info.node = spec.to_dict()
        self._save(info)
        nodes.create_cgroups(spec)
        nodes.write_configs(
            self.dir,
            spec,
            {
                "kubelet": free_port(),
                "kubelet_healthz": free_port(),
            },
        )
        info.pids["registry"] = nodes.start_registry(self.dir, spec, self._spawn)
        self._save(info)
        info.pids["containerd"] = nodes.start_containerd(self.dir, spec, self._spawn)
        self._save(info)
        nodes.push_pause(spec)
        info.pids["scheduler"] = self._spawn(
            "kube-scheduler",
            [
                str(bins / "kube-scheduler"),
                f"--kubeconfig={info.kubeconfig}",
                f"--authentication-kubeconfig={info.kubeconfig}",
                f"--authorization-kubeconfig={info.kubeconfig}",
                "--leader-elect=false",
                f"--bind-address={LOOPBACK}",
                f"--secure-port={free_port()}",
            ],
        )
        self._save(info)
        info.pids["kubelet"] = self.start_kubelet(info)
        self.wait_node_ready(info, timeout)

    def start_kubelet(self, info: ClusterInfo) -> int:
        """(Re)start the node's kubelet: its pods keep running while it is away."""
        pid = self._spawn(
            "kubelet", nodes.kubelet_cmd(Path(info.bin_dir), self.dir, info.kubeconfig)
        )
        info.pids["kubelet"] = pid
        self._save(info)
        return pid

    def stop_process(self, info: ClusterInfo, name: str) -> None:
        pid = info.pids.pop(name, None)
        if pid:
            _stop(pid)
        self._save(info)

    def wait_node_ready(self, info: ClusterInfo, timeout: float) -> None:
        name = info.node["name"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in ("kubelet", "containerd"):
                _reap(info.pids[proc])
                if not _alive(info.pids[proc]):
                    log = self.dir / f"{proc}.log"
                    raise ControlPlaneError(
                        f"{proc} exited during start-up:\n{log.read_text(errors='replace')[-2000:]}"
                    )
            r = self.kubectl(info, "get", "node", name, "-o", "json")
            if r.returncode == 0:
                conds = json.loads(r.stdout)["status"].get("conditions") or []
                if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
                    return
            time.sleep(0.5)
        raise ControlPlaneError(f"node {name} not Ready after {timeout:.0f}s (see {self.dir})")

    def down(self) -> None:
        info = self.info()
        pids = info.pids if info else {}
        # The kubelet first (it would restart containers), the runtime, then the control plane.
        for name in ("kubelet", "scheduler", "kcm", "containerd"):
            if pids.get(name):
                _stop(pids[name])
        if info is not None and info.node:
            nodes.teardown(self.dir, nodes.NodeSpec.from_dict(info.node))
        for name in ("registry", "apiserver", "etcd"):
            if pids.get(name):
                # the apiserver's graceful shutdown waits ~15 s for watchers; it holds no state
                _stop(pids[name], grace=3 if name == "apiserver" else 15)
        if self.dir.exists():
            subprocess.run(["rm", "-rf", str(self.dir)], check=False)

    def env(self) -> str:
        info = self.info()
        if info is None:
            raise ControlPlaneError(
                f"no dev cluster in {self.dir}: run `bpfglobals dev-cluster up`"
            )
        out = f"export KUBECONFIG={info.kubeconfig}\nexport PATH={info.bin_dir}:$PATH\n"
        if info.registry:
            out += f"export BPFGLOBALS_REGISTRY={info.registry}\n"
        return out

    # -- helpers --------------------------------------------------------------------------------

    def _spawn(self, name: str, cmd: list[str]) -> int:
        log = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        try:
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        return proc.pid

    def _save(self, info: ClusterInfo) -> None:
        tmp = self.info_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(info), indent=2))
        tmp.replace(self.info_file)

    def _write_kubeconfig(self, info: ClusterInfo) -> None:
        p = self.dir / "pki"
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "bpfglobals-dev",
            "clusters": [
                {
                    "name": "bpfglobals-dev",
                    "cluster": {"server": info.server, "certificate-authority": str(p / "ca.crt")},
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate": str(p / "admin.crt"),
                        "client-key": str(p / "admin.key"),
                    },
                }
            ],
            "contexts": [
                {
                    "name": "bpfglobals-dev",
                    "context": {"cluster": "bpfglobals-dev", "user": "admin"},
                }
            ],
        }
        Path(info.kubeconfig).write_text(json.dumps(cfg, indent=2))

    def _ssl(self, info: ClusterInfo) -> ssl.SSLContext:
        p = Path(info.state_dir) / "pki"
        ctx = ssl.create_default_context(cafile=str(p / "ca.crt"))
        ctx.load_cert_chain(str(p / "admin.crt"), str(p / "admin.key"))
        return ctx

    def _ready(self, info: ClusterInfo) -> bool:
        try:
            with urllib.request.urlopen(
                f"{info.server}/readyz", context=self._ssl(info), timeout=2
            ) as r:
                return r.status == 200
        except (OSError, ssl.SSLError):
            return False

    def _wait_ready(self, info: ClusterInfo, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, pid in info.pids.items():
                _reap(pid)
                if not _alive(pid):
                    log = self.dir / f"{'kube-' + name if name == 'apiserver' else name}.log"
                    tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
                    raise ControlPlaneError(f"{name} exited during start-up:\n{tail}")
            if self._ready(info):
                return
            time.sleep(0.2)
        raise ControlPlaneError(
            f"kube-apiserver not ready after {timeout:.0f}s (logs in {self.dir})"
        )

    def kubectl(
        self, info: ClusterInfo, *args: str, input: str | None = None
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [info.kubectl, f"--kubeconfig={info.kubeconfig}", *args],
            capture_output=True,
            text=True,
            input=input,
        )

    def install_crds(self, info: ClusterInfo, crds: Path) -> list[str]:
        files = sorted(crds.glob("*.yaml")) if crds.is_dir() else []
        if not files:
            return []
        r = self.kubectl(info, "apply", "--server-side", *[f"-f={f}" for f in files])
        if r.returncode != 0:
            raise ControlPlaneError(f"installing CRDs from {crds}: {r.stderr.strip()}")
        names = [line.split()[0] for line in r.stdout.splitlines() if line.strip()]
        r = self.kubectl(info, "wait", "--for=condition=Established", "--timeout=60s", *names)
        if r.returncode != 0:
            raise ControlPlaneError(f"CRDs not established: {r.stderr.strip()}")
        return names


CONTROLLERS = ("garbage-collector-controller", "namespace-controller")
# What DaemonSets and Deployments need on a real node, and pods' service-account CA bundle.
NODE_CONTROLLERS = (
    *CONTROLLERS,
    "daemonset-controller",
    "deployment-controller",
    "replicaset-controller",
    "node-lifecycle-controller",
    "pod-garbage-collector-controller",
    "root-ca-certificate-publisher-controller",
    "serviceaccount-controller",
    # the webhook Service's endpoints (slices), for the apiserver to call (see above)
    "endpoints-controller",
    "endpointslice-controller",
)


def _stop(pid: int, grace: float = 15) -> None:
    """SIGTERM a process group, SIGKILL it after `grace` seconds."""
    if not _alive(pid):
        _reap(pid)
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        _reap(pid, block=True)


def _reap(pid: int, block: bool = False) -> None:
    """Collect our own exited children so they do not linger as zombies."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0 if block else os.WNOHANG)
