"""Admission webhook latency, warm: 100 sequential applies of a BpfProgram change.

Run as root:  .venv/bin/python bench/webhook.py [--applies 100]

Starts a local control plane and the operator (which serves its webhook on 127.0.0.1 and
registers it), puts tests/progs/globals.bpf.c in a ConfigMap, creates one BpfProgram, then:
1. the webhook alone: AdmissionReviews POSTed straight to it over TLS (what the apiserver
   sends for an update), one at a time, the object already in its digest cache;
2. applies through the apiserver (a merge patch of spec.globals, stored), with the webhook
   registered, and again with its registration removed (same operator, same apiserver): the
   difference is what the webhook adds to an apply;
3. `kubectl apply` processes, with the webhook (what a user waits for).
Prints p50/p99 for each.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import ssl
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.progs import compile_bpf  # noqa: E402
from tests.support.stack import Stack, throwaway_stack, wait_for  # noqa: E402

from bpfglobals.k8s.webhook_config import LOCAL_NAME  # noqa: E402


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] * 1000


def report(what: str, xs: list[float]) -> None:
    print(
        f"{what:58s} p50 {pct(xs, 50):7.2f} ms   p99 {pct(xs, 99):7.2f} ms   "
        f"mean {statistics.mean(xs) * 1000:7.2f} ms   (n={len(xs)})"
    )


def program(tag: str, sha: str, value: int) -> dict:
    return {
        "apiVersion": "bpfglobals.io/v1alpha1",
        "kind": "BpfProgram",
        "metadata": {"name": "bench-webhook"},
        "spec": {
            "elf": {
                "configMap": {"namespace": "default", "name": f"bench-{tag}", "key": "g.bpf.o"},
                "sha256": sha,
            },
            "programs": [{"name": "config_ret", "attach": {"xdp": {"interface": "bpfg0"}}}],
            "globals": {"ro_u16": value, "ro_mode": "MODE_DROP", "ro_name": "eth0"},
            "nodeSelector": {"bpfglobals.io/e2e": tag},
        },
    }


def direct(webhook: dict, doc: dict, n: int) -> list[float]:
    """POST AdmissionReviews for UPDATEs of `doc` straight to the webhook (TLS, keep-alive)."""
    url = urlsplit(webhook["clientConfig"]["url"])
    ctx = ssl.create_default_context(
        cadata=base64.b64decode(webhook["clientConfig"]["caBundle"]).decode()
    )
    conn = http.client.HTTPSConnection(url.hostname, url.port, context=ctx, timeout=10)
    out = []
    for i in range(n):
        new = json.loads(json.dumps(doc))
        new["spec"]["globals"]["ro_u16"] = 1000 + i
        body = json.dumps(
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {"uid": str(i), "operation": "UPDATE", "object": new, "oldObject": doc},
            }
        )
        t = time.perf_counter()
        conn.request("POST", url.path, body, {"Content-Type": "application/json"})
        answer = json.loads(conn.getresponse().read())
        out.append(time.perf_counter() - t)
        assert answer["response"]["allowed"], answer
    conn.close()
    return out


def patches(custom, n: int, start: int, pace: float) -> list[float]:
    out = []
    for i in range(n):
        time.sleep(pace)
        body = {"spec": {"globals": {"ro_u16": start + i}}}
        t = time.perf_counter()
        custom.patch_cluster_custom_object(
            "bpfglobals.io", "v1alpha1", "bpfprograms", "bench-webhook", body
        )
        out.append(time.perf_counter() - t)
    return out


def kubectl_applies(kubectl, tag: str, sha: str, n: int, start: int) -> list[float]:
    out = []
    for i in range(n):
        doc = json.dumps(program(tag, sha, start + i))
        t = time.perf_counter()
        kubectl("apply", "-f", "-", input=doc)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--applies", type=int, default=100)
    ap.add_argument("--pace", type=float, default=0.0, help="seconds between applies")
    args = ap.parse_args()
    with throwaway_stack("bpfg-webhook-") as stack:
        run(stack, args.applies, args.pace)


def run(stack: Stack, n: int, pace: float) -> None:
    kubectl = stack.kubectl
    stack.start_operator()
    elf = compile_bpf(ROOT / "tests" / "progs" / "globals.bpf.c", stack.tmp)
    sha = hashlib.sha256(elf.read_bytes()).hexdigest()
    kubectl("create", "configmap", f"bench-{stack.tag}", f"--from-file=g.bpf.o={elf}")

    def registered():
        r = kubectl("get", "validatingwebhookconfiguration", LOCAL_NAME, "-o", "json", check=False)
        return json.loads(r.stdout)["webhooks"][0] if r.returncode == 0 else None

    webhook = wait_for("the webhook registered", registered)
    kubectl("apply", "-f", "-", input=json.dumps(program(stack.tag, sha, 1)))  # cold fetch
    bad = json.dumps(program(stack.tag, sha, 70000))
    refused = kubectl("apply", "-f", "-", input=bad, check=False)
    assert refused.returncode != 0 and "out of range" in refused.stderr, refused

    from kubernetes import client, config

    config.load_kube_config(config_file=stack.cp.kubeconfig)
    custom = client.CustomObjectsApi()
    stored = custom.get_cluster_custom_object(
        "bpfglobals.io", "v1alpha1", "bpfprograms", "bench-webhook"
    )
    print(
        f"{n} sequential applies each, {pace:g} s apart, warm (object cached by digest); "
        "this machine: 2 vCPUs shared with other jobs"
    )
    direct(webhook, stored, 5)  # warm-up
    report("webhook alone (AdmissionReview over TLS, keep-alive)", direct(webhook, stored, n))
    patches(custom, 5, 2000, pace)
    with_hook = patches(custom, n, 3000, pace)
    report("apply through the apiserver, webhook registered", with_hook)
    kubectl("delete", "validatingwebhookconfiguration", LOCAL_NAME)
    time.sleep(2)  # the apiserver's webhook informer
    without = patches(custom, n, 4000, pace)
    report("apply through the apiserver, no webhook", without)
    print(
        f"{'webhook cost per apply (difference of medians)':58s} "
        f"{(statistics.median(with_hook) - statistics.median(without)) * 1000:7.2f} ms"
    )
    stack.stop("operator")
    stack.start_operator()  # registers again
    wait_for("the webhook registered", registered)
    kubectl_applies(kubectl, stack.tag, sha, 3, 5000)
    report(
        "`kubectl apply` process, webhook registered",
        kubectl_applies(kubectl, stack.tag, sha, n, 6000),
    )


if __name__ == "__main__":
    main()
