"""`bpfglobals operator`: the kopf operator in the foreground, with its admission webhook."""

from __future__ import annotations

import argparse
import logging
import os

from bpfglobals.cli.verbs import help_for


def _webhook_options(args: argparse.Namespace) -> object | None:
    from bpfglobals.k8s.webhook import WebhookOptions

    if args.no_webhook:
        return None
    in_chart = args.webhook_config is not None
    return WebhookOptions(
        # off-cluster the webhook is ours alone: loopback, a free port, self-registered
        listen=args.webhook_listen or ("0.0.0.0" if in_chart else "127.0.0.1"),
        port=args.webhook_port if args.webhook_port is not None else (9443 if in_chart else 0),
        config_name=args.webhook_config,
        service=args.webhook_service,
        secret=args.webhook_secret,
        cert_dir=args.webhook_cert_dir,
        failure_policy=args.webhook_failure_policy or "Fail",
        timeout_seconds=args.webhook_timeout,
        fetch_deadline=args.webhook_fetch_deadline,
        require_signatures=args.require_signatures,
    )


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

    run_operator(
        args.kubeconfig,
        liveness,
        lease,
        args.node_grace,
        standby_health,
        _webhook_options(args),  # type: ignore[arg-type]
        require_signatures=args.require_signatures,
    )
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
    p.add_argument(
        "--require-signatures",
        action="store_true",
        help="the cluster's policy: refuse every BpfProgram whose object is not an image "
        "signed with a key of spec.elf.verify (Degraded, reason SignatureInvalid)",
    )
    w = p.add_argument_group(
        "admission webhook",
        "By default the webhook listens on 127.0.0.1 (a free port) and registers the "
        "ValidatingWebhookConfiguration bpfglobals-operator-local itself; the chart passes "
        "--webhook-config and --webhook-service instead.",
    )
    w.add_argument("--no-webhook", action="store_true", help="do not serve the webhook")
    w.add_argument("--webhook-listen", help="address (default 127.0.0.1; 0.0.0.0 in the chart)")
    w.add_argument("--webhook-port", type=int, help="port (default: free; 9443 in the chart)")
    w.add_argument("--webhook-config", help="the chart's ValidatingWebhookConfiguration name")
    w.add_argument("--webhook-service", help="NAMESPACE/NAME of the chart's webhook Service")
    w.add_argument("--webhook-secret", help="NAMESPACE/NAME: keep an issued certificate there")
    w.add_argument("--webhook-cert-dir", help="tls.crt and tls.key mounted (cert-manager)")
    policy = "failurePolicy of the self-registered configuration (Fail, Ignore)"
    w.add_argument("--webhook-failure-policy", choices=("Fail", "Ignore"), help=policy)
    w.add_argument("--webhook-timeout", type=int, default=10, help="timeoutSeconds (1-30)")
    deadline = "seconds to fetch an object before allowing the change with a warning"
    w.add_argument("--webhook-fetch-deadline", type=float, default=3.0, help=deadline)
    p.set_defaults(func=run)
