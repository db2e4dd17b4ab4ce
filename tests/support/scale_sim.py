"""The scale scenario of issue 12, on a real apiserver: the real operator (a process) against
N simulated nodes (`bpfglobals.k8s.simulator`, one process), P BpfPrograms.

create all -> all Ready; change a .rodata value of every program (maxUnavailable 10%) -> all
Ready; delete 10% of the nodes -> every program Ready on the rest; delete every program -> all
gone. Used by bench/scale_sim.py and by the suite at a small N.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from kubernetes import client, config

from bpfglobals.devcluster import ClusterInfo
from bpfglobals.k8s.resources import GROUP, LABEL_NODE, NODES, PROGRAM_NODES, PROGRAMS, VERSION
from tests.support.kubectl import kubectl_for
from tests.support.progs import EXAMPLES, compile_bpf
from tests.support.stack import CLI

ROOT = Path(__file__).resolve().parents[2]
WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE")


def apiserver_requests(kubectl, verbs: tuple[str, ...]) -> dict[str, float]:
    """apiserver_request_total on our group for `verbs`, so far, by "resource[/sub] VERB"."""
    out: dict[str, float] = {}
    for line in kubectl("get", "--raw", "/metrics").stdout.splitlines():
        if not line.startswith("apiserver_request_total{") or f'group="{GROUP}"' not in line:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
        if labels.get("verb") in verbs:
            sub = "/" + labels["subresource"] if labels.get("subresource") else ""
            key = f"{labels['resource']}{sub} {labels['verb']}"
            out[key] = out.get(key, 0) + float(line.rsplit(" ", 1)[1])
    return out


def proc_usage(pid: int) -> tuple[float, float]:
    """(peak RSS MiB, CPU seconds) of a live process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    hwm = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return hwm, (int(fields[11]) + int(fields[12])) / ticks


class Scenario:
    def __init__(self, info: ClusterInfo, nodes: int, programs: int, tmp: Path) -> None:
        self.info, self.n, self.p, self.tmp = info, nodes, programs, tmp
        self.kubectl = kubectl_for(info)
        self.tag = uuid.uuid4().hex[:6]
        self.prefix = f"sim{self.tag}"
        api_client = config.new_client_from_config(info.kubeconfig)
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.procs: dict[str, subprocess.Popen] = {}
        self.stuck = 0
        self.names = [f"{self.prefix}-p{i}" for i in range(programs)]

    # -- processes ------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
        env = {
            **os.environ,
            "KUBECONFIG": self.info.kubeconfig,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "operator"), str(ROOT)]),
            "BPFGLOBALS_LOG_LEVEL": "warning",
        }
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()

    def start(self) -> None:
        self._spawn(
            "operator",
            [
                CLI,
                "operator",
                "--listen=127.0.0.1",
                "--metrics-port=0",
                "--health-port=0",
                f"--leader-elect-resource-name=bpfglobals-{self.tag}",
                # the cluster layer alone (bench/webhook.py measures the webhook)
                "--no-webhook",
            ],
        )
        self._spawn(
            "simulator",
            [
                sys.executable,
                "-m",
                "bpfglobals.k8s.simulator",
                f"--nodes={self.n}",
                f"--prefix={self.prefix}",
                f"--stats={self.tmp / 'sim.json'}",
            ],
        )
        self.wait("every simulated agent connected", lambda: self.sim()["connected"] == self.n)

    def sim(self) -> dict:
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise AssertionError(
                    f"{name} exited: {(self.tmp / f'{name}.log').read_text()[-3000:]}"
                )
        try:
            return json.loads((self.tmp / "sim.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {"connected": 0, "lists": 0}

    def stop(self) -> None:
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()

    def cleanup(self) -> None:
        """Whatever is left (after a failure too): programs, node objects, Nodes."""
        self.stop()
        for name in self.names:
            self._ignore_404(
                self.custom.delete_cluster_custom_object, GROUP, VERSION, PROGRAMS, name
            )
        sel = f"bpfglobals.io/program in ({','.join(self.names)})"
        for plural, objs in (
            (PROGRAM_NODES, self._list(PROGRAM_NODES, sel)),
            (NODES, self._mine()),
        ):
            for o in objs:
                self._ignore_404(
                    self.custom.delete_cluster_custom_object,
                    GROUP,
                    VERSION,
                    plural,
                    o["metadata"]["name"],
                )
        self.core.delete_collection_node(label_selector=f"bpfglobals.io/sim={self.prefix}")

    @staticmethod
    def _ignore_404(fn: Callable, *args: object) -> None:
        try:
            fn(*args)
        except client.ApiException as e:
            if e.status != 404:
                raise

    # -- the API --------------------------------------------------------------------------------

    def _list(self, plural: str, selector: str = "") -> list[dict]:
        """Every object, in pages (a 50,000-object list in one response is what we avoid)."""
        out, token = [], None
        while True:
            page = self.custom.list_cluster_custom_object(
                GROUP, VERSION, plural, label_selector=selector, limit=500, _continue=token
            )
            out.extend(page["items"])
            token = page["metadata"].get("continue")
            if not token:
                return out

    def _mine(self) -> list[dict]:
        """The BpfNodes of the simulated nodes."""
        return [o for o in self._list(NODES) if o["metadata"]["name"].startswith(self.prefix)]

    def programs(self) -> dict[str, dict]:
        return {
            o["metadata"]["name"]: o
            for o in self._list(PROGRAMS)
            if o["metadata"]["name"] in self.names
        }

    def wait(self, what: str, check: Callable[[], object], timeout: float = 900) -> float:
        t = time.monotonic()
        while time.monotonic() - t < timeout:
            if check():
                return time.monotonic() - t
            time.sleep(1)
        raise TimeoutError(f"timed out waiting for {what}")

    def all_ready(self, generations: dict[str, int], nodes: int) -> bool:
        progs = self.programs()
        return len(progs) == len(self.names) and all(
            (o.get("status") or {}).get("phase") == "Ready"
            and o["status"].get("observedGeneration") == generations[name]
            and o["status"].get("readyNodes") == f"{nodes}/{nodes}"
            for name, o in progs.items()
        )

    def not_ready(self) -> int:
        return sum(
            1 for o in self.programs().values() if (o.get("status") or {}).get("phase") != "Ready"
        )

    def timed(self, what: str, check: Callable[[], bool], timeout: float) -> float:
        """Seconds until `check` holds; on a timeout, the unfinished objects count as stuck."""
        start = time.monotonic()
        try:
            return self.wait(what, check, timeout)
        except TimeoutError:
            self.stuck += max(1, self.not_ready())
            return time.monotonic() - start

    # -- the scenario ---------------------------------------------------------------------------

    def doc(self, name: str, elf: Path, sha: str, port: int) -> dict:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "BpfProgram",
            "metadata": {"name": name},
            "spec": {
                "elf": {"path": str(elf), "sha256": sha},
                "programs": [{"name": "xdp_drop", "attach": {"xdp": {"interface": "eth0"}}}],
                "globals": {"drop_port": port},
                "nodeSelector": {"bpfglobals.io/sim": self.prefix},
                "rollout": {"maxUnavailable": "10%"},
            },
        }

    def run(self, timeout: float = 900, steady: float = 20) -> dict:
        elf = compile_bpf(EXAMPLES / "xdp_drop.bpf.c", self.tmp)
        sha = hashlib.sha256(elf.read_bytes()).hexdigest()
        self.start()
        lists_from, listed_at = self.sim()["lists"], time.monotonic()
        n, p = self.n, self.p

        for i, name in enumerate(self.names):
            self.custom.create_cluster_custom_object(
                GROUP, VERSION, PROGRAMS, self.doc(name, elf, sha, 7000 + i)
            )
        gens = {name: 1 for name in self.names}
        create_s = self.timed("create: all Ready", lambda: self.all_ready(gens, n), timeout)

        writes = apiserver_requests(self.kubectl, WRITE_VERBS)
        for i, name in enumerate(self.names):  # a .rodata change: a new variant everywhere
            o = self.custom.patch_cluster_custom_object(
                GROUP, VERSION, PROGRAMS, name, {"spec": {"globals": {"drop_port": 8000 + i}}}
            )
            gens[name] = o["metadata"]["generation"]
        rollout_s = self.timed("rollout: all Ready", lambda: self.all_ready(gens, n), timeout)
        time.sleep(3)  # trailing status writes of the rollout count too
        after = apiserver_requests(self.kubectl, WRITE_VERBS)
        by_kind = {k: v - writes.get(k, 0) for k, v in after.items() if v > writes.get(k, 0)}
        changed = sum(by_kind.values())

        time.sleep(steady)  # steady state: nothing changes, the agents only watch
        lists = self.sim()["lists"] - lists_from
        hours = (time.monotonic() - listed_at) / 3600
        max_bytes = max(
            len(json.dumps(o, separators=(",", ":")))
            for plural in (PROGRAMS, NODES, PROGRAM_NODES)
            for o in self._list(plural)
        )

        gone = [f"{self.prefix}-{i:05d}" for i in range(max(1, n // 10))]
        for node in gone:
            self.core.delete_node(node)
        left = n - len(gone)

        def churned() -> bool:
            held = any(self._list(PROGRAM_NODES, f"{LABEL_NODE}={node}") for node in gone[:20])
            held = held or any(o["metadata"]["name"] in gone for o in self._mine())
            return not held and self.all_ready(gens, left)

        node_delete_s = self.timed("nodes deleted: all Ready on the rest", churned, timeout)

        for name in self.names:
            self.custom.delete_cluster_custom_object(GROUP, VERSION, PROGRAMS, name)

        mine = f"bpfglobals.io/program in ({','.join(self.names)})"

        def all_gone() -> bool:
            return not self.programs() and not self._list(PROGRAM_NODES, mine) and not self._mine()

        try:
            delete_s = self.wait("delete: all gone", all_gone, timeout)
        except TimeoutError:
            self.stuck += len(self.programs()) + len(self._list(PROGRAM_NODES, mine))
            delete_s = timeout
        rss, cpu = proc_usage(self.procs["operator"].pid)  # peak is kept: read after the delete
        return {
            "nodes": n,
            "programs": p,
            "create_s": round(create_s, 1),
            "rollout_s": round(rollout_s, 1),
            "node_delete_s": round(node_delete_s, 1),
            "delete_s": round(delete_s, 1),
            "writes_per_node_change": round(changed / (n * p), 2),
            "lists_per_agent_hour": round(lists / n / hours, 2),
            "max_object_bytes": max_bytes,
            "operator_peak_rss_mib": round(rss, 1),
            "operator_cpu_s": round(cpu, 1),
            "stuck": self.stuck,
            "writes_during_change": {k: int(v) for k, v in sorted(by_kind.items())},
        }
