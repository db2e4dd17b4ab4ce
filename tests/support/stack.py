"""The operator and node agents as processes, each agent a simulated node (own Node object,
bpffs root and network namespace): shared by the e2e tests and bench/scale.py."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.support.netns import node_pair

CLI = str(Path(sys.executable).parent / "bpfglobals")


def wait_for(what: str, check: Callable[[], object], timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Stack:
    """The operator, the agents and their simulated nodes."""

    def __init__(self, control_plane, kubectl, tmp: Path) -> None:
        self.cp, self.kubectl, self.tmp = control_plane, kubectl, tmp
        self.tag = "t" + uuid.uuid4().hex[:5]  # all digits would read as a YAML int
        self.nodes: dict[str, dict] = {}
        self.procs: dict[str, subprocess.Popen] = {}
        self._nets: list = []
        self._cleanups: list[Callable[[], object]] = []

    def on_close(self, cleanup: Callable[[], object]) -> None:
        """Run `cleanup` when the stack closes, after the agents have stopped."""
        self._cleanups.append(cleanup)

    def add_node(self, index: int) -> str:
        """A simulated node: Node object (labelled bpfglobals.io/e2e=<tag>), namespace with
        interface bpfg0, its own bpffs root; returns its name."""
        ctx = node_pair()
        net = ctx.__enter__()
        self._nets.append(ctx)
        name = f"node-{self.tag}-{index}"
        self.nodes[name] = {"net": net, "root": f"/sys/fs/bpf/bgt-e2e-{self.tag}-{index}"}
        self.kubectl(
            "apply",
            "-f",
            "-",
            input=json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "labels": {"kubernetes.io/hostname": name, "bpfglobals.io/e2e": self.tag},
                    },
                }
            ),
        )
        return name

    def close(self) -> None:
        self.kubectl("delete", "bpfprograms", "--all", "--timeout=120s", check=False)
        for name in list(self.procs):
            self.stop(name)
        for cleanup in self._cleanups:
            cleanup()
        for n in self.nodes.values():
            subprocess.run(["rm", "-rf", n["root"]], check=False)
        for ctx in self._nets:
            ctx.__exit__(None, None, None)
        if self.nodes:
            self.kubectl("delete", "node", *self.nodes, check=False)

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": self.cp.kubeconfig}

    def start_agent(
        self,
        node: str,
        kubeconfig: str | None = None,
        health_port: int = 0,
        extra: tuple[str, ...] = (),
    ) -> None:
        n = self.nodes[node]
        log = open(self.tmp / f"agent-{node}.log", "ab")  # noqa: SIM115 - the child owns it
        self.procs[node] = subprocess.Popen(
            [
                CLI,
                "agent",
                "--node-name",
                node,
                "--bpffs-root",
                n["root"],
                "--netns",
                n["net"].host_netns_path,
                "--cache-dir",
                str(self.tmp / f"cache-{node}"),
                "--listen",
                "127.0.0.1",
                "--metrics-port",
                "0",
                "--health-port",
                str(health_port),
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**self.env(), **({"KUBECONFIG": kubeconfig} if kubeconfig else {})},
        )
        log.close()

    def wait_agents_connected(self, timeout: float = 120) -> None:
        """Until every running agent has listed its objects (its log says so)."""

        def connected() -> bool:
            return all(
                "connected:" in (self.tmp / f"agent-{node}.log").read_text()
                for node in self.nodes
                if node in self.procs
            )

        wait_for("agents connected", connected, timeout)

    # Short leases: a test that kills an operator must not wait 15 s for the next one.
    LEASE = (
        "--leader-elect-lease-duration=4",
        "--leader-elect-renew-deadline=3",
        "--leader-elect-retry-period=1",
    )
    NODE_GRACE = 5.0  # seconds a NotReady node is waited on by deletes

    def start_operator(self, *extra: str, name: str = "operator") -> None:
        """`extra`: more `bpfglobals operator` flags (e.g. --no-webhook)."""
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        self.procs[name] = subprocess.Popen(
            [
                CLI,
                "operator",
                "--listen",
                "127.0.0.1",
                "--metrics-port",
                "0",
                "--health-port",
                "0",
                f"--leader-elect-resource-name=bpfglobals-{self.tag}",
                *self.LEASE,
                f"--node-grace={self.NODE_GRACE}",
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env(),
        )
        log.close()

    def stop(self, name: str, sig: int = 15) -> None:
        p = self.procs.pop(name)
        p.send_signal(sig)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def publish_elf(self, config_map: str, elf: Path) -> str:
        """ConfigMap `config_map`-TAG holding `elf` under key `config_map`.bpf.o (dashes as
        underscores), as the BpfPrograms of `tests/e2e` expect; returns the ELF's sha256."""
        key = f"{config_map.replace('-', '_')}.bpf.o"
        self.kubectl(
            "create",
            "configmap",
            f"{config_map}-{self.tag}",
            "-n",
            "default",
            f"--from-file={key}={elf}",
        )
        return hashlib.sha256(elf.read_bytes()).hexdigest()

    def program(self, name: str) -> dict:
        return json.loads(self.kubectl("get", "bpfprogram", name, "-o", "json").stdout)

    def apply(self, doc: dict) -> None:
        self.kubectl("apply", "-f", "-", input=json.dumps(doc))

    def wait_ready(self, name: str, generation: int | None = None, timeout: float = 90) -> dict:
        def ready():
            st = self.program(name).get("status") or {}
            gen_ok = generation is None or st.get("observedGeneration") == generation
            return st if gen_ok and st.get("phase") == "Ready" else None

        return wait_for(f"{name} Ready", ready, timeout)

    def logs(self) -> str:
        return "\n".join(f"--- {f.name}\n{f.read_text()[-3000:]}" for f in self.tmp.glob("*.log"))


@contextlib.contextmanager
def throwaway_stack(prefix: str) -> Iterator[Stack]:
    """A Stack on a control plane of its own in a temp dir, all removed on exit (benchmarks)."""
    from bpfglobals.devcluster import DevCluster
    from tests.support.kubectl import kubectl_for

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    cluster = DevCluster(str(tmp / "cluster"))
    info = cluster.up()
    stack = Stack(info, kubectl_for(info), tmp)
    try:
        yield stack
    finally:
        stack.close()
        cluster.down()
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def running_stack(
    control_plane,
    kubectl,
    tmp: Path,
    nodes: int,
    operators: tuple[str, ...] = ("operator",),
    operator_flags: tuple[str, ...] = (),
) -> Iterator[Stack]:
    """A Stack with `nodes` agents and the named operator processes, closed afterwards. With
    several operators, none serves the webhook: off-cluster each would register itself under
    one name (tests/e2e/test_webhook.py covers the webhook with one operator)."""
    if len(operators) > 1 and "--no-webhook" not in operator_flags:
        operator_flags = (*operator_flags, "--no-webhook")
    s = Stack(control_plane, kubectl, tmp)
    try:
        for i in range(nodes):
            s.start_agent(s.add_node(i))
        for name in operators:
            s.start_operator(*operator_flags, name=name)
        yield s
    finally:
        s.close()
