"""The parsed-object cache: a `bpfglobals load` of an object met before skips the parser.

Parsing imports pyelftools, whose import is most of a one-shot `load`'s start-up (issue 16);
the parse itself is a pure function of the file's bytes, its name (the internal maps are named
after it) and the parser's code. So each parse is kept under the sha256 of the bytes and the
name, in a file that also records the format, bpfglobals' version, the model's schema and a
fingerprint of the parser's source files: an entry written by another version or another
parser is a miss, read again from the ELF and written anew.

Where: `$XDG_CACHE_HOME/bpfglobals/objects`, else `/var/cache/bpfglobals/objects` for root,
else `~/.cache/bpfglobals/objects`. Entries are read with `marshal` (plain values only,
checked by `object_codec`), and only from a directory and a file owned by this user that no
one else can write; anything else — wrong owner or mode, a torn or corrupt file, another
version — is ignored and replaced, never trusted. Writes go to a temporary file renamed over
the entry, so a reader sees a whole entry or none.
"""

from __future__ import annotations

import marshal
import os
import stat

import bpfglobals
from bpfglobals.elf.model import ObjectSpec
from bpfglobals.elf.object_codec import SCHEMA, CodecError, from_plain, to_plain
from bpfglobals.elf.source_file import read_source
from bpfglobals.frozen import frozen

try:  # the C sha256 alone: hashlib loads OpenSSL's libcrypto (several ms of start-up)
    from _sha256 import sha256
except ImportError:  # pragma: no cover - other interpreters
    from hashlib import sha256

FORMAT = 1
_MAGIC = "bpfglobals parsed object"
_PARSER_FILES = ("frozen.py", "errors.py")  # besides elf/*.py: what a parse depends on


def default_cache_dir() -> str:
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):  # the XDG spec: a relative value is ignored
        return os.path.join(xdg, "bpfglobals", "objects")
    if os.geteuid() == 0:
        return "/var/cache/bpfglobals/objects"
    return os.path.join(os.path.expanduser("~"), ".cache", "bpfglobals", "objects")


@frozen
class CachedRead:
    """What `read_object_cached` did: the object, whether it came from the cache, and why an
    entry was not used or not written (None when nothing went wrong)."""

    object: ObjectSpec
    hit: bool
    problem: str | None


def read_object_cached(path: str | os.PathLike[str], cache_dir: str | None = None) -> CachedRead:
    """`read_object(path)`, from the cache when this object's parse is there."""
    p, data = read_source(path)
    name = os.path.basename(p)
    directory = cache_dir or default_cache_dir()
    digest = sha256(data).hexdigest()
    entry = os.path.join(directory, sha256(f"{digest}\0{name}".encode()).hexdigest())
    key = (_MAGIC, FORMAT, bpfglobals.__version__, SCHEMA, _fingerprint(), digest, name)
    obj, why = _read_entry(directory, entry, key, p, data)
    if obj is not None:
        return CachedRead(obj, True, None)
    from bpfglobals.elf.reader import read_object_bytes  # the parser, with pyelftools

    obj = read_object_bytes(data, name, p)
    problem = _write_entry(directory, entry, key, obj)
    if problem is None and why is not None:
        problem = f"cache entry {entry} {why}; replaced"
    return CachedRead(obj, False, problem)


def _fingerprint() -> tuple[tuple[str, int, int], ...]:
    """The parser's source files (name, size, mtime): another parser, another key."""
    elf_dir = os.path.dirname(__file__)
    pkg_dir = os.path.dirname(elf_dir)
    found = [(f"elf/{e.name}", e.stat()) for e in os.scandir(elf_dir) if e.name.endswith(".py")]
    found += [(n, os.stat(os.path.join(pkg_dir, n))) for n in _PARSER_FILES]
    return tuple(sorted((n, st.st_size, st.st_mtime_ns) for n, st in found))


def _private(st: os.stat_result, kind: object) -> bool:
    """Ours alone: owned by this user, writable by no one else, of the expected kind."""
    return kind(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _read_entry(
    directory: str, entry: str, key: tuple, path: str, data: bytes
) -> tuple[ObjectSpec | None, str | None]:
    """(the cached object, None), or (None, why the entry was not used; None if absent)."""
    try:
        if not _private(os.lstat(directory), stat.S_ISDIR):
            return None, f"not read: {directory} is not a directory of this user only"
        fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, None
    except OSError as e:
        return None, f"not read: {e.strerror}"
    try:
        if not _private(os.fstat(fd), stat.S_ISREG):
            return None, "not read: not a file of this user only"
        with open(fd, "rb", closefd=False) as f:
            blob = f.read()
    except OSError as e:
        return None, f"not read: {e.strerror}"
    finally:
        os.close(fd)
    try:
        stored = marshal.loads(blob)
        if type(stored) is not tuple or len(stored) != 3:
            return None, "is not a cache entry"
        stored_key, payload_digest, payload = stored
        if stored_key != key:
            return None, "was written by another parser, version or object"
        if type(payload) is not bytes or payload_digest != sha256(payload).hexdigest():
            return None, "is corrupt (its digest does not match)"
        return from_plain(marshal.loads(payload), path, data), None
    except (EOFError, ValueError, TypeError, CodecError) as e:
        return None, f"is corrupt ({type(e).__name__}: {e})"


def _write_entry(directory: str, entry: str, key: tuple, obj: ObjectSpec) -> str | None:
    """Store `obj`'s parse; why not, if it could not be stored."""
    try:
        payload = marshal.dumps(to_plain(obj))
    except (CodecError, ValueError) as e:  # ValueError: marshal met a value it cannot write
        return f"parsed object not cached: {e}"
    blob = marshal.dumps((key, sha256(payload).hexdigest(), payload))
    tmp = f"{entry}.tmp{os.getpid()}"
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not _private(os.lstat(directory), stat.S_ISDIR):
            return f"parsed object not cached: {directory} is not a directory of this user only"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with open(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, entry)
    except OSError as e:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        return f"parsed object not cached in {directory}: {e.strerror}"
    return None
