"""The apply transaction's undo log: undo on failure only, newest first, releases always."""

from __future__ import annotations

import pytest

from bpfglobals.errors import BpfGlobalsError
from bpfglobals.node.transaction import Transaction


def test_failure_undoes_newest_first_then_releases() -> None:
    done: list[str] = []
    with pytest.raises(BpfGlobalsError, match="swap 2 failed"), Transaction("t") as tx:
        tx.on_exit(done.append, "close fd")
        tx.on_undo(done.append, "remove variant")
        tx.on_undo(done.append, "swap 1 back")
        raise BpfGlobalsError("swap 2 failed")
    assert done == ["swap 1 back", "remove variant", "close fd"]


def test_success_keeps_every_step_and_releases() -> None:
    done: list[str] = []
    with Transaction("t") as tx:
        tx.on_exit(done.append, "close fd")
        tx.on_undo(done.append, "remove variant")
    assert done == ["close fd"]


def test_a_failing_undo_step_does_not_stop_the_others_nor_hide_the_error() -> None:
    done: list[str] = []

    def broken() -> None:
        raise OSError("EBUSY")

    with pytest.raises(BpfGlobalsError, match="the cause"), Transaction("t") as tx:
        tx.on_undo(done.append, "first step back")
        tx.on_undo(broken)
        tx.on_exit(done.append, "close fd")
        raise BpfGlobalsError("the cause")
    assert done == ["first step back", "close fd"]
    assert [str(e) for e in tx.undo_failures] == ["EBUSY"]
