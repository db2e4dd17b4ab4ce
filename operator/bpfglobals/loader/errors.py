"""Loader errors: what failed, in which program/map, and the kernel's own words."""

from __future__ import annotations

from bpfglobals.errors import BpfGlobalsError

LOG_TAIL_LINES = 12


class LoadError(BpfGlobalsError):
    """Loading an object failed; everything created so far has been released."""


class VerifierError(LoadError):
    """The verifier rejected a program (cilium/ebpf's VerifierError).

    `str()` carries the tail of the log, which is where the verifier says why; `.log` holds
    all of it for `--verbose`/debugging.
    """

    def __init__(self, program: str, section: str, errno_name: str, log: str) -> None:
        self.program = program
        self.section = section
        self.log = log
        lines = [ln for ln in log.rstrip().splitlines() if ln.strip()]
        tail = "\n".join(f"  | {ln}" for ln in lines[-LOG_TAIL_LINES:])
        more = (
            f" (last {LOG_TAIL_LINES} of {len(lines)} log lines)"
            if len(lines) > LOG_TAIL_LINES
            else ""
        )
        super().__init__(
            f"program '{program}' (section {section}) was rejected by the verifier "
            f"({errno_name}){more}:\n{tail}"
        )

    def tail(self, n: int = LOG_TAIL_LINES) -> list[str]:
        return [ln for ln in self.log.rstrip().splitlines() if ln.strip()][-n:]
