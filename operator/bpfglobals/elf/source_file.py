"""Reading an object file from disk: the path spelled as `pathlib` spells it, the bytes, and
the error a user reads when the file cannot be read. Shared by the parser (`reader`) and the
parsed-object cache (`object_cache`), which must not import the parser."""

from __future__ import annotations

import os

from bpfglobals.errors import ElfError


def read_source(path: str | os.PathLike[str]) -> tuple[str, bytes]:
    """(the path, normalised; the file's bytes)."""
    # os.path, not pathlib: pathlib (with urllib, ipaddress) is a start-up cost of `load`.
    p = _pure(os.fspath(path))
    try:
        with open(p, "rb") as f:
            return p, f.read()
    except OSError as e:
        raise ElfError(f"{p}: cannot read the object: {e.strerror}") from e


def _pure(path: str) -> str:
    """`str(pathlib.PurePosixPath(path))`: repeated and trailing slashes and "." parts
    dropped, ".." kept."""
    parts = [x for x in path.split("/") if x not in ("", ".")]
    lead = "/" if path.startswith("/") else ""
    if path.startswith("//") and not path.startswith("///"):
        lead = "//"
    return lead + "/".join(parts) or "."
