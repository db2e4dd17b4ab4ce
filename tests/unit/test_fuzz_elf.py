"""10,000 corrupted objects: the reader raises only ElfError, with a message, and never hangs."""

from __future__ import annotations

import random
import struct

import pytest

from bpfglobals.elf import read_object_bytes
from bpfglobals.elf.elf_file import read_elf
from bpfglobals.errors import ElfError

MUTATIONS = 10_000
FIXTURES = ["globals", "calls", "maps", "legacy_maps"]


def _regions(data: bytes) -> list[tuple[int, int]]:
    """Byte ranges worth aiming at: ELF header, section headers, .BTF, .BTF.ext, symtab."""
    img = read_elf(data, "fixture")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    regions = [(0, 64), (shoff, len(data) - shoff)]
    for s in img.sections:
        if s.name in (".BTF", ".BTF.ext", ".symtab", ".strtab") or s.name.startswith(".rel"):
            regions.append((s.offset, s.size))
    return regions


def _mutate(rng: random.Random, data: bytes, regions: list[tuple[int, int]]) -> bytes:
    buf = bytearray(data)
    how = rng.randrange(6)
    start, size = rng.choice(regions)
    pos = start + rng.randrange(max(size, 1))
    pos = min(pos, len(buf) - 1)
    if how == 0:  # bit flips
        for _ in range(rng.randint(1, 8)):
            p = min(start + rng.randrange(max(size, 1)), len(buf) - 1)
            buf[p] ^= 1 << rng.randrange(8)
    elif how == 1:  # a run of random bytes
        n = rng.randint(1, 16)
        buf[pos : pos + n] = rng.randbytes(n)
    elif how == 2:  # truncation
        del buf[rng.randrange(len(buf)) :]
    elif how == 3:  # an interesting 32-bit value (sizes, offsets, counts)
        val = rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, len(buf), 0xFFFF, 8])
        buf[pos : pos + 4] = struct.pack("<I", val)[: len(buf) - pos]
    elif how == 4:  # zero a region
        n = rng.randint(1, 64)
        buf[pos : pos + n] = bytes(len(buf[pos : pos + n]))
    else:  # copy bytes from elsewhere
        n = rng.randint(4, 32)
        src = rng.randrange(len(buf))
        buf[pos : pos + n] = data[src : src + n]
    return bytes(buf)


@pytest.mark.timeout(120)
def test_mutated_objects_raise_only_elf_error(bpf_object) -> None:
    rng = random.Random(20261124)
    originals = [bpf_object(f).read_bytes() for f in FIXTURES]
    regions = [_regions(d) for d in originals]
    outcomes = {"parsed": 0, "rejected": 0}
    for i in range(MUTATIONS):
        k = i % len(originals)
        data = _mutate(rng, originals[k], regions[k])
        try:
            read_object_bytes(data, f"fuzz{i}.bpf.o")
            outcomes["parsed"] += 1
        except ElfError as e:
            assert str(e).strip(), "an error without a message"
            outcomes["rejected"] += 1
        except Exception as e:  # pragma: no cover - the failure we look for
            pytest.fail(f"mutation {i} of {FIXTURES[k]} raised {type(e).__name__}: {e}")
    # both outcomes must occur, or the mutations are not reaching the parser
    assert outcomes["parsed"] > 100 and outcomes["rejected"] > 1000, outcomes


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x7fELF",
        b"not an elf at all",
        b"\x7fELF" + bytes(60),
        b"\x7fELF\x02\x01" + b"\xff" * 200,
    ],
)
def test_garbage_is_an_elf_error(data: bytes) -> None:
    with pytest.raises(ElfError, match=r"junk\.o"):
        read_object_bytes(data, "junk.o")
