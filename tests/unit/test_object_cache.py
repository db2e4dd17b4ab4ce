"""The parsed-object cache (elf/object_cache.py): a hit is the parse itself, and an entry that
is corrupt, old, someone else's or reachable by others is ignored and replaced, never trusted."""

from __future__ import annotations

import marshal
import os

import pytest

import bpfglobals
from bpfglobals.elf import object_cache as oc
from bpfglobals.elf import read_object
from bpfglobals.elf.object_codec import CodecError, from_plain, to_plain
from bpfglobals.elf.source_file import read_source
from tests.support.imports import modules_for
from tests.support.progs import EXAMPLES, PROGS

# every fixture that compiles on its own (core_task needs the generated vmlinux.h)
FIXTURES = sorted(p.name.removesuffix(".bpf.c") for p in PROGS.glob("*.bpf.c"))
FIXTURES = [f for f in FIXTURES if f != "core_task"]
FIXTURES += [f"examples/{p.name}" for p in sorted(EXAMPLES.glob("*.bpf.c"))]


@pytest.mark.parametrize("fixture", FIXTURES)
def test_every_fixture_round_trips_through_the_plain_form_and_marshal(bpf_object, fixture):
    obj = read_object(bpf_object(fixture))
    back = from_plain(marshal.loads(marshal.dumps(to_plain(obj))), obj.path, obj.raw)
    assert back == obj  # every field: programs, maps, data sections, BTF, .BTF.ext, externs
    assert back.btf_blob == obj.btf_blob  # the BTF handed to the kernel, byte for byte


def test_the_codec_refuses_a_class_it_does_not_know_and_a_value_that_is_not_plain(
    bpf_object,
) -> None:
    obj = read_object(bpf_object("globals"))
    obj.externs = (object(),)  # type: ignore[assignment]
    with pytest.raises(CodecError, match=r"cannot cache a builtins\.object value"):
        to_plain(obj)
    for bad in ({1, 2}, [999], [0, "x"], (1, 2), compile("1", "f", "eval")):
        with pytest.raises(CodecError):
            from_plain(bad, "p", b"")


def _entry(cache: str) -> str:
    (name,) = [n for n in os.listdir(cache) if ".tmp" not in n]
    return os.path.join(cache, name)


def test_a_second_read_is_a_hit_equal_to_the_parse(bpf_object, tmp_path) -> None:
    path, cache = bpf_object("examples/xdp_drop.bpf.c"), str(tmp_path / "c")
    first = oc.read_object_cached(path, cache)
    assert (first.hit, first.problem) == (False, None)
    assert os.stat(cache).st_mode & 0o777 == 0o700
    assert os.stat(_entry(cache)).st_mode & 0o777 == 0o600
    second = oc.read_object_cached(path, cache)
    assert (second.hit, second.problem) == (True, None)
    assert second.object == first.object == read_object(path)
    assert second.object.raw == read_source(path)[1] and second.object.path == str(path)


def test_the_same_bytes_under_another_name_are_another_entry(bpf_object, tmp_path) -> None:
    """The file name names the internal maps (xdp_drop.rodata): part of the key."""
    src, cache = bpf_object("examples/xdp_drop.bpf.c"), str(tmp_path / "c")
    other = tmp_path / "other.bpf.o"
    other.write_bytes(src.read_bytes())
    oc.read_object_cached(src, cache)
    read = oc.read_object_cached(other, cache)
    assert not read.hit and read.object == read_object(other)
    assert {d.map_name for d in read.object.data_sections} == {"other.rodata", "other.bss"}


def test_a_load_from_the_cache_imports_neither_the_parser_nor_pyelftools(
    bpf_object, tmp_path
) -> None:
    path, cache = str(bpf_object("examples/xdp_drop.bpf.c")), str(tmp_path / "c")
    oc.read_object_cached(path, cache)
    probe = (
        "import sys; from bpfglobals.elf.object_cache import read_object_cached as r;"
        f"assert r({path!r}, {cache!r}).hit;"
        "print(repr(sorted(sys.modules)), file=sys.stderr)"
    )
    import ast
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    mods = set(ast.literal_eval(out.stderr.strip().splitlines()[-1]))
    for name in ("elftools", "bpfglobals.elf.reader", "dataclasses", "hashlib", "pickle"):
        assert name not in mods, name


@pytest.mark.parametrize(
    "damage",
    ["truncated", "flipped byte", "garbage", "payload digest", "not a tuple", "other version"],
)
def test_a_damaged_or_old_entry_is_ignored_and_rewritten(
    bpf_object, tmp_path, monkeypatch, damage
) -> None:
    path, cache = bpf_object("examples/xdp_drop.bpf.c"), str(tmp_path / "c")
    oc.read_object_cached(path, cache)
    entry = _entry(cache)
    with open(entry, "rb") as f:
        blob = f.read()
    key, digest, payload = marshal.loads(blob)
    if damage == "truncated":
        blob = blob[: len(blob) // 2]
    elif damage == "flipped byte":  # inside the payload: marshal still reads it
        i = blob.index(payload) + len(payload) // 2
        blob = blob[:i] + bytes([blob[i] ^ 0x55]) + blob[i + 1 :]
    elif damage == "garbage":
        blob = os.urandom(len(blob))
    elif damage == "payload digest":  # a consistent file, but not the payload its digest says
        forged = marshal.dumps(marshal.loads(payload)[:-1])
        blob = marshal.dumps((key, digest, forged))
    elif damage == "not a tuple":
        blob = marshal.dumps([key, digest, payload])
    with open(entry, "wb") as f:
        f.write(blob)
    if damage == "other version":
        monkeypatch.setattr(bpfglobals, "__version__", "0.0.0-other")
    read = oc.read_object_cached(path, cache)
    assert not read.hit and read.object == read_object(path)
    assert read.problem and read.problem.endswith("; replaced") and entry in read.problem
    assert oc.read_object_cached(path, cache).hit  # rewritten whole


def test_a_changed_parser_source_is_another_key(bpf_object, tmp_path, monkeypatch) -> None:
    path, cache = bpf_object("examples/xdp_drop.bpf.c"), str(tmp_path / "c")
    oc.read_object_cached(path, cache)
    real = oc._fingerprint()
    monkeypatch.setattr(oc, "_fingerprint", lambda: (*real, ("elf/new.py", 1, 1)))
    read = oc.read_object_cached(path, cache)
    assert not read.hit and "another parser, version or object" in (read.problem or "")


def test_an_entry_others_can_write_is_never_read(bpf_object, tmp_path) -> None:
    path, cache = bpf_object("examples/xdp_drop.bpf.c"), str(tmp_path / "c")
    oc.read_object_cached(path, cache)
    entry = _entry(cache)
    os.chmod(entry, 0o666)
    read = oc.read_object_cached(path, cache)
    assert not read.hit and "not a file of this user only" in (read.problem or "")
    assert os.stat(entry).st_mode & 0o777 == 0o600  # replaced by one of ours
    assert oc.read_object_cached(path, cache).hit


def test_an_entry_of_another_user_is_never_read(bpf_object, tmp_path) -> None:
    path, cache = bpf_object("examples/xdp_drop.bpf.c"), str(tmp_path / "c")
    oc.read_object_cached(path, cache)
    entry = _entry(cache)
    os.chown(entry, 65534, 65534)  # nobody (these tests run as root, as the loader does)
    read = oc.read_object_cached(path, cache)
    assert not read.hit and "not a file of this user only" in (read.problem or "")
    assert os.stat(entry).st_uid == os.geteuid()


def test_a_symlinked_entry_is_not_followed(bpf_object, tmp_path) -> None:
    path, cache = bpf_object("examples/xdp_drop.bpf.c"), str(tmp_path / "c")
    oc.read_object_cached(path, cache)
    entry = _entry(cache)
    planted = tmp_path / "planted"
    os.rename(entry, planted)
    os.symlink(planted, entry)
    read = oc.read_object_cached(path, cache)
    assert not read.hit and "not read" in (read.problem or "")
    assert not os.path.islink(entry) and oc.read_object_cached(path, cache).hit


def test_a_directory_others_can_write_is_neither_read_nor_written(bpf_object, tmp_path) -> None:
    path, cache = bpf_object("examples/xdp_drop.bpf.c"), str(tmp_path / "c")
    oc.read_object_cached(path, cache)
    os.chmod(cache, 0o777)
    before = sorted(os.listdir(cache))
    read = oc.read_object_cached(path, cache)
    assert not read.hit and read.object == read_object(path)
    assert "not a directory of this user only" in (read.problem or "")
    assert sorted(os.listdir(cache)) == before


def test_an_unwritable_cache_still_parses_and_says_why(bpf_object, tmp_path) -> None:
    path = bpf_object("examples/xdp_drop.bpf.c")
    blocker = tmp_path / "file"
    blocker.write_text("")
    read = oc.read_object_cached(path, str(blocker / "c"))  # its parent is a file
    assert not read.hit and read.object == read_object(path)
    assert "not cached" in (read.problem or "") and "Not a directory" in (read.problem or "")


def test_the_cache_lives_in_xdg_cache_home_else_var_cache_for_root(monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/x/cache")
    assert oc.default_cache_dir() == "/x/cache/bpfglobals/objects"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # ignored, as the XDG spec says
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert oc.default_cache_dir() == "/var/cache/bpfglobals/objects"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("HOME", "/home/u")
    assert oc.default_cache_dir() == "/home/u/.cache/bpfglobals/objects"


def test_load_help_names_the_cache_and_its_switch() -> None:
    _, out = modules_for("load", "--help")
    assert "--no-cache" in out and "sha256" in out
