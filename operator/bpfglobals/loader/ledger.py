"""The loader's account of every ELF record it met for one program.

A record is a relocation entry (`rel:<kind>`), a `.BTF.ext` func_info/line_info entry, keyed
by the ELF section it came from and its byte offset there. The loader adds a record only
where it applied it; anything it cannot apply (CO-RE relocations today) fails the load with
an error naming it. Tests walk the ELF independently and compare (applied == present).
"""

from __future__ import annotations

from collections import Counter

from bpfglobals.frozen import field, mutable

Record = tuple[str, str, int]  # (kind, ELF section, byte offset in that section)


@mutable
class Ledger:
    """The records the loader applied for one program (compared with the ELF by tests)."""

    records: set[Record] = field(default_factory=set)

    def add(self, kind: str, section: str, offset: int) -> None:
        key = (kind, section, offset)
        if key in self.records:
            raise AssertionError(f"record {key} applied twice")  # a linker bug, not input
        self.records.add(key)

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(k for k, _, _ in self.records).items()))
