"""Externs without a kernel: how they are collected and laid out, how the BTF is rewritten for
the kernel, kconfig values as libbpf encodes them, and kfuncs/ksyms found in a module's split
BTF (this machine has no module BTFs, so a made-up one stands in for it)."""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from bpfglobals.elf import encode_btf, read_object
from bpfglobals.elf.btf import Btf
from bpfglobals.elf.btf_types import (
    Datasec,
    Func,
    FuncProto,
    Int,
    IntEncoding,
    Linkage,
    Param,
    Var,
    Void,
)
from bpfglobals.elf.externs import ExternKind, ExternSpec, KconfigField, KconfigType
from bpfglobals.elf.kernel_btf import LazyBtf
from bpfglobals.kernel.constants import BPF_PSEUDO_BTF_ID, BPF_PSEUDO_KFUNC_CALL
from bpfglobals.kernel.fd import FD
from bpfglobals.loader.errors import LoadError
from bpfglobals.loader.externs import ResolvedExterns, patch_extern
from bpfglobals.loader.kernel_facts import kernel_version, read_config_lines
from bpfglobals.loader.ksyms import KernelBtf, resolve_btf_externs
from bpfglobals.loader.linker import function_table, link_program
from bpfglobals.values.kconfig import KconfigError, kconfig_image, parse_config
from tests.support.oracles import readelf_relocations, readelf_symbols


def test_kconfig_externs_are_laid_out_by_alignment_size_and_name(bpf_object) -> None:
    obj = read_object(bpf_object("kconfig"))
    kcfg = [e for e in obj.externs if e.kind == ExternKind.KCONFIG]
    keys = [(-e.kconfig.align, e.kconfig.size, e.name) for e in kcfg]
    assert keys == sorted(keys)
    end = 0
    for e in kcfg:  # packed in that order, each at its alignment
        assert e.kconfig.offset == -(-end // e.kconfig.align) * e.kconfig.align
        end = e.kconfig.offset + e.kconfig.size
    assert obj.kconfig is not None and obj.kconfig.size == end
    assert obj.kconfig.map_name == "kconfig.kconfig" and obj.kconfig.readonly
    ds = obj.btf[obj.kconfig.datasec_type_id]
    assert isinstance(ds, Datasec) and ds.size == end
    assert [v.offset for v in ds.vars] == sorted(v.offset for v in ds.vars)
    for v in ds.vars:  # the kernel refuses extern linkage: libbpf makes them allocated
        assert obj.btf[v.type].linkage == Linkage.GLOBAL


def test_ksyms_datasec_is_rewritten_as_libbpf_does(bpf_object) -> None:
    obj = read_object(bpf_object("kfunc"))
    sec = obj.btf[obj.btf.find(Datasec("", 0, ()).kind, ".ksyms")]
    dummy = obj.btf.find(Var("", 0, Linkage.GLOBAL).kind, "dummy_ksym")
    assert dummy is not None and isinstance(obj.btf[obj.btf[dummy].type], Int)
    assert [(v.offset, v.size) for v in sec.vars] == [(4 * i, 4) for i in range(len(sec.vars))]
    assert sec.size == 4 * len(sec.vars) and all(v.type == dummy for v in sec.vars)
    for e in obj.externs:
        f = obj.btf[e.btf_id]
        assert isinstance(f, Func) and f.linkage == Linkage.GLOBAL
        assert all(p.name for p in obj.btf[f.type].params)
    assert {e.name: e.weak for e in obj.externs} == {
        "bgt_no_such_kfunc": True,
        "bpf_ct_release": False,
        "bpf_skb_ct_lookup": False,
        "bpf_xdp_ct_lookup": False,
    }


def _kcfg(name: str, t: KconfigType, size: int, signed: bool = False, weak: bool = False):
    return ExternSpec(
        name, ExternKind.KCONFIG, weak, 0, 0, 0, KconfigField(t, size, min(size, 8), signed, 0)
    )


@pytest.mark.parametrize(
    ("kind", "size", "signed", "raw", "expect"),
    [
        (KconfigType.BOOL, 1, False, "y", b"\x01"),
        (KconfigType.BOOL, 1, False, "n", b"\x00"),
        (KconfigType.TRISTATE, 4, False, "y", struct.pack("<I", 1)),
        (KconfigType.TRISTATE, 4, False, "m", struct.pack("<I", 2)),
        (KconfigType.TRISTATE, 4, False, "n", struct.pack("<I", 0)),
        (KconfigType.CHAR, 1, False, "m", b"m"),
        (KconfigType.CHAR, 1, True, "65", b"A"),
        (KconfigType.INT, 4, True, "250", struct.pack("<i", 250)),
        (KconfigType.INT, 4, True, "-1", struct.pack("<i", -1)),
        (KconfigType.INT, 8, False, "0xdead000000000000", struct.pack("<Q", 0xDEAD << 48)),
        (KconfigType.INT, 2, False, "0755", struct.pack("<H", 0o755)),
        (KconfigType.CHAR_ARRAY, 8, False, '"-fc"', b"-fc\0"),
        (KconfigType.CHAR_ARRAY, 4, False, '"(none)"', b"(no\0"),  # truncated, NUL-ended
    ],
)
def test_kconfig_values_encode_as_libbpf(kind, size, signed, raw, expect) -> None:
    e = _kcfg("CONFIG_X", kind, size, signed)
    image, done = kconfig_image([e], size, {"CONFIG_X": raw}, {}, "test")
    assert image[: len(expect)] == expect and done == {"CONFIG_X": True}


@pytest.mark.parametrize(
    ("kind", "size", "signed", "raw", "why"),
    [
        (KconfigType.BOOL, 1, False, "m", "needs a tristate or char type, not bool"),
        (KconfigType.INT, 4, True, "y", "needs a bool, tristate or char type"),
        (KconfigType.INT, 4, True, '"s"', "needs a char array type"),
        (KconfigType.BOOL, 1, False, "1", "needs an integer type"),
        (KconfigType.INT, 1, False, "256", "does not fit in 1 bytes"),
        (KconfigType.INT, 2, True, "32768", "does not fit in 2 bytes"),
        (KconfigType.INT, 4, True, "12abc", "is not a valid integer"),
        (KconfigType.CHAR_ARRAY, 4, False, '"open', "is not quoted"),
    ],
)
def test_kconfig_values_that_do_not_fit_are_refused(kind, size, signed, raw, why) -> None:
    e = _kcfg("CONFIG_X", kind, size, signed)
    with pytest.raises(KconfigError, match=why):
        kconfig_image([e], size, {"CONFIG_X": raw}, {}, "test")


def test_missing_kconfig_weak_is_zero_strong_is_an_error() -> None:
    weak = _kcfg("CONFIG_GONE", KconfigType.INT, 4, weak=True)
    image, done = kconfig_image([weak], 4, {}, {}, "/proc/config.gz")
    assert image == bytes(4) and done == {"CONFIG_GONE": False}
    with pytest.raises(KconfigError, match=r"'CONFIG_GONE': not set in /proc/config\.gz"):
        kconfig_image([_kcfg("CONFIG_GONE", KconfigType.INT, 4)], 4, {}, {}, "/proc/config.gz")
    with pytest.raises(KconfigError, match="cannot read the kernel config: /boot/x: No such"):
        kconfig_image([weak], 4, None, {}, "/boot/x: No such file")


def test_config_text_is_parsed_first_setting_wins_and_malformed_lines_refused() -> None:
    lines = ["# CONFIG_A is not set", "CONFIG_B=y", "CONFIG_B=n", "", 'CONFIG_S="x y"']
    assert parse_config(lines, "c") == {"CONFIG_B": "y", "CONFIG_S": '"x y"'}
    with pytest.raises(KconfigError, match="c:1: 'CONFIG_C' has no value"):
        parse_config(["CONFIG_C"], "c")
    with pytest.raises(KconfigError, match="c:2: 'CONFIG_D=' has no value"):
        parse_config(["CONFIG_B=y", "CONFIG_D="], "c")


def test_kernel_version_follows_libbpf() -> None:
    assert kernel_version("6.18.44-fc-v657", "") == (6 << 16) | (18 << 8) | 44
    assert kernel_version("5.4.300", "") == (5 << 16) | (4 << 8) | 255  # patch saturates
    ubuntu = "Ubuntu 5.4.0-12.15-generic 5.4.8\n"
    assert kernel_version("5.4.0-12-generic", ubuntu) == (5 << 16) | (4 << 8) | 8
    with pytest.raises(LoadError, match=r"not major\.minor\.patch"):
        kernel_version("weird", "")


# --- module BTF: a made-up split BTF standing in for a module that defines a kfunc and a
# per-CPU variable (this kernel has no module BTFs to test against)


def _module_split_btf(base_len: int, base_strings: int) -> bytes:
    n = base_len
    strings = b"bgt_mod_kfunc\0bgt_mod_counter\0x\0"
    name_kfunc, name_counter, name_x = (base_strings + o for o in (0, 14, 30))
    types = struct.pack("<III", 0, (13 << 24) | 1, 1) + struct.pack("<II", name_x, 1)  # [n]
    types += struct.pack("<III", name_kfunc, (12 << 24) | 1, n)  # [n+1] FUNC global
    types += struct.pack("<III", name_counter, 14 << 24, 1) + struct.pack("<I", 1)  # [n+2] VAR
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return hdr + types + strings


def _kernel_btfs(base_model: Btf, opened: list[FD]) -> tuple[list[KernelBtf], int]:
    """vmlinux made from `base_model`, and the made-up module's split BTF on top of it."""
    base = LazyBtf.from_bytes(encode_btf(base_model))
    mod = LazyBtf.from_bytes(_module_split_btf(len(base), len(base.strings)), base)

    def open_fd() -> FD:  # a real fd: the loader only passes its number to the kernel
        fd = FD(os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC))
        opened.append(fd)
        return fd

    return [KernelBtf("vmlinux", base, None), KernelBtf("bgt_mod", mod, open_fd)], len(base)


@pytest.fixture
def opened():
    fds: list[FD] = []
    yield fds
    for fd in fds:
        fd.close()


@pytest.fixture
def module_btfs(opened):
    base_model = Btf([Void(), Int("int", 4, IntEncoding.SIGNED, 32)])
    btfs, n = _kernel_btfs(base_model, opened)
    return btfs, n, opened


def test_module_kfunc_goes_through_fd_array_and_ksym_carries_the_btf_fd(
    bpf_object, module_btfs
) -> None:
    btfs, n, opened = module_btfs
    obj = read_object(bpf_object("kfunc_module"))
    out = ResolvedExterns()
    resolve_btf_externs(obj, list(obj.externs), out, btfs)
    assert len(opened) == 1, "one module: its BTF fd is opened once"
    fd = opened[0]
    assert out.fd_array == [0, fd.raw]  # slot 0 unused, as libbpf
    kf, var = out.by_name["bgt_mod_kfunc"], out.by_name["bgt_mod_counter"]
    assert (kf.resolved, kf.btf_id, kf.fd_index, kf.source) == (True, n + 1, 1, "bgt_mod BTF")
    assert (var.resolved, var.btf_id, var.btf_fd) == (True, n + 2, fd)
    linked = link_program(obj.programs[0], function_table(obj))
    seen = set()
    for index, r in linked.extern_refs:
        call = r.kind.value == "extern_func"
        patch_extern(linked.insns, index, out.by_name[r.target], None, call, "use_module")
        _, regs, off, imm = struct.unpack_from("<BBhi", linked.insns, index * 8)
        if call:
            assert (regs >> 4, off, imm) == (BPF_PSEUDO_KFUNC_CALL, 1, n + 1)
        else:
            imm2 = struct.unpack_from("<i", linked.insns, index * 8 + 12)[0]
            # the address of a module kfunc also names the module's BTF (newer libbpf does;
            # 1.1 left imm2 0, which makes the kernel look the id up in vmlinux)
            want = (n + 1, fd.raw) if r.target == "bgt_mod_kfunc" else (n + 2, fd.raw)
            assert (regs >> 4, imm, imm2) == (BPF_PSEUDO_BTF_ID, *want)
        seen.add((r.target, call))
    assert seen == {("bgt_mod_kfunc", True), ("bgt_mod_kfunc", False), ("bgt_mod_counter", False)}


def test_vmlinux_wins_over_modules_and_modules_only_offer_their_own_types(
    bpf_object, opened
) -> None:
    # vmlinux has a kfunc of the same name as the module's: libbpf takes vmlinux's
    base_model = Btf(
        [
            Void(),
            Int("int", 4, IntEncoding.SIGNED, 32),
            FuncProto(1, (Param("x", 1),)),
            Func("bgt_mod_kfunc", 2, Linkage.GLOBAL),
        ]
    )
    btfs, _ = _kernel_btfs(base_model, opened)
    assert btfs[1].types.find(Func("", 0, Linkage.GLOBAL).kind, "int") is None  # own types only
    obj = read_object(bpf_object("kfunc_module"))
    out = ResolvedExterns()
    resolve_btf_externs(obj, list(obj.externs), out, btfs)
    kf, var = out.by_name["bgt_mod_kfunc"], out.by_name["bgt_mod_counter"]
    assert (kf.btf_id, kf.fd_index, kf.btf_fd, kf.source) == (3, 0, None, "vmlinux BTF")
    assert var.source == "bgt_mod BTF" and var.btf_fd is opened[0]
    assert out.fd_array == []  # no kfunc from a module: nothing for fd_array


def test_incompatible_module_kfunc_prototype_is_refused(bpf_object, module_btfs) -> None:
    btfs, _, _ = module_btfs
    obj = read_object(bpf_object("kfunc"))  # bpf_ct_release(struct nf_conn *) vs int(int)
    e = next(x for x in obj.externs if x.name == "bpf_ct_release")
    renamed = [
        KernelBtf(k.name, _Renamed(k.types, "bgt_mod_kfunc", e.name), k.open_fd) for k in btfs
    ]
    with pytest.raises(
        LoadError, match=r"'bpf_ct_release': local type .* incompatible with bgt_mod"
    ):
        resolve_btf_externs(obj, [e], ResolvedExterns(), renamed)


class _Renamed:
    """A kernel BTF view where one name answers for another (to aim a lookup at a type)."""

    def __init__(self, btf: LazyBtf, real: str, alias: str) -> None:
        self.btf, self.real, self.alias = btf, real, alias

    def find(self, kind, name):
        return self.btf.find(kind, self.real if name == self.alias else name)

    def __getattr__(self, attr):
        return getattr(self.btf, attr)

    def __getitem__(self, i):
        return self.btf[i]

    def __len__(self):
        return len(self.btf)


def test_func_proto_of_kfunc_is_kept_for_compat_checks(bpf_object) -> None:
    obj = read_object(bpf_object("kfunc"))
    for e in obj.externs:
        assert isinstance(obj.btf[e.type_id], FuncProto)


def test_inspect_shows_externs_per_program_as_readelf_sees_them(bpf_object) -> None:
    """Each program's externs are the undefined symbols its section's relocations name
    (kfunc.bpf.c has no subprograms), with kind, weakness and C type in --json."""
    path = bpf_object("kfunc")
    cli = str(Path(sys.executable).parent / "bpfglobals")
    info = json.loads(
        subprocess.run(
            [cli, "inspect", str(path), "--json"], capture_output=True, text=True, check=True
        ).stdout
    )
    undefined = {s.name: s for s in readelf_symbols(path) if s.section == "UND" and s.name}
    assert {e["name"] for e in info["externs"]} == set(undefined)
    for e in info["externs"]:
        assert e["weak"] == (undefined[e["name"]].bind == "WEAK") and e["kind"] == "kfunc"
    rels = readelf_relocations(path)
    for p in info["programs"]:
        named = {sym for _, _, sym in rels[p["section"]] if sym in undefined}
        assert p["externs"] == sorted(named), p["name"]
    by_name = {e["name"]: e for e in info["externs"]}
    assert by_name["bpf_ct_release"]["type"] == "void (struct nf_conn *)"
    table = subprocess.run([cli, "inspect", str(path)], capture_output=True, text=True).stdout
    head, *rows = table.split("\n\n")[0].splitlines()[1:]
    assert head.split()[-1] == "EXTERNS"
    assert {r.split()[0]: int(r.split()[-1]) for r in rows} == {
        p["name"]: len(p["externs"]) for p in info["programs"]
    }
    assert "EXTERNS (resolved from the running kernel at load)" in table


def test_kernel_config_is_read_plain_or_gzip_in_libbpfs_order(tmp_path) -> None:
    boot, proc = tmp_path / "config-6.18", tmp_path / "config.gz"
    proc.write_bytes(gzip.compress(b"CONFIG_HZ=100\n"))
    assert read_config_lines([str(boot), str(proc)]) == (["CONFIG_HZ=100"], str(proc))
    boot.write_text("CONFIG_HZ=250\n")  # /boot first, as libbpf
    assert read_config_lines([str(boot), str(proc)]) == (["CONFIG_HZ=250"], str(boot))
    lines, why = read_config_lines([str(tmp_path / "none"), str(tmp_path / "gone")])
    assert lines is None and why.count("No such file or directory") == 2
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"\x1f\x8b" + b"junk")
    lines, why = read_config_lines([str(bad)])
    assert lines is None and "not a valid gzip file" in why


def test_typeless_ksyms_come_from_kallsyms_and_hidden_addresses_are_refused(
    bpf_object, tmp_path, monkeypatch
) -> None:
    from bpfglobals.loader import externs as resolver
    from bpfglobals.loader import kernel_facts

    obj = read_object(bpf_object("ksyms"))
    shown = tmp_path / "kallsyms"  # the file's format, with addresses we choose
    shown.write_text("ffffffff81000000 T _stext\nffffffff81000000 T _text\n")
    monkeypatch.setattr(kernel_facts, "KALLSYMS", str(shown))
    out = ResolvedExterns()
    resolver._resolve_kallsyms(obj, out)
    assert out.by_name["_stext"].address == 0xFFFFFFFF81000000
    assert out.by_name["bgt_no_such_symbol"].resolved is False  # weak: NULL
    shown.write_text("0000000000000000 T _stext\n")  # what an unprivileged reader sees
    with pytest.raises(LoadError, match=r"'_stext': .* address 0: .* CAP_SYSLOG"):
        resolver._resolve_kallsyms(obj, ResolvedExterns())
    shown.write_text("ffffffff81000000 T _stext\nffffffff82000000 t _stext\n")
    with pytest.raises(LoadError, match="two addresses"):
        resolver._resolve_kallsyms(obj, ResolvedExterns())
