"""The validating admission webhook's decision for one AdmissionReview (no I/O but the fetch).

On CREATE/UPDATE of a BpfProgram: parse the spec as the agents do, fetch its object (through
`ElfSources`, cached by digest) within `fetch_deadline` seconds, and check programs and every
global with the agents' codec (`node.check.problems`). A problem denies the request with the
codec's messages; an object that cannot be fetched in time is allowed with a warning, the
operator's status-side validation staying the backstop. Updates that leave the spec alone
(finalizers, labels, a deletion in progress) are allowed without a fetch, so an object stored
before the webhook existed can still be deleted.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bpfglobals.errors import BpfGlobalsError
from bpfglobals.node.check import problems
from bpfglobals.node.elf_source import ElfBlob, ElfSourceError, ElfSources
from bpfglobals.node.manifest import ElfSource, parse_spec

log = logging.getLogger("bpfglobals.webhook")

FETCH_DEADLINE = 3.0  # seconds; well under the webhook's timeoutSeconds (10 by default)
BACKSTOP = "the operator validates it after it is stored (status condition Degraded/InvalidSpec)"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    message: str = ""
    warnings: tuple[str, ...] = ()


class Reviewer:
    """Decides AdmissionReviews; one per webhook server, shared by its request threads."""

    def __init__(self, sources: ElfSources, fetch_deadline: float = FETCH_DEADLINE) -> None:
        self.sources = sources
        self.fetch_deadline = fetch_deadline
        # Fetches that outlive their deadline finish here and fill the cache for the next try.
        self._pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="elf-fetch")

    def review(self, review: Mapping[str, Any]) -> dict[str, Any]:
        """An AdmissionReview response for an AdmissionReview request."""
        request = review.get("request") or {}
        try:
            verdict = self.decide(request)
        except Exception as e:  # a bug here must not block every apply: allow, say why
            log.exception("admission review failed")
            verdict = Verdict(True, warnings=(f"bpfglobals webhook error ({e}); {BACKSTOP}",))
        response: dict[str, Any] = {"uid": request.get("uid", ""), "allowed": verdict.allowed}
        if not verdict.allowed:
            response["status"] = {"code": 422, "reason": "Invalid", "message": verdict.message}
        if verdict.warnings:
            response["warnings"] = list(verdict.warnings)
        return {
            "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
            "kind": "AdmissionReview",
            "response": response,
        }

    def decide(self, request: Mapping[str, Any]) -> Verdict:
        if request.get("operation") not in ("CREATE", "UPDATE"):
            return Verdict(True)
        obj = request.get("object") or {}
        meta = obj.get("metadata") or {}
        old = request.get("oldObject") or {}
        if request.get("operation") == "UPDATE" and (
            meta.get("deletionTimestamp") or obj.get("spec") == old.get("spec")
        ):
            return Verdict(True)
        name = meta.get("name") or meta.get("generateName") or "?"
        try:
            m = parse_spec(name, obj.get("spec"), require_sha256=True)
        except BpfGlobalsError as e:
            return self._deny(name, [str(e)])
        try:
            blob = self._fetch(m.elf)
        except ElfSourceError as e:
            if "sha256 mismatch" in str(e):  # fetched, and not what the spec names
                return self._deny(name, [str(e)])
            return Verdict(True, warnings=(f"not checked: {e}; {BACKSTOP}",))
        except concurrent.futures.TimeoutError:
            return Verdict(
                True,
                warnings=(
                    f"not checked: spec.elf {m.elf.describe()} not fetched within "
                    f"{self.fetch_deadline:g}s; {BACKSTOP}",
                ),
            )
        try:
            found = problems(m, self.sources.parse(blob))
        except BpfGlobalsError as e:  # not an object we can parse
            found = [f"spec.elf {m.elf.describe()}: {e}"]
        return self._deny(name, found) if found else Verdict(True)

    def _fetch(self, src: ElfSource) -> ElfBlob:
        future = self._pool.submit(self.sources.fetch, src)
        return future.result(timeout=self.fetch_deadline)

    @staticmethod
    def _deny(name: str, found: list[str]) -> Verdict:
        head = f"BpfProgram {name!r} is invalid"
        if len(found) == 1:
            return Verdict(False, f"{head}: {found[0]}")
        return Verdict(False, f"{head} ({len(found)} problems):\n" + "\n".join(found))
