"""The webhook's life in the operator: serve, keep the certificate current, register.

Three ways to run, chosen by `bpfglobals operator`'s flags:
- local (the default off-cluster, as `make demo` runs it): 127.0.0.1 on a free port, a
  certificate issued in memory, and the ValidatingWebhookConfiguration `bpfglobals-operator-local`
  registered by the operator itself (removed again when it stops cleanly);
- chart, operator-issued certificate: the chart installs the configuration and a Service; the
  operator keeps the certificate in a Secret, issues a new one 30 days before it expires, and
  writes its CA into the configuration's caBundle (the old CA kept beside it until then);
- chart, cert-manager: the certificate is mounted from cert-manager's Secret and re-read when
  it changes; cert-manager's CA injector fills the caBundle.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from bpfglobals.k8s.admission import FETCH_DEADLINE, Reviewer
from bpfglobals.k8s.client import TIMEOUT, is_not_found
from bpfglobals.k8s.elf_source import config_map_reader, secret_reader
from bpfglobals.k8s.webhook_config import (
    LOCAL_NAME,
    PATH,
    TIMEOUT_SECONDS,
    WebhookTarget,
    configuration,
)
from bpfglobals.k8s.webhook_server import WebhookServer
from bpfglobals.k8s.webhook_tls import ServingCert, issue
from bpfglobals.node.elf_source import ElfSources

log = logging.getLogger("bpfglobals.webhook")
CHECK_EVERY = 3600.0  # seconds between certificate checks (chart modes)


@dataclass(frozen=True)
class WebhookOptions:
    listen: str = "127.0.0.1"
    port: int = 0  # 0: a free port (local mode)
    config_name: str | None = None  # the chart's configuration (None: register our own)
    service: str | None = None  # "namespace/name" of the chart's Service
    secret: str | None = None  # "namespace/name": the operator keeps the certificate there
    cert_dir: str | None = None  # tls.crt/tls.key mounted from cert-manager
    failure_policy: str = "Fail"
    timeout_seconds: int = TIMEOUT_SECONDS
    fetch_deadline: float = FETCH_DEADLINE
    require_signatures: bool = False  # the cluster's policy, as the operator applies it


def _split(ref: str) -> tuple[str, str]:
    ns, _, name = ref.partition("/")
    return ns, name


class Webhook:
    def __init__(self, opts: WebhookOptions) -> None:
        self.opts = opts
        self.core = client.CoreV1Api()
        self.admission = client.AdmissionregistrationV1Api()
        self.stopping = threading.Event()
        self.registered: dict[str, Any] | None = None
        sources = ElfSources(
            config_map_reader(self.core),
            read_secret=secret_reader(self.core),
            require_signatures=opts.require_signatures,
        )
        self.reviewer = Reviewer(sources, opts.fetch_deadline)
        self.cert = self._first_cert()
        self.server = WebhookServer(self.reviewer, opts.listen, opts.port, self.cert)

    @property
    def url(self) -> str:
        return f"https://{self.opts.listen}:{self.server.port}"

    def start(self) -> None:
        self.server.start()
        if self.opts.config_name is None:
            self._register_local()
        elif self.opts.secret:
            self._write_ca_bundle(self.cert.ca_pem)
        if self.opts.config_name is not None:
            threading.Thread(target=self._keep_current, daemon=True, name="webhook-cert").start()
        log.info("admission webhook serving on %s", self.url)

    def stop(self) -> None:
        self.stopping.set()
        if self.registered is not None:
            self._unregister_local()
        self.server.stop()

    # -- certificates -----------------------------------------------------------------------------

    def _hosts(self) -> list[str]:
        if self.opts.service is None:
            return [self.opts.listen]
        ns, name = _split(self.opts.service)
        return [f"{name}.{ns}.svc", name, f"{name}.{ns}", f"{name}.{ns}.svc.cluster.local"]

    def _first_cert(self) -> ServingCert:
        if self.opts.cert_dir:
            return self._read_cert_dir()
        if self.opts.secret:
            return self._secret_cert()
        return issue(self._hosts())

    def _read_cert_dir(self) -> ServingCert:
        d = self.opts.cert_dir or ""

        def read(name: str) -> bytes:
            path = os.path.join(d, name)
            return open(path, "rb").read() if os.path.exists(path) else b""

        return ServingCert(read("ca.crt"), read("tls.crt"), read("tls.key"))

    def _secret_cert(self) -> ServingCert:
        """The Secret's certificate, or a new one written there when it is missing or due.
        The write is conditional on the version read: when operator replicas renew at once,
        one wins (409 for the others) and the others serve the winner's certificate."""
        for _ in range(3):
            cert = self._issue_into_secret()
            if cert is not None:
                return cert
        raise RuntimeError(f"webhook certificate Secret {self.opts.secret} keeps changing")

    def _issue_into_secret(self) -> ServingCert | None:
        ns, name = _split(self.opts.secret or "")
        version = None
        try:
            secret = self.core.read_namespaced_secret(name, ns, _request_timeout=TIMEOUT)
            data, version = secret.data or {}, secret.metadata.resource_version
            cert = ServingCert(
                *(base64.b64decode(data.get(k, "")) for k in ("ca.crt", "tls.crt", "tls.key"))
            )
            if cert.cert_pem and not cert.due():
                return cert
        except client.ApiException as e:
            if not is_not_found(e):
                raise
        cert = issue(self._hosts())
        body = {
            "metadata": {"name": name, "namespace": ns},
            "type": "Opaque",  # as the chart creates it (a type is immutable)
            "data": {
                k: base64.b64encode(v).decode()
                for k, v in (
                    ("ca.crt", cert.ca_pem),
                    ("tls.crt", cert.cert_pem),
                    ("tls.key", cert.key_pem),
                )
            },
        }
        try:
            if version is None:
                self.core.create_namespaced_secret(ns, body, _request_timeout=TIMEOUT)
            else:
                body["metadata"]["resourceVersion"] = version
                self.core.replace_namespaced_secret(name, ns, body, _request_timeout=TIMEOUT)
        except client.ApiException as e:
            if e.status in (404, 409):  # another replica wrote (or removed) it first: re-read
                return None
            raise
        log.info("issued a new webhook certificate (valid until %s)", cert.not_after())
        return cert

    def _keep_current(self) -> None:
        interval = 60.0 if self.opts.cert_dir else CHECK_EVERY
        while not self.stopping.wait(interval):
            try:
                self.check_certificate()
            except Exception as e:  # the current certificate stays; try again later
                log.warning("webhook certificate check failed: %s", e)

    def check_certificate(self) -> bool:
        """Serve a renewed certificate if there is one (cert-manager's files changed), or
        issue one when ours is due; True when it changed."""
        new = self._read_cert_dir() if self.opts.cert_dir else None
        if new is None and self.cert.due():
            old_ca = self.cert.ca_pem
            new = self._secret_cert()
            self._write_ca_bundle(new.ca_pem + old_ca)  # both trusted meanwhile
        if new is None or new.cert_pem == self.cert.cert_pem:
            return False
        self.server.use(new)
        self.cert = new
        log.info("serving a renewed webhook certificate")
        return True

    # -- registration ---------------------------------------------------------------------------

    def _write_ca_bundle(self, ca_pem: bytes) -> None:
        """The chart's configuration trusts our CA (it is installed without a caBundle)."""
        name = self.opts.config_name or ""
        current = self.admission.read_validating_webhook_configuration(
            name, _request_timeout=TIMEOUT
        )
        bundle = base64.b64encode(ca_pem).decode()
        patch = [
            {
                "op": "replace" if w.client_config.ca_bundle else "add",
                "path": f"/webhooks/{i}/clientConfig/caBundle",
                "value": bundle,
            }
            for i, w in enumerate(current.webhooks or [])
        ]
        if patch:  # a list: the client sends it as a JSON patch
            self.admission.patch_validating_webhook_configuration(
                name, patch, _request_timeout=TIMEOUT
            )

    def _register_local(self) -> None:
        body = configuration(
            LOCAL_NAME,
            WebhookTarget(url=self.url),
            self.cert.ca_pem,
            self.opts.failure_policy,
            self.opts.timeout_seconds,
        )
        try:
            current = self.admission.read_validating_webhook_configuration(
                LOCAL_NAME, _request_timeout=TIMEOUT
            )
            body["metadata"]["resourceVersion"] = current.metadata.resource_version
            self.admission.replace_validating_webhook_configuration(
                LOCAL_NAME, body, _request_timeout=TIMEOUT
            )
        except client.ApiException as e:
            if not is_not_found(e):
                raise
            self.admission.create_validating_webhook_configuration(body, _request_timeout=TIMEOUT)
        self.registered = body

    def _unregister_local(self) -> None:
        """Remove our registration, unless another operator has replaced it since."""
        try:
            current = self.admission.read_validating_webhook_configuration(
                LOCAL_NAME, _request_timeout=TIMEOUT
            )
            if current.webhooks and current.webhooks[0].client_config.url == (self.url + PATH):
                self.admission.delete_validating_webhook_configuration(
                    LOCAL_NAME, _request_timeout=TIMEOUT
                )
        except client.ApiException as e:
            if not is_not_found(e):
                log.warning("could not remove the webhook registration: %s", e)
