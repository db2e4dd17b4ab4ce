"""`bpfglobals operator`: the kopf operator in the foreground."""

from __future__ import annotations

import argparse
import logging
import os

from bpfglobals.cli.verbs import help_for


def run(args: argparse.Namespace) -> int:
    from bpfglobals.k8s.leader import LeaseConfig
    from bpfglobals.k8s.metrics import Health, serve, serve_health
    from bpfglobals.k8s.operator import run as run_operator

    level = os.environ.get("BPFGLOBALS_LOG_LEVEL", "info").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    serve(args.listen, args.metrics_port, 0, Health())
    liveness = f"http://{args.listen}:{args.health_port}/healthz" if args.health_port else None
    lease = None
    if args.leader_elect:
        lease = LeaseConfig(
            name=args.leader_elect_resource_name,
            namespace=args.leader_elect_resource_namespace
            or os.environ.get("POD_NAMESPACE", "default"),
            lease_duration=args.leader_elect_lease_duration,
            renew_deadline=args.leader_elect_renew_deadline,
            retry_period=args.leader_elect_retry_period,
        )

    def standby_health():  # kopf serves /healthz once leader; a standby is healthy too
        return serve_health(args.listen, args.health_port, Health()) if args.health_port else None

    run_operator(args.kubeconfig, liveness, lease, args.node_grace, standby_health)
    return 0


NODE_GRACE_HELP = "seconds a Node may be NotReady before deletes stop waiting for its agent"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("operator", help=help_for("operator"))
    p.add_argument("--kubeconfig", help="default: in-cluster, $KUBECONFIG, ~/.kube/config")
    p.add_argument("--listen", default="0.0.0.0", help="address of /healthz and /metrics")
    p.add_argument("--metrics-port", type=int, default=8080, help="Prometheus /metrics (0: off)")
    p.add_argument("--health-port", type=int, default=8081, help="/healthz (0: off)")
    p.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="reconcile only while holding a coordination.k8s.io/v1 Lease (default: on)",
    )
    p.add_argument("--leader-elect-resource-name", default="bpfglobals-operator")
    p.add_argument(
        "--leader-elect-resource-namespace",
        default="",
        help="the Lease's namespace (default $POD_NAMESPACE, else default)",
    )
    for timing, default in (("lease-duration", 15), ("renew-deadline", 10), ("retry-period", 2)):
        p.add_argument(f"--leader-elect-{timing}", type=float, default=default, help="seconds")
    p.add_argument("--node-grace", type=float, default=300.0, help=NODE_GRACE_HELP)
    p.set_defaults(func=run)
