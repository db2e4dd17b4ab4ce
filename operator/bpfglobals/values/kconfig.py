"""The `.kconfig` map image: kconfig externs filled from a kernel config text (pure).

libbpf's `set_kcfg_value_*` and `bpf_object__process_kconfig_line` rules: `y`/`n`/`m` fit bool
(not `m`), `enum libbpf_tristate` (1/0/2) and char; `"..."` fits a char array (truncated to
its size with a NUL); numbers (C syntax: 10, 0x.., 0..) fit integers that hold them without
loss, char, and bool (0/1). Virtual `LINUX_*` externs come as numbers from the caller. A weak
extern no one sets stays zero; a strong one is an error.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping

from bpfglobals.elf.extern_model import ExternKind, ExternSpec, KconfigType
from bpfglobals.errors import BpfGlobalsError

TRISTATE = {"n": 0, "y": 1, "m": 2}  # enum libbpf_tristate: TRI_NO, TRI_YES, TRI_MODULE


class KconfigError(BpfGlobalsError):
    """A kconfig extern cannot be filled from the running kernel."""


def parse_config(lines: Iterable[str], source: str) -> dict[str, str]:
    """`CONFIG_X=value` lines -> {name: raw value}; the first setting of a name wins."""
    out: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\n")
        if not line.startswith("CONFIG_"):
            continue  # comments, "# CONFIG_X is not set", blank lines
        name, sep, value = line.partition("=")
        if not sep or not value:
            raise KconfigError(f"{source}:{n}: '{line}' has no value (expected CONFIG_X=value)")
        out.setdefault(name, value)
    return out


def kconfig_image(
    externs: Iterable[ExternSpec],
    size: int,
    config: Mapping[str, str] | None,
    virtual: Mapping[str, int],
    source: str,
) -> tuple[bytes, dict[str, bool]]:
    """The map value and, per extern, whether it was set (False: weak, left zero).

    `config` is None when the kernel config could not be read (`source` says why): only then
    does a CONFIG_ extern fail for lack of it, weak or not, as in libbpf.
    """
    image = bytearray(size)
    done: dict[str, bool] = {}
    for e in externs:
        if e.kind != ExternKind.KCONFIG or e.kconfig is None:
            continue
        where = f"extern (kconfig) '{e.name}'"
        if e.name.startswith("CONFIG_"):
            if config is None:
                raise KconfigError(f"{where}: cannot read the kernel config: {source}")
            raw = config.get(e.name)
            value = None if raw is None else _from_config(e, raw, f"{where} from {source}")
        elif e.name in virtual:
            value = _number(e, virtual[e.name], where)
        elif e.name.startswith("LINUX_") and e.weak:
            value = None  # an unknown virtual extern marked weak defaults to zero (libbpf)
        else:
            raise KconfigError(
                f"{where}: not a CONFIG_ option nor a virtual extern this loader provides "
                f"({', '.join(sorted(virtual))}; other LINUX_ externs must be __weak)"
            )
        if value is None:
            if not e.weak:
                raise KconfigError(
                    f"{where}: not set in {source}; declare it __weak to default to zero"
                )
            done[e.name] = False
            continue
        off = e.kconfig.offset
        image[off : off + len(value)] = value
        done[e.name] = True
    return bytes(image), done


def _from_config(e: ExternSpec, raw: str, where: str) -> bytes:
    assert e.kconfig is not None
    t = e.kconfig.type
    if raw[0] in "ynm":  # libbpf looks at the first character only
        c = raw[0]
        if t == KconfigType.BOOL:
            if c == "m":
                raise KconfigError(f"{where}: value 'm' needs a tristate or char type, not bool")
            return bytes([c == "y"])
        if t == KconfigType.TRISTATE:
            return struct.pack("<I", TRISTATE[c]).ljust(e.kconfig.size, b"\0")
        if t == KconfigType.CHAR:
            return c.encode()
        raise KconfigError(f"{where}: value '{c}' needs a bool, tristate or char type")
    if raw[0] == '"':
        if t != KconfigType.CHAR_ARRAY:
            raise KconfigError(f"{where}: value {raw} needs a char array type")
        if len(raw) < 2 or raw[-1] != '"':
            raise KconfigError(f"{where}: string value {raw} is not quoted")
        text = raw[1:-1].encode()[: e.kconfig.size - 1]
        return text + b"\0"
    num = _strtoull(raw, where)
    if t not in (KconfigType.INT, KconfigType.CHAR):
        raise KconfigError(f"{where}: value '{raw}' needs an integer type")
    return _number(e, num, where)


def _strtoull(raw: str, where: str) -> int:
    """C's strtoull(raw, _, 0) over the whole string: 0x.. hex, 0.. octal, a leading '-'
    wraps modulo 2**64."""
    text = raw.strip()
    neg = text.startswith("-")
    digits = text.lstrip("+-")
    try:
        if len(digits) > 1 and digits[0] == "0" and digits[1] not in "xX":
            num = int(digits, 8)
        else:
            num = int(digits, 0)
    except ValueError:
        raise KconfigError(f"{where}: value '{raw}' is not a valid integer") from None
    if num >= 1 << 64:
        raise KconfigError(f"{where}: value '{raw}' does not fit in 64 bits")
    return (-num) % (1 << 64) if neg else num


def _number(e: ExternSpec, value: int, where: str) -> bytes:
    """libbpf's set_kcfg_value_num: the value must fit the extern's size without loss."""
    assert e.kconfig is not None
    k = e.kconfig
    if k.type not in (KconfigType.INT, KconfigType.CHAR, KconfigType.BOOL):
        raise KconfigError(f"{where}: value {value} needs an integer, char or bool type")
    if k.type == KconfigType.BOOL and value > 1:
        raise KconfigError(f"{where}: value {value} is not a bool (0 or 1)")
    bits = k.size * 8
    value &= (1 << 64) - 1
    fits = (
        k.size == 8
        or (k.signed and (value + (1 << (bits - 1))) % (1 << 64) < 1 << bits)
        or (not k.signed and value >> bits == 0)
    )
    if not fits:
        raise KconfigError(f"{where}: value {value} does not fit in {k.size} bytes")
    return (value & ((1 << bits) - 1)).to_bytes(k.size, "little")
