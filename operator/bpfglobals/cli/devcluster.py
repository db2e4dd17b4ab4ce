"""`bpfglobals dev-cluster up|down|env`: a local control plane on loopback."""

from __future__ import annotations

import argparse

from bpfglobals.cli.verbs import help_for
from bpfglobals.devcluster import DevCluster


def run(args: argparse.Namespace) -> int:
    cluster = DevCluster(args.state_dir)
    if args.action == "up":
        info = cluster.up(controller_manager=args.controller_manager, node=args.node)
        print(f"control plane ready at {info.server}")
        if info.node:
            print(f"node {info.node['name']} Ready; registry {info.registry}")
        print(f'kubeconfig: {info.kubeconfig}   (eval "$(bpfglobals dev-cluster env)")')
    elif args.action == "down":
        cluster.down()
        print("control plane stopped")
    else:
        print(cluster.env(), end="")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dev-cluster", help=help_for("dev-cluster"))
    p.add_argument("action", choices=["up", "down", "env"])
    p.add_argument(
        "--state-dir", help="default $BPFGLOBALS_DEVCLUSTER_DIR or /var/run/bpfglobals-devcluster"
    )
    p.add_argument(
        "--controller-manager",
        action="store_true",
        help="also run kube-controller-manager (garbage collection, namespaces)",
    )
    p.add_argument(
        "--node",
        action="store_true",
        help="also run this machine as a node: containerd, kubelet, kube-scheduler, the "
        "controllers DaemonSets and Deployments need, and a registry on 127.0.0.1",
    )
    p.set_defaults(func=run)
