"""Bounds-checked little-endian reads: the one place malformed input turns into ElfError.

Every parser in this layer reads through `Reader`, so a truncated or corrupted object raises
the documented error type with the offset, never `struct.error` or `IndexError`.
"""

from __future__ import annotations

import struct

from bpfglobals.errors import ElfError

_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")


class Reader:
    """A cursor over `data[start:end]`; `what` names the region in error messages."""

    def __init__(
        self, data: bytes, what: str, start: int = 0, end: int | None = None, error=ElfError
    ) -> None:
        self.data = data
        self.what = what
        self.pos = start
        self.end = len(data) if end is None else end
        self.error = error
        if not 0 <= start <= self.end <= len(data):
            raise error(f"{what}: region [{start}, {end}) lies outside the {len(data)}-byte data")

    def remaining(self) -> int:
        return self.end - self.pos

    def need(self, n: int) -> None:
        if n < 0 or self.pos + n > self.end:
            raise self.error(
                f"{self.what}: truncated at byte {self.pos} (need {n} more bytes, "
                f"have {self.end - self.pos})"
            )

    def u32(self) -> int:
        self.need(4)
        (v,) = _U32.unpack_from(self.data, self.pos)
        self.pos += 4
        return v

    def i32(self) -> int:
        self.need(4)
        (v,) = _I32.unpack_from(self.data, self.pos)
        self.pos += 4
        return v

    def unpack(self, fmt: struct.Struct) -> tuple:
        self.need(fmt.size)
        v = fmt.unpack_from(self.data, self.pos)
        self.pos += fmt.size
        return v

    def take(self, n: int) -> bytes:
        self.need(n)
        v = self.data[self.pos : self.pos + n]
        self.pos += n
        return v


def cstring(table: bytes, offset: int, what: str, error=ElfError) -> str:
    """The NUL-terminated string at `offset` in a string table."""
    if not 0 <= offset < len(table):
        if offset == 0:
            return ""
        raise error(f"{what}: string offset {offset} outside the {len(table)}-byte table")
    end = table.find(b"\0", offset)
    if end < 0:
        raise error(f"{what}: string at offset {offset} is not NUL-terminated")
    try:
        return table[offset:end].decode()
    except UnicodeDecodeError as e:
        raise error(f"{what}: string at offset {offset} is not valid UTF-8") from e
