"""The Kubernetes API client, configured the usual way: in-cluster, $KUBECONFIG, ~/.kube/config."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config

from bpfglobals.k8s.resources import GROUP, VERSION

# Connections kept per client: the operator writes from several threads at once (its BpfNode
# writer, reconciles, two watches); with the library's 10, each extra one was a new TLS
# handshake (urllib3: "Connection pool is full, discarding connection").
POOL = 32


def load_config(kubeconfig: str | None = None, pool: int = POOL) -> None:
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig)
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
    else:
        config.load_kube_config()
    cfg = client.Configuration.get_default_copy()
    cfg.connection_pool_maxsize = pool
    client.Configuration.set_default(cfg)


# Every request has a deadline: an unreachable apiserver must fail a call, never hang a loop.
TIMEOUT = (10, 30)  # connect, read (seconds)


@dataclass
class Api:
    core: Any
    custom: Any

    @classmethod
    def create(cls) -> Api:
        return cls(client.CoreV1Api(), client.CustomObjectsApi())

    # cluster-scoped custom objects of our group
    def list(self, plural: str, label_selector: str = "") -> dict:
        return self.custom.list_cluster_custom_object(
            GROUP, VERSION, plural, label_selector=label_selector, _request_timeout=TIMEOUT
        )

    def get(self, plural: str, name: str) -> dict:
        return self.custom.get_cluster_custom_object(
            GROUP, VERSION, plural, name, _request_timeout=TIMEOUT
        )

    def create_obj(self, plural: str, body: dict) -> dict:
        return self.custom.create_cluster_custom_object(
            GROUP, VERSION, plural, body, _request_timeout=TIMEOUT
        )

    def patch(self, plural: str, name: str, body: dict | list) -> dict:
        """A merge patch (a dict) or a JSON patch (a list of operations)."""
        kind = "json-patch" if isinstance(body, list) else "merge-patch"
        return self.custom.patch_cluster_custom_object(
            GROUP,
            VERSION,
            plural,
            name,
            body,
            _content_type=f"application/{kind}+json",
            _request_timeout=TIMEOUT,
        )

    def patch_status(self, plural: str, name: str, body: dict) -> dict:
        return self.custom.patch_cluster_custom_object_status(
            GROUP, VERSION, plural, name, body, _request_timeout=TIMEOUT
        )

    def delete(self, plural: str, name: str) -> None:
        self.custom.delete_cluster_custom_object(
            GROUP, VERSION, plural, name, _request_timeout=TIMEOUT
        )


def is_not_found(e: Exception) -> bool:
    return isinstance(e, client.ApiException) and e.status == 404
