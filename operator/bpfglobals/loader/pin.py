"""Pin a load's programs and maps in bpffs: the one pinning path of `load --pin` and the node
core's variants. Every pin made is appended to `created`, so the caller can undo them."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable

from bpfglobals.kernel.bpffs import pin_name
from bpfglobals.kernel.objects import obj_pin
from bpfglobals.loader.errors import LoadError
from bpfglobals.loader.loaded import LoadedMap, LoadedProgram


def pin_programs(progs: Iterable[LoadedProgram], directory: str, created: list[str]) -> None:
    for p in progs:
        path = os.path.join(directory, pin_name(p.name))
        obj_pin(p.fd, path)
        created.append(path)
        p.pin = path


def pin_maps(
    maps: Iterable[LoadedMap],
    path_of: Callable[[LoadedMap], str],
    created: list[str],
    *,
    replace: bool = False,
) -> None:
    """Pin each map at `path_of(map)`. A reused map already pinned there stays. Another object
    at the path is an error, unless `replace` (the caller owns the directory: a new variant
    replacing a shared map, e.g. with resetBss)."""
    for m in maps:
        path = path_of(m)
        if m.pin is not None and os.path.dirname(m.pin) != os.path.dirname(path):
            continue  # pinned where its definition says (iproute2's PIN_GLOBAL_NS)
        if os.path.exists(path):
            if m.reused and (replace or m.pin == path):
                continue  # the caller handed in (or the loader adopted) the map pinned there
            if not replace:
                raise LoadError(f"{path} already exists; unload {os.path.dirname(path)} first")
            os.unlink(path)
        obj_pin(m.fd, path)
        created.append(path)
        m.pin = path


def unpin(paths: list[str]) -> None:
    for path in reversed(paths):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
