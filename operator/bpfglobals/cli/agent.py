"""`bpfglobals agent --node-name NAME`: the node agent in the foreground."""

from __future__ import annotations

import argparse
import logging
import os

from bpfglobals.cli.verbs import help_for
from bpfglobals.errors import BpfGlobalsError


def run(args: argparse.Namespace) -> int:
    from bpfglobals.k8s.agent import NodeAgent
    from bpfglobals.k8s.client import Api, load_config
    from bpfglobals.k8s.elf_source import config_map_reader, secret_reader
    from bpfglobals.k8s.metrics import Health, serve
    from bpfglobals.kernel.bpffs import ensure_bpffs
    from bpfglobals.node.elf_source import ElfSources
    from bpfglobals.node.reconcile import NodeReconciler

    node_name = args.node_name or os.environ.get("NODE_NAME")
    if not node_name:
        raise BpfGlobalsError("agent: --node-name or $NODE_NAME (downward API) is required")
    level = os.environ.get("BPFGLOBALS_LOG_LEVEL", "info").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    ensure_bpffs()
    load_config(args.kubeconfig)
    health = Health(stuck_after=args.stuck_after)
    serve(args.listen, args.metrics_port, args.health_port, health)
    api = Api.create()
    sources = ElfSources(
        config_map_reader(api.core),
        cache_dir=args.cache_dir,
        read_secret=secret_reader(api.core),
        require_signatures=args.require_signatures,
    )
    agent = NodeAgent(api, node_name, NodeReconciler(args.bpffs_root, args.netns, sources), health)
    agent.run()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("agent", help=help_for("agent"))
    p.add_argument("--node-name", help="this node's name (default $NODE_NAME)")
    p.add_argument("--bpffs-root", help="state root in bpffs (default /sys/fs/bpf/bpfglobals)")
    p.add_argument("--netns", help="attach interfaces in this network namespace (a path)")
    p.add_argument(
        "--cache-dir",
        default="/var/lib/bpfglobals/elf",
        help="where fetched objects are kept, by digest",
    )
    p.add_argument(
        "--require-signatures",
        action="store_true",
        help="the cluster's policy: load only objects from images signed with a key of "
        "spec.elf.verify, verified again on this node",
    )
    p.add_argument("--kubeconfig", help="default: in-cluster, $KUBECONFIG, ~/.kube/config")
    p.add_argument("--listen", default="0.0.0.0", help="address of /healthz and /metrics")
    p.add_argument("--metrics-port", type=int, default=9090, help="Prometheus /metrics (0: off)")
    p.add_argument("--health-port", type=int, default=9091, help="/healthz (0: off)")
    p.add_argument(
        "--stuck-after",
        type=float,
        default=300.0,
        help="seconds one reconcile may run before /healthz reports the agent stuck",
    )
    p.set_defaults(func=run)
