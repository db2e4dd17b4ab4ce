"""`bpfglobals operator`: the kopf operator in the foreground."""

from __future__ import annotations

import argparse
import logging
import os

from bpfglobals.cli.verbs import help_for


def run(args: argparse.Namespace) -> int:
    from bpfglobals.k8s.metrics import Health, serve
    from bpfglobals.k8s.operator import run as run_operator

    level = os.environ.get("BPFGLOBALS_LOG_LEVEL", "info").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    serve(args.listen, args.metrics_port, 0, Health())
    liveness = f"http://{args.listen}:{args.health_port}/healthz" if args.health_port else None
    run_operator(args.kubeconfig, liveness, require_signatures=args.require_signatures)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("operator", help=help_for("operator"))
    p.add_argument("--kubeconfig", help="default: in-cluster, $KUBECONFIG, ~/.kube/config")
    p.add_argument("--listen", default="0.0.0.0", help="address of /healthz and /metrics")
    p.add_argument("--metrics-port", type=int, default=8080, help="Prometheus /metrics (0: off)")
    p.add_argument("--health-port", type=int, default=8081, help="/healthz (0: off)")
    p.add_argument(
        "--require-signatures",
        action="store_true",
        help="the cluster's policy: refuse every BpfProgram whose object is not an image "
        "signed with a key of spec.elf.verify (Degraded, reason SignatureInvalid)",
    )
    p.set_defaults(func=run)
