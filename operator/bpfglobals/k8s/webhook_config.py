"""The ValidatingWebhookConfiguration for BpfPrograms (pure: the object, not its writing).

Only BpfPrograms, CREATE and UPDATE (not their status subresource, not deletions), no side
effects, a timeout, and the failure policy `Fail` by default: while the webhook is
unreachable a change is refused (and can be re-applied) rather than stored unchecked; nothing
running is touched, since agents never call it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from bpfglobals.k8s.resources import GROUP, PROGRAMS

PATH = "/validate-bpfprogram"
LOCAL_NAME = "bpfglobals-operator-local"  # what `bpfglobals operator` registers off-cluster
TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class WebhookTarget:
    """Where the apiserver calls: a URL (the operator as a local process), or a Service."""

    url: str | None = None
    service_namespace: str | None = None
    service_name: str | None = None
    service_port: int = 443

    def client_config(self, ca_pem: bytes | None) -> dict[str, Any]:
        cc: dict[str, Any]
        if self.url is not None:
            cc = {"url": self.url + PATH}
        else:
            cc = {
                "service": {
                    "namespace": self.service_namespace,
                    "name": self.service_name,
                    "path": PATH,
                    "port": self.service_port,
                }
            }
        if ca_pem:
            cc["caBundle"] = base64.b64encode(ca_pem).decode()
        return cc


def configuration(
    name: str,
    target: WebhookTarget,
    ca_pem: bytes | None,
    failure_policy: str = "Fail",
    timeout_seconds: int = TIMEOUT_SECONDS,
) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "bpfglobals"}},
        "webhooks": [
            {
                "name": f"{PROGRAMS}.{GROUP}",
                "admissionReviewVersions": ["v1"],
                "clientConfig": target.client_config(ca_pem),
                "rules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": ["*"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": [PROGRAMS],
                        "scope": "Cluster",
                    }
                ],
                "matchPolicy": "Equivalent",
                "failurePolicy": failure_policy,
                "sideEffects": "None",
                "timeoutSeconds": timeout_seconds,
            }
        ],
    }
