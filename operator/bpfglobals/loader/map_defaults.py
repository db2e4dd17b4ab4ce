"""What libbpf fills in or adjusts in a map definition before MAP_CREATE, per map type.

These depend on the machine (CPU count, page size), so they happen at load, not at parse.
"""

from __future__ import annotations

import functools
import os

from bpfglobals.elf.map_types import PERF_EVENT_ARRAY, RING_BUFFERS
from bpfglobals.elf.model import MapSpec
from bpfglobals.loader import log
from bpfglobals.loader.errors import LoadError

POSSIBLE_CPUS = "/sys/devices/system/cpu/possible"


@functools.cache
def possible_cpus(path: str = POSSIBLE_CPUS) -> int:
    """How many CPUs the kernel may ever bring up: the CPUs listed in `path` ("0-3,8").
    Read once per process: the set is fixed at boot, and every variant asks again."""
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError as e:
        raise LoadError(f"cannot read {path} to size a perf event array: {e.strerror}") from e
    return count_cpu_list(text, path)


def count_cpu_list(text: str, where: str) -> int:
    count = 0
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()) or (hi and int(hi) < int(lo)):
            raise LoadError(f"{where}: '{text}' is not a CPU list")
        count += int(hi or lo) - int(lo) + 1
    if count == 0:
        raise LoadError(f"{where}: empty CPU list")
    return count


def ring_buffer_size(size: int, page: int) -> int:
    """libbpf's adjust_ringbuf_sz: the kernel wants a power-of-2 number of pages; a size that
    is not one becomes the smallest such size above it (0 stays 0 so the kernel says so)."""
    if size == 0 or (size % page == 0 and _pow2(size // page)):
        return size
    pages = 1
    while pages * page <= size:
        pages <<= 1
    return pages * page if pages * page < 1 << 32 else size


def _pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def effective_max_entries(spec: MapSpec) -> int:
    if spec.type_id == PERF_EVENT_ARRAY and spec.max_entries == 0:
        n = possible_cpus()
        log.info("map '%s': perf event array sized to %d possible CPUs", spec.name, n)
        return n
    if spec.type_id in RING_BUFFERS:
        size = ring_buffer_size(spec.max_entries, os.sysconf("SC_PAGE_SIZE"))
        if size != spec.max_entries:
            log.info(
                "map '%s': ring buffer size %d rounded to %d", spec.name, spec.max_entries, size
            )
        return size
    return spec.max_entries
