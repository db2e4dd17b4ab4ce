"""A local control plane: etcd + kube-apiserver (+ kube-controller-manager), on loopback only.

Everything lives in one state directory: certificates, etcd data, logs, a kubeconfig, pid
files and `cluster.json`. `up` is idempotent (a healthy running cluster is reused, a stale one
is cleaned up first); `down` stops every process group and removes the directory.
"""

from __future__ import annotations

import contextlib
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
        self, *, controller_manager: bool = False, crds: Path | None = None, timeout: float = 120
    ) -> ClusterInfo:
        current = self.info()
        if (
            current is not None
            and all(_alive(p) for p in current.pids.values())
            and self._ready(current)
            and (not controller_manager or "kcm" in current.pids)
        ):
            return current
        self.down()
        bins = bin_dir()
        self.dir.mkdir(parents=True, exist_ok=True)
        pki.generate(self.dir / "pki")
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        server = f"https://{LOOPBACK}:{api_port}"
        info = ClusterInfo(str(self.dir), str(self.dir / "kubeconfig"), server, str(bins), {})
        self._write_kubeconfig(info)
        try:
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
                    f"--bind-address={LOOPBACK}",
                    f"--advertise-address={LOOPBACK}",
                    f"--secure-port={api_port}",
                    f"--tls-cert-file={p / 'apiserver.crt'}",
                    f"--tls-private-key-file={p / 'apiserver.key'}",
                    f"--client-ca-file={p / 'ca.crt'}",
                    "--service-account-issuer=https://kubernetes.default.svc",
                    f"--service-account-key-file={p / 'sa.pub'}",
                    f"--service-account-signing-key-file={p / 'sa.key'}",
                    "--authorization-mode=RBAC",
                    "--disable-admission-plugins=ServiceAccount",
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
                        "--controllers=garbage-collector-controller,namespace-controller",
                        f"--service-account-private-key-file={p / 'sa.key'}",
                        f"--root-ca-file={p / 'ca.crt'}",
                    ],
                )
                self._save(info)
            self.install_crds(info, crds if crds is not None else REPO / "crds")
        except BaseException:
            self.down()
            raise
        return info

    def down(self) -> None:
        info = self.info()
        pids = info.pids if info else {}
        for name in ("kcm", "apiserver", "etcd"):
            pid = pids.get(name)
            if pid and _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGTERM)
                deadline = time.monotonic() + 15
                while _alive(pid) and time.monotonic() < deadline:
                    _reap(pid)
                    time.sleep(0.05)
                if _alive(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
                    _reap(pid, block=True)
        if self.dir.exists():
            subprocess.run(["rm", "-rf", str(self.dir)], check=False)

    def env(self) -> str:
        info = self.info()
        if info is None:
            raise ControlPlaneError(
                f"no dev cluster in {self.dir}: run `bpfglobals dev-cluster up`"
            )
        return f"export KUBECONFIG={info.kubeconfig}\nexport PATH={info.bin_dir}:$PATH\n"

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


def _reap(pid: int, block: bool = False) -> None:
    """Collect our own exited children so they do not linger as zombies."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0 if block else os.WNOHANG)
