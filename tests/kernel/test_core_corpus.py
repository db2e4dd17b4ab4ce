"""A corpus of CO-RE programs in the style of real tools (libbpf-tools, xdp-tutorial, Cilium),
built against a vmlinux.h dumped from the running kernel at test time: every object libbpf
(`bpftool prog loadall`) loads, we load — with our CO-RE and with the kernel's — to the same
translated instructions; every object libbpf refuses, we refuse, naming the relocation."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from bpfglobals.elf import read_object
from bpfglobals.loader import load
from bpfglobals.loader.core import CoreRelocationError
from tests.support.bpftool import bpftool
from tests.support.progs import PROGS, compile_bpf, corpus_flags
from tests.support.xlated import normalise, xlated_by_bpftool

CORPUS = sorted((PROGS / "corpus").glob("*.bpf.c"))


def test_the_corpus_covers_loads_refusals_and_the_core_kinds(vmlinux_h, tmp_path) -> None:
    assert len(CORPUS) >= 7
    kinds = set()
    for src in CORPUS:
        obj = read_object(compile_bpf(src, tmp_path, corpus_flags(vmlinux_h)))
        kinds |= {r.kind for f in [*obj.programs, *obj.subprograms] for r in f.core_relos}
    # byte_off, byte_sz, field_exists, signed, lshift, rshift, type id, exists, size, enums
    assert kinds >= {0, 1, 2, 3, 4, 5, 8, 9, 10, 11}


@pytest.mark.parametrize("source", CORPUS, ids=lambda p: p.name.removesuffix(".bpf.c"))
def test_corpus_object_gets_libbpfs_verdict_and_instructions(source, vmlinux_h, tmp_path) -> None:
    obj_path = compile_bpf(source, tmp_path, corpus_flags(vmlinux_h))
    pin = f"/sys/fs/bpf/bgt-corpus-{uuid.uuid4().hex[:8]}"
    libbpf = subprocess.run(
        ["bpftool", "prog", "loadall", str(obj_path), pin], capture_output=True, text=True
    )
    try:
        refused = source.name.startswith("refused_")
        assert (libbpf.returncode != 0) == refused, libbpf.stderr[-2000:]
        for core_in_kernel in (False, True):
            obj = read_object(obj_path)
            if refused:
                # libbpf: "failed to resolve CO-RE relocation <spec>"; ours names the same spec
                spec = libbpf.stderr.split("failed to resolve CO-RE relocation ")[1].splitlines()[0]
                with pytest.raises(CoreRelocationError, match="failed to resolve CO-RE") as e:
                    load(obj, core_in_kernel=core_in_kernel)
                assert spec in str(e.value)
                continue
            with load(obj, core_in_kernel=core_in_kernel) as ours:
                assert ours.programs
                for name, prog in ours.programs.items():
                    theirs = bpftool("prog", "show", "pinned", f"{pin}/{name}")
                    assert normalise(xlated_by_bpftool(prog.info.id, tmp_path)) == normalise(
                        xlated_by_bpftool(theirs["id"], tmp_path)
                    ), (name, core_in_kernel)
    finally:
        subprocess.run(["rm", "-rf", pin], check=False)
