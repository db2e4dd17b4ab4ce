"""Externs against libbpf: objects with __kconfig, __ksym and kfunc externs of every kind are
loaded by bpftool (libbpf 1.1) and by us. Same verdict; when loaded, the same translated
instructions (map ids normalised), the same tag, the same test-run results, and the same
bytes in every internal map (.kconfig as filled, .bss as the programs wrote it); when
refused, the kernel's same words.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from bpfglobals.elf import read_object
from bpfglobals.loader import LoadError, VerifierError, load
from tests.support.bpftool import bpftool, map_info, map_value
from tests.support.xlated import assert_same_as_pinned

# tests/progs fixtures per extern kind, and the corpus written in the style of real tools
FIXTURES = [
    "kconfig",  # bool/tristate/char/ints/strings, LINUX_* virtuals, weak missing
    "ksyms",  # typeless (kallsyms), weak missing typed and typeless
    "ksym_percpu",  # typed per-CPU ksym: refused by this kernel (no KALLSYMS_ALL) for both
    "kfunc",  # conntrack kfuncs from XDP and tc, a weak missing kfunc
    "corpus_runqlat_style",
    "corpus_ct_filter",
]


def _load_theirs(src, pin: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bpftool", "prog", "loadall", str(src), pin], capture_output=True, text=True
    )


@pytest.mark.parametrize("fixture", FIXTURES)
def test_extern_object_loads_like_libbpf(bpf_object, fixture, tmp_path) -> None:
    src = bpf_object(fixture)
    pin = f"/sys/fs/bpf/bgt-ext-{uuid.uuid4().hex[:8]}"
    theirs = _load_theirs(src, pin)
    try:
        if theirs.returncode != 0:
            with pytest.raises(LoadError) as refused:
                load(read_object(src)).close()
            log = refused.value.log if isinstance(refused.value, VerifierError) else ""
            first = (log or str(refused.value)).strip().splitlines()[0]
            assert first in theirs.stderr, (first, theirs.stderr[-2000:])
            return
        with load(read_object(src)) as ours:
            assert ours.programs, fixture
            for name, prog in ours.programs.items():
                their = assert_same_as_pinned(prog, pin, tmp_path)
                their_maps = {map_info(i)["name"]: map_info(i) for i in their.get("map_ids", [])}
                for m in ours.maps.values():
                    if not m.internal or m.info.id not in prog.info.map_ids:
                        continue
                    twin = their_maps[m.kernel_name]
                    assert map_value(m.info.id) == map_value(twin["id"]), (name, m.name)
                    assert m.info.flags == twin["flags"], (name, m.name)
                    assert m.frozen == bool(twin.get("frozen", 0)), (name, m.name)
    finally:
        subprocess.run(["rm", "-rf", pin], check=False)


def test_kconfig_map_is_frozen_readonly_and_filled_from_the_running_kernel(bpf_object) -> None:
    obj = read_object(bpf_object("kconfig"))
    config = dict(
        line.split("=", 1)
        for line in gzip.decompress(Path("/proc/config.gz").read_bytes()).decode().splitlines()
        if line.startswith("CONFIG_")
    )
    with load(obj) as ours:
        kc = ours.maps[".kconfig"]
        assert kc.frozen and kc.kernel_name == "kconfig.kconfig"
        assert kc.info.flags == 0x480  # BPF_F_RDONLY_PROG | BPF_F_MMAPABLE, as libbpf
        image = map_value(kc.info.id)
        fields = {e.name: e.kconfig for e in obj.externs}

        def at(name: str) -> bytes:
            f = fields[name]
            return image[f.offset : f.offset + f.size]

        assert int.from_bytes(at("CONFIG_HZ"), "little") == int(config["CONFIG_HZ"])
        lv = config["CONFIG_LOCALVERSION"].strip('"').encode()
        assert at("CONFIG_LOCALVERSION") == lv + bytes(32 - len(lv))
        assert (
            at("CONFIG_DEFAULT_HOSTNAME") == config["CONFIG_DEFAULT_HOSTNAME"][1:4].encode() + b"\0"
        )
        major, minor, patch = (int(x) for x in os.uname().release.split("-")[0].split(".")[:3])
        assert int.from_bytes(at("LINUX_KERNEL_VERSION"), "little") == (
            major << 16 | minor << 8 | min(patch, 255)
        )
        for weak in (
            "CONFIG_BGT_NOT_A_REAL_OPTION",
            "CONFIG_BGT_MISSING_STR",
            "LINUX_SOMETHING_NEW",
        ):
            assert at(weak) == bytes(len(at(weak))), weak
            assert ours.externs[weak].resolved is False


def _btf_text(btf_id: int) -> str:
    return subprocess.run(
        ["bpftool", "btf", "dump", "id", str(btf_id)], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.parametrize("fixture", ["kconfig", "kfunc", "ksyms", "corpus_ct_filter"])
def test_rewritten_btf_is_what_libbpf_hands_the_kernel(bpf_object, fixture) -> None:
    """.kconfig VARs allocated at their offsets, .ksyms entries as 4-byte placeholders,
    kfuncs global with a dummy_ksym: the kernel holds the same BTF from both loaders."""
    src = bpf_object(fixture)
    pin = f"/sys/fs/bpf/bgt-btf-{uuid.uuid4().hex[:8]}"
    subprocess.run(["bpftool", "prog", "loadall", str(src), pin], check=True, capture_output=True)
    try:
        with load(read_object(src)) as ours:
            prog = next(iter(ours.programs.values()))
            their = bpftool("prog", "show", "pinned", f"{pin}/{prog.name}")
            assert _btf_text(prog.info.btf_id) == _btf_text(their["btf_id"])
    finally:
        subprocess.run(["rm", "-rf", pin], check=False)


def test_kconfig_layout_is_libbpfs(bpf_object) -> None:
    """libbpf's debug log lists each kconfig extern's offset in the .kconfig map."""
    src = bpf_object("kconfig")
    pin = f"/sys/fs/bpf/bgt-lay-{uuid.uuid4().hex[:8]}"
    log = subprocess.run(
        ["bpftool", "-d", "prog", "loadall", str(src), pin], capture_output=True, text=True
    ).stderr
    subprocess.run(["rm", "-rf", pin], check=False)
    theirs = {}
    for line in log.splitlines():
        if line.startswith("libbpf: extern (kcfg) #"):
            # "libbpf: extern (kcfg) #0: symbol 28, off 0, name CONFIG_BGT_MISSING_INT"
            parts = line.split(", ")
            theirs[parts[2].removeprefix("name ")] = int(parts[1].removeprefix("off "))
    ours = {e.name: e.kconfig.offset for e in read_object(src).externs}
    assert theirs and ours == theirs
