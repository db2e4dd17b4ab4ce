"""List once, then watch: the one loop that keeps a local copy of some BpfProgramNodes current
(each agent's own node's, and the operator's view of all of them).

Each watch request resumes from the last resourceVersion seen (watch bookmarks keep it current
while nothing changes), so in steady state nothing is listed again; only `410 Gone` (the version
was compacted away) makes it list. Lists are paged, so a 50,000-object list never arrives (or is
held) in one piece. Errors back off (1 s doubling to 30 s) and resume from the version held.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

from kubernetes import client, watch

from bpfglobals.k8s.client import TIMEOUT, Api
from bpfglobals.k8s.metrics import API_LISTS
from bpfglobals.k8s.resources import GROUP, VERSION

log = logging.getLogger("bpfglobals.informer")

# A watch request ends after this many seconds (randomised, so that thousands of watchers do
# not reconnect in step) and resumes where it stopped: a cheap request, no LIST. Short enough
# that each end proves the connection alive (the health beat) even when no event or bookmark
# came; a loaded apiserver was measured sending no bookmark for over 90 s.
WATCH_SECONDS = (50, 60)
# No byte for this long: the connection is dead (a partition that drops packets silently).
READ_TIMEOUT = 90
PAGE = 500


class Informer:
    def __init__(
        self,
        api: Api,
        plural: str,
        selector: str,
        on_list: Callable[[list[dict]], None],
        on_event: Callable[[str, dict], None],
        on_alive: Callable[[], None] = lambda: None,
        component: str = "agent",
        field_selector: str = "",
        watch_seconds: tuple[int, int] = WATCH_SECONDS,
    ) -> None:
        self.api, self.plural, self.selector = api, plural, selector
        # `metadata.name=X`: the apiserver offers such a watch only the events of X (it keeps
        # name-scoped watchers apart); a label selector is matched against every event
        self.field_selector = field_selector
        self.watch_seconds = watch_seconds
        self.on_list, self.on_event, self.on_alive = on_list, on_event, on_alive
        self.component = component
        self.stop = threading.Event()
        self.lists = 0  # LISTs made (steady state: one per process, and one per 410)
        self.version: str | None = None  # the resourceVersion the next watch resumes from
        self.synced = threading.Event()  # set once the first list was delivered

    def run(self) -> None:
        backoff = 1.0
        while not self.stop.is_set():
            try:
                if self.version is None:
                    self.version = self._list()
                self.version = self._watch(self.version)
                backoff = 1.0
            except client.ApiException as e:
                if e.status == 410:  # our version was compacted away: the one reason to relist
                    log.info("%s: resourceVersion %s is gone; relisting", self.plural, self.version)
                    self.version = None
                    continue
                backoff = self._retry(e, backoff)
            except Exception as e:  # apiserver gone, connection reset, ...
                backoff = self._retry(e, backoff)

    def _retry(self, e: Exception, backoff: float) -> float:
        log.warning("watch failed (%s); retrying in %.0fs", e, backoff)
        self.on_alive()  # alive and retrying: an outage must not make kubelet restart us
        self.stop.wait(backoff)
        return min(backoff * 2, 30.0)

    def _list(self) -> str:
        items: list[dict] = []
        token = None
        while True:
            page = self.api.custom.list_cluster_custom_object(
                GROUP,
                VERSION,
                self.plural,
                label_selector=self.selector,
                field_selector=self.field_selector,
                limit=PAGE,
                _continue=token,
                _request_timeout=TIMEOUT,
            )
            items.extend(page["items"])
            token = page["metadata"].get("continue")
            if not token:
                break
        self.lists += 1
        API_LISTS.labels(self.component).inc()
        self.on_alive()
        self.on_list(items)
        self.synced.set()
        return page["metadata"]["resourceVersion"]

    def _watch(self, version: str) -> str:
        """One watch request from `version`; returns the version to resume from."""
        w = watch.Watch()
        for ev in w.stream(
            self.api.custom.list_cluster_custom_object,
            GROUP,
            VERSION,
            self.plural,
            label_selector=self.selector,
            field_selector=self.field_selector,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=random.randint(*self.watch_seconds),
            _request_timeout=(10, READ_TIMEOUT),
        ):
            self.on_alive()
            if ev["type"] != "BOOKMARK":
                self.on_event(ev["type"], ev["object"])
            if self.stop.is_set():
                w.stop()
        # the server ended the request (its timeout): resume from the last version seen
        self.on_alive()
        return w.resource_version or version
