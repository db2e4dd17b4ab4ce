"""Where a value is going, so every encoding error names variable, C type, section and path."""

from __future__ import annotations

from bpfglobals.errors import ValueEncodingError
from bpfglobals.frozen import frozen


@frozen
class Where:
    """Which variable (and which part of its value) an encoding error concerns."""

    variable: str
    ctype: str  # the variable's C type, spelled as in the source
    section: str
    path: str = ""  # inside the value: ".lim.high", "[2]"

    def at(self, step: str) -> Where:
        return Where(self.variable, self.ctype, self.section, self.path + step)

    def error(self, why: str) -> ValueEncodingError:
        inside = f" at {self.variable}{self.path}" if self.path else ""
        return ValueEncodingError(
            f"variable '{self.variable}' ({self.ctype} in {self.section}){inside}: {why}"
        )
