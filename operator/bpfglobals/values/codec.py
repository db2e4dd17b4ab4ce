"""Typed values <-> bytes by BTF type (the heart of "globals as configuration").

`encode` writes a user value (as it comes from YAML/JSON) over a base image (the variable's
current bytes, so struct members left out keep their defaults); `decode` gives back what a
user would write. Conventions beyond C (documented in the README):
- typedefs `__be16/__be32/__be64` are stored in network byte order;
- any 4-byte integer accepts a dotted IPv4 string, stored in network order (as the packet
  has it), `__u8[6]` a MAC string, `__u8[16]` and `struct in6_addr` an IPv6 string;
- integers accept "0x1f"-style strings; `{"bytes": "<hex>"}` is a raw form for any type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from bpfglobals.elf.btf import MAX_RESOLVE_DEPTH, Btf
from bpfglobals.elf.btf_types import (
    Array,
    Enum,
    Float,
    Int,
    IntEncoding,
    Member,
    Modifier,
    Ptr,
    Struct,
    Typedef,
)
from bpfglobals.values.errors import Where

BIG_ENDIAN_TYPEDEFS = {"__be16", "__be32", "__be64"}
_MAC = re.compile(r"^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$")


def encode(btf: Btf, type_id: int, value: object, base: bytes, where: Where) -> bytes:
    buf = bytearray(base)
    _encode(btf, type_id, value, buf, 0, where)
    return bytes(buf)


def decode(btf: Btf, type_id: int, data: bytes) -> object:
    return _decode(btf, type_id, data, 0)


# -- type helpers ---------------------------------------------------------------------------


def _resolve(btf: Btf, type_id: int) -> tuple[object, bool]:
    """The concrete type and whether a `__beNN` typedef was on the way."""
    big = False
    for _ in range(MAX_RESOLVE_DEPTH):
        t = btf[type_id]
        if isinstance(t, Typedef):
            big = big or t.name in BIG_ENDIAN_TYPEDEFS
        elif not isinstance(t, Modifier):
            return t, big
        type_id = t.type
    return btf[type_id], big  # Btf.resolve would raise on a loop; reach the same error there


def _is_byte(t: object) -> bool:
    return isinstance(t, Int) and t.size == 1 and t.encoding != IntEncoding.BOOL


def _is_char(t: object) -> bool:
    return _is_byte(t) and (t.name in ("char", "signed char") or t.encoding == IntEncoding.CHAR)


def int_range(bits: int, signed: bool) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def _raw(value: object) -> str | None:
    if isinstance(value, Mapping) and list(value) == ["bytes"] and isinstance(value["bytes"], str):
        return value["bytes"]
    return None


# -- encoding -------------------------------------------------------------------------------


def _encode(btf: Btf, tid: int, value: object, buf: bytearray, off: int, where: Where) -> None:
    t, big = _resolve(btf, tid)
    size = btf.size_of(tid)
    raw = _raw(value)
    if raw is not None and not (isinstance(t, Struct) and _member_names(btf, t) == ["bytes"]):
        try:
            data = bytes.fromhex(raw.replace(":", "").replace(" ", ""))
        except ValueError:
            raise where.error(f"'bytes' must be hex digits, got {raw!r}") from None
        if len(data) != size:
            raise where.error(f"raw 'bytes' must be exactly {size} bytes, got {len(data)}")
        buf[off : off + size] = data
        return
    match t:
        case Int():
            buf[off : off + size] = _int_bytes(t, big, value, where)
        case Enum():
            buf[off : off + size] = _enum_bytes(t, value, where)
        case Array():
            _encode_array(btf, t, value, buf, off, where)
        case Struct():
            _encode_struct(btf, t, value, buf, off, where)
        case Ptr():
            raise where.error("pointers cannot be configured (an address means nothing here)")
        case Float():
            raise where.error("floating-point globals are not supported (BPF has no FPU)")
        case _:
            raise where.error(f"a {t.kind.name} cannot hold a value")


def _to_int(value: object, where: Where, *, allow_bool: bool) -> int:
    if isinstance(value, bool):
        if allow_bool:
            return int(value)
        raise where.error(f"expected an integer, got the boolean {str(value).lower()}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip().replace("_", ""), 0)
        except ValueError:
            pass
    raise where.error(f"expected an integer, got {value!r}")


def _ipv4(value: object) -> bytes | None:
    if isinstance(value, str) and value.count(".") == 3:
        import ipaddress  # here: a start-up cost of every `load` otherwise (issue 16)

        try:
            return ipaddress.IPv4Address(value.strip()).packed
        except ValueError:
            return None
    return None


def _int_bytes(t: Int, big: bool, value: object, where: Where) -> bytes:
    if t.size == 4 and (addr := _ipv4(value)) is not None:
        return addr  # network order whatever the declared type
    if t.encoding == IntEncoding.BOOL:
        if value not in (True, False, 0, 1) or isinstance(value, str):
            raise where.error(f"expected true or false, got {value!r}")
        return bytes([int(value)]) + bytes(t.size - 1)
    if _is_char(t) and isinstance(value, str) and len(value.encode()) == 1:
        n = value.encode()[0]
    else:
        n = _to_int(value, where, allow_bool=False)
    lo, hi = int_range(t.bits, t.signed)
    if not lo <= n <= hi:
        raise where.error(
            f"{n} is out of range for {t.bits}-bit {'signed' if t.signed else 'unsigned'} "
            f"integer [{lo}, {hi}]"
        )
    return (n & ((1 << (8 * t.size)) - 1)).to_bytes(t.size, "big" if big else "little")


def _enum_bytes(t: Enum, value: object, where: Where) -> bytes:
    if isinstance(value, str) and not re.fullmatch(r"-?(0x)?[0-9a-fA-F]+", value.strip()):
        for v in t.values:
            if v.name == value:
                n = v.value
                break
        else:
            names = ", ".join(v.name for v in t.values)
            raise where.error(f"{value!r} is not a member of enum {t.name} ({names})")
    else:
        n = _to_int(value, where, allow_bool=False)
    signed = t.signed or any(v.value < 0 for v in t.values)
    lo, hi = int_range(8 * t.size, signed)
    if not lo <= n <= hi:
        raise where.error(f"{n} is out of range for a {t.size}-byte enum [{lo}, {hi}]")
    return (n & ((1 << (8 * t.size)) - 1)).to_bytes(t.size, "little")


def _encode_array(btf: Btf, t: Array, value: object, buf, off: int, where: Where) -> None:
    elem, _ = _resolve(btf, t.type)
    esize = btf.size_of(t.type)
    n = t.nelems
    if isinstance(value, str):
        if _is_char(elem):
            data = value.encode()
            if len(data) > n - 1:
                raise where.error(
                    f"string of {len(data)} bytes does not fit: at most {n - 1} bytes plus NUL"
                )
            buf[off : off + n] = data + bytes(n - len(data))
            return
        if _is_byte(elem) and n == 6 and _MAC.match(value.strip()):
            buf[off : off + 6] = bytes.fromhex(re.sub("[:-]", "", value.strip()))
            return
        if _is_byte(elem) and n in (4, 16):
            packed = _ip_packed(value, 16 if n == 16 else 4)
            if packed is not None:
                buf[off : off + n] = packed
                return
        raise where.error(f"expected a list of {n} elements, got the string {value!r}")
    if not isinstance(value, Sequence) or isinstance(value, bytes | bytearray):
        raise where.error(f"expected a list of {n} elements, got {type(value).__name__}")
    if len(value) != n:
        raise where.error(f"expected exactly {n} elements, got {len(value)}")
    for i, item in enumerate(value):
        _encode(btf, t.type, item, buf, off + i * esize, where.at(f"[{i}]"))


def _ip_packed(value: str, size: int) -> bytes | None:
    import ipaddress

    try:
        addr = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    return addr.packed if len(addr.packed) == size else None


def _flat_members(btf: Btf, t: Struct, base_bits: int = 0) -> list[tuple[Member, int]]:
    """Members by name with absolute bit offsets; anonymous struct/union members flattened."""
    out = []
    for m in t.members:
        inner, _ = _resolve(btf, m.type)
        if not m.name and isinstance(inner, Struct):
            out.extend(_flat_members(btf, inner, base_bits + m.bit_offset))
        else:
            out.append((m, base_bits + m.bit_offset))
    return out


def _member_names(btf: Btf, t: Struct) -> list[str]:
    return [m.name for m, _ in _flat_members(btf, t)]


def _encode_struct(btf: Btf, t: Struct, value: object, buf, off: int, where: Where) -> None:
    if isinstance(value, str) and t.name == "in6_addr" and t.size == 16:
        packed = _ip_packed(value, 16)
        if packed is None:
            raise where.error(f"{value!r} is not an IPv6 address")
        buf[off : off + 16] = packed
        return
    if not isinstance(value, Mapping):
        raise where.error(f"expected a mapping of member names, got {type(value).__name__}")
    members = {m.name: (m, bits) for m, bits in _flat_members(btf, t)}
    unknown = [k for k in value if k not in members]
    if unknown:
        raise where.error(f"unknown member '{unknown[0]}' (members: {', '.join(members)})")
    if t.is_union and len(value) > 1:
        raise where.error(f"a union holds one member at a time, got {', '.join(map(str, value))}")
    for name, item in value.items():
        m, bits = members[name]
        here = where.at(f".{name}")
        if m.bitfield_size:
            _encode_bitfield(btf, m, bits, item, buf, off, here)
        else:
            _encode(btf, m.type, item, buf, off + bits // 8, here)


def _encode_bitfield(btf: Btf, m: Member, bits: int, value, buf, off: int, where: Where) -> None:
    t, _ = _resolve(btf, m.type)
    signed = (isinstance(t, Int) and t.signed) or (isinstance(t, Enum) and t.signed)
    if isinstance(t, Enum) and isinstance(value, str):
        n = int.from_bytes(_enum_bytes(t, value, where), "little", signed=True)
    else:
        n = _to_int(value, where, allow_bool=isinstance(t, Int) and t.encoding == IntEncoding.BOOL)
    lo, hi = int_range(m.bitfield_size, signed)
    if not lo <= n <= hi:
        raise where.error(f"{n} is out of range for a {m.bitfield_size}-bit field [{lo}, {hi}]")
    first, last = off + bits // 8, off + (bits + m.bitfield_size + 7) // 8
    word = int.from_bytes(buf[first:last], "little")
    shift, mask = bits % 8, (1 << m.bitfield_size) - 1
    word = (word & ~(mask << shift)) | ((n & mask) << shift)
    buf[first:last] = word.to_bytes(last - first, "little")


# -- decoding -------------------------------------------------------------------------------


def _decode(btf: Btf, tid: int, data: bytes, off: int) -> object:
    t, big = _resolve(btf, tid)
    size = btf.size_of(tid)
    chunk = data[off : off + size]
    match t:
        case Int() if t.encoding == IntEncoding.BOOL:
            return any(chunk)
        case Int():
            if big and t.size == 4:
                import ipaddress

                return str(ipaddress.IPv4Address(chunk))
            n = int.from_bytes(chunk, "big" if big else "little", signed=t.signed)
            return n
        case Enum():
            n = int.from_bytes(
                chunk, "little", signed=t.signed or any(v.value < 0 for v in t.values)
            )
            return next((v.name for v in t.values if v.value == n), n)
        case Array():
            elem, _ = _resolve(btf, t.type)
            if _is_char(elem):
                text = chunk.split(b"\0", 1)[0]
                try:
                    s = text.decode()
                    if s.isprintable() and all(b == 0 for b in chunk[len(text) :]):
                        return s
                except UnicodeDecodeError:
                    pass
            if _is_byte(elem) and t.nelems == 6:
                return ":".join(f"{b:02x}" for b in chunk)
            if _is_byte(elem) and t.nelems == 16:
                import ipaddress

                return str(ipaddress.IPv6Address(chunk))
            esize = btf.size_of(t.type)
            return [_decode(btf, t.type, data, off + i * esize) for i in range(t.nelems)]
        case Struct() if t.name == "in6_addr" and t.size == 16:
            import ipaddress

            return str(ipaddress.IPv6Address(chunk))
        case Struct():
            out = {}
            for m, bits in _flat_members(btf, t):
                if m.bitfield_size:
                    mt, _ = _resolve(btf, m.type)
                    first = off + bits // 8
                    word = int.from_bytes(data[first : first + 8], "little")
                    n = (word >> (bits % 8)) & ((1 << m.bitfield_size) - 1)
                    if isinstance(mt, Int | Enum) and mt.signed and n >> (m.bitfield_size - 1):
                        n -= 1 << m.bitfield_size
                    out[m.name] = n
                else:
                    out[m.name] = _decode(btf, m.type, data, off + bits // 8)
                if t.is_union:
                    break
            return out
    return {"bytes": chunk.hex()}
