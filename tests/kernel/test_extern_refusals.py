"""Externs that cannot be resolved: libbpf (bpftool) refuses the object, and so do we, with an
error naming the extern and why — the refusals the README promises. Plus the records we
refuse where libbpf would load something wrong (pointers in global data) or not yet
(CO-RE, until it is applied).
"""

from __future__ import annotations

import subprocess
import uuid

import pytest

from bpfglobals.elf import read_object
from bpfglobals.errors import BpfGlobalsError
from bpfglobals.loader import load
from tests.support.progs import compile_bpf

HEAD = """
#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char _license[] SEC("license") = "GPL";
"""


def _xdp(decls: str, body: str) -> str:
    return f'{HEAD}\n{decls}\nSEC("xdp") int prog(struct xdp_md *ctx) {{ {body} }}\n'


REFUSED_BY_BOTH = {
    "strong_kconfig_missing": (
        _xdp("extern int CONFIG_BGT_NOT_SET __kconfig;", "return CONFIG_BGT_NOT_SET;"),
        "extern (kconfig) 'CONFIG_BGT_NOT_SET': not set in /proc/config.gz",
    ),
    "unknown_strong_virtual": (
        _xdp("extern int LINUX_BGT_NEW __kconfig;", "return LINUX_BGT_NEW;"),
        "'LINUX_BGT_NEW': not a CONFIG_ option nor a virtual extern",
    ),
    "bool_value_into_int": (
        _xdp("extern int CONFIG_BPF_SYSCALL __kconfig;", "return CONFIG_BPF_SYSCALL;"),
        "value 'y' needs a bool, tristate or char type",
    ),
    "string_into_int": (
        _xdp("extern int CONFIG_LOCALVERSION __kconfig;", "return CONFIG_LOCALVERSION;"),
        "needs a char array type",
    ),
    "number_too_big": (
        _xdp("extern unsigned char CONFIG_NR_CPUS __kconfig;", "return CONFIG_NR_CPUS;"),
        "does not fit in 1 bytes",
    ),
    "kconfig_struct_type": (
        _xdp("struct s { int a; }; extern struct s CONFIG_HZ __kconfig;", "return CONFIG_HZ.a;"),
        "'CONFIG_HZ': .kconfig type STRUCT 's' is not supported",
    ),
    "extern_in_unknown_section": (
        _xdp(
            'extern int bgt_odd __attribute__((section(".odd_externs")));',
            "return bgt_odd;",
        ),
        "DATASEC '.odd_externs': holds extern variable(s) (bgt_odd)",
    ),
    "strong_typeless_ksym_missing": (
        _xdp("extern const void bgt_no_such_sym __ksym;", "return (long)&bgt_no_such_sym > 0;"),
        "extern (ksym) 'bgt_no_such_sym': not in /proc/kallsyms",
    ),
    "strong_kfunc_missing": (
        _xdp("extern int bgt_no_such_kfunc(int) __ksym;", "return bgt_no_such_kfunc(1);"),
        "extern (func ksym) 'bgt_no_such_kfunc': not found in the kernel's BTF",
    ),
    "kfunc_incompatible_prototype": (
        _xdp(
            "struct nf_conn; extern void bpf_ct_release(struct nf_conn *) __ksym;",
            "bpf_ct_release((void *)0); return 0;",
        ),
        "extern (func ksym) 'bpf_ct_release': local type",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED_BY_BOTH))
def test_unresolvable_extern_is_refused_like_libbpf(case, tmp_path) -> None:
    source, message = REFUSED_BY_BOTH[case]
    src = tmp_path / f"{case}.bpf.c"
    src.write_text(source)
    obj = compile_bpf(src, tmp_path)
    pin = f"/sys/fs/bpf/bgt-refuse-{uuid.uuid4().hex[:8]}"
    theirs = subprocess.run(["bpftool", "prog", "loadall", str(obj), pin], capture_output=True)
    subprocess.run(["rm", "-rf", pin], check=False)
    assert theirs.returncode != 0, f"libbpf loaded {case}: the case does not test a refusal"
    with pytest.raises(BpfGlobalsError) as refused:
        load(read_object(obj)).close()
    assert message in str(refused.value), str(refused.value)


def test_pointer_in_global_data_is_refused_not_left_unrelocated(tmp_path) -> None:
    """libbpf skips .rel.data and loads a zero pointer; we name the section instead."""
    src = tmp_path / "ptr.bpf.c"
    src.write_text(HEAD + 'int x = 1; int *p = &x;\nSEC("xdp") int prog(void *c) { return *p; }\n')
    obj = compile_bpf(src, tmp_path)
    with pytest.raises(BpfGlobalsError, match=r"relocation section \.rel\.data: 1 relocation"):
        read_object(obj)


def test_core_relocations_are_never_silently_dropped(tmp_path) -> None:
    """A CO-RE access is either applied (recorded in the program's ledger) or the load is
    refused naming CO-RE; it never loads with the compiler's offsets unexamined."""
    src = tmp_path / "core.bpf.c"
    src.write_text(
        HEAD
        + "struct xdp_md___local { __u32 data; __u32 data_end; } "
        + "__attribute__((preserve_access_index));\n"
        + 'SEC("xdp") int prog(struct xdp_md___local *ctx) { return ctx->data_end > 0; }\n'
    )
    obj_path = compile_bpf(src, tmp_path)
    obj = read_object(obj_path)
    assert obj.btf_ext is not None and obj.btf_ext.core_relos, "clang emitted no CO-RE record"
    try:
        loaded = load(obj)
    except BpfGlobalsError as e:
        assert "CO-RE relocation" in str(e) and "prog" in str(e), str(e)
        return
    with loaded:
        kinds = loaded.programs["prog"].ledger.counts()
        assert kinds.get("core_relo") == len(obj.btf_ext.core_relos["xdp"]), kinds
