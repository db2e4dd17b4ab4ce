"""An undo log for one apply (as the loader's ExitStack, but undo only runs on failure).

Each step that changes the kernel or bpffs registers how to take itself back (`on_undo`);
resources the steps borrow register how to release them (`on_exit`). On an exception the undo
steps run newest first, each one even if an earlier one failed, then the original error
propagates; on success they are dropped. Release steps run either way, after the undo steps
(an undo may still need a borrowed file descriptor).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any

log = logging.getLogger("bpfglobals.node")


class Transaction:
    def __init__(self, what: str) -> None:
        self.what = what
        self._undo: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._exit: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self.undo_failures: list[BaseException] = []

    def on_undo(self, fn: Callable[..., Any], *args: Any) -> None:
        self._undo.append((fn, args))

    def on_exit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._exit.append((fn, args))

    def __enter__(self) -> Transaction:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is not None:
                self._run(self._undo, "undoing")
        finally:
            self._undo.clear()
            self._run(self._exit, "releasing")
            self._exit.clear()

    def _run(self, steps: list[tuple[Callable[..., Any], tuple[Any, ...]]], doing: str) -> None:
        for fn, args in reversed(steps):
            try:
                fn(*args)
            except Exception as e:  # keep going: the other steps still have to run
                self.undo_failures.append(e)
                log.warning("%s: %s %s failed: %s", self.what, doing, fn.__name__, e)
