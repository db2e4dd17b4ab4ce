"""Every command of the syscall layer against the real kernel, read back with bpftool."""

from __future__ import annotations

import errno
import os
import struct
import subprocess
import sys
import uuid

import pytest

from bpfglobals.kernel import progs as progs_mod
from bpfglobals.kernel.btf import btf_load
from bpfglobals.kernel.constants import BPF_ARRAY, Cmd, MapFlags, attach_type_id, prog_type_id
from bpfglobals.kernel.errors import KernelError
from bpfglobals.kernel.links import link_create, link_detach, link_update
from bpfglobals.kernel.maps import (
    map_create,
    map_delete,
    map_freeze,
    map_lookup,
    map_next_key,
    map_update,
)
from bpfglobals.kernel.objects import (
    btf_info,
    fd_by_id,
    ids,
    link_info,
    map_frozen,
    map_info,
    obj_get,
    obj_pin,
    prog_info,
)
from bpfglobals.kernel.progs import prog_load, prog_test_run
from bpfglobals.kernel.syscall import inject_fault
from tests.support.bpftool import bpftool
from tests.support.insns import exit_, ld_map_value, ldx_w, return_const
from tests.support.netdev import ifindex, veth_pair

XDP = prog_type_id("xdp")
K0 = bytes(4)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def xdp_prog(retval: int, name: str = "t"):
    return prog_load(
        prog_type=XDP,
        insns=return_const(retval),
        license="GPL",
        name=name,
        expected_attach_type=attach_type_id("xdp"),
    )


def test_array_map_update_lookup_and_bpftool_view() -> None:
    with map_create(
        map_type=BPF_ARRAY,
        key_size=4,
        value_size=8,
        max_entries=2,
        name="bgt.rodata",
        flags=MapFlags.RDONLY_PROG | MapFlags.MMAPABLE,
    ) as m:
        map_update(m, K0, struct.pack("<Q", 0xDEADBEEF))
        assert map_lookup(m, K0, 8) == struct.pack("<Q", 0xDEADBEEF)
        assert map_next_key(m, None, 4) == K0
        assert map_next_key(m, K0, 4) == struct.pack("<I", 1)
        assert map_next_key(m, struct.pack("<I", 1), 4) is None
        info = map_info(m)
        shown = bpftool("map", "show", "id", str(info.id))
        assert (shown["name"], shown["flags"], shown["bytes_value"]) == ("bgt.rodata", 0x480, 8)
        assert shown["frozen"] == 0 and not map_frozen(m)
        map_freeze(m)
        assert map_frozen(m) and bpftool("map", "show", "id", str(info.id))["frozen"] == 1
        with pytest.raises(KernelError) as e:
            map_update(m, K0, bytes(8))
        assert e.value.errno == errno.EPERM and e.value.command == "MAP_UPDATE_ELEM"


def test_hash_map_delete_and_missing_key() -> None:
    with map_create(map_type=1, key_size=4, value_size=4, max_entries=4, name="h") as m:
        map_update(m, K0, K0)
        map_delete(m, K0)
        with pytest.raises(KernelError) as e:
            map_lookup(m, K0, 4)
        assert e.value.errno == errno.ENOENT


def test_btf_load_and_info() -> None:
    from bpfglobals.elf.btf import Btf
    from bpfglobals.elf.btf_encode import encode_btf
    from bpfglobals.elf.btf_types import Int, IntEncoding

    blob = encode_btf(Btf([*Btf().types, Int("int", 4, IntEncoding.SIGNED, 32)]))
    with btf_load(blob) as b:
        btf_id, size = btf_info(b)
        assert size == len(blob)
        dumped = bpftool("btf", "dump", "id", str(btf_id))
        assert dumped["types"][0]["name"] == "int"


def test_bad_btf_carries_the_kernel_log() -> None:
    bad = bytearray(struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 12, 12, 1) + bytes(13))
    struct.pack_into("<I", bad, 28, 99 << 24)  # unknown kind
    with pytest.raises(KernelError) as e:
        btf_load(bytes(bad))
    assert e.value.command == "BTF_LOAD" and e.value.log.strip()


def test_prog_load_test_run_and_info_match_bpftool() -> None:
    with xdp_prog(2) as p:
        assert prog_test_run(p, bytes(64)).retval == 2
        info, xlated = prog_info(p, xlated=True)
        shown = bpftool("prog", "show", "id", str(info.id))
        assert (shown["tag"], shown["type"], shown["name"]) == (info.tag, "xdp", "t")
        assert len(xlated) == info.xlated_len == 16


def test_map_value_relocation_reads_the_map() -> None:
    with map_create(map_type=BPF_ARRAY, key_size=4, value_size=8, max_entries=1, name="v") as m:
        map_update(m, K0, struct.pack("<II", 11, 77))
        insns = ld_map_value(1, m.raw, 4) + ldx_w(0, 1) + exit_()
        with prog_load(prog_type=XDP, insns=insns, license="GPL") as p:
            assert prog_test_run(p, bytes(64)).retval == 77
            assert prog_info(p)[0].map_ids == (map_info(m).id,)


def test_verifier_rejection_carries_the_log() -> None:
    with pytest.raises(KernelError) as e:
        prog_load(prog_type=XDP, insns=exit_(), license="GPL", name="bad")
    assert e.value.command == "PROG_LOAD" and "R0 !read_ok" in e.value.log


def test_log_buffer_grows_on_enospc(monkeypatch) -> None:
    monkeypatch.setattr(progs_mod, "LOG_START", 16)
    with pytest.raises(KernelError) as e:
        prog_load(prog_type=XDP, insns=exit_(), license="GPL")
    assert "R0 !read_ok" in e.value.log and e.value.errno == errno.EACCES


def test_pin_get_and_fd_by_id() -> None:
    path = f"/sys/fs/bpf/bgt-{uuid.uuid4().hex[:8]}"
    with xdp_prog(1) as p:
        pid = prog_info(p)[0].id
        obj_pin(p, path)
        try:
            with obj_get(path) as again, fd_by_id("prog", pid) as by_id:
                assert prog_info(again)[0].id == pid == prog_info(by_id)[0].id
            assert pid in set(ids("prog"))
            with pytest.raises(KernelError) as e:
                obj_pin(p, path)
            assert e.value.errno == errno.EEXIST and path in str(e.value)
        finally:
            os.unlink(path)


def test_xdp_link_create_update_replace_and_detach() -> None:
    with (
        veth_pair() as (a, _b),
        xdp_prog(2, "one") as p1,
        xdp_prog(1, "two") as p2,
        xdp_prog(3, "three") as p3,
    ):
        idx = ifindex(a)
        with link_create(p1, attach_type=attach_type_id("xdp"), target_ifindex=idx) as link:
            info = link_info(link)
            assert (info.type, info.ifindex, info.prog_id) == ("xdp", idx, prog_info(p1)[0].id)
            net = bpftool("net", "show", "dev", a)[0]["xdp"][0]
            assert net["id"] == prog_info(p1)[0].id
            link_update(link, p2, old_prog=p1)
            assert link_info(link).prog_id == prog_info(p2)[0].id
            assert bpftool("link", "show", "id", str(info.id))["prog_id"] == prog_info(p2)[0].id
            with pytest.raises(KernelError) as e:  # the link no longer runs p1
                link_update(link, p3, old_prog=p1)
            assert e.value.errno == errno.EPERM
            assert link_info(link).prog_id == prog_info(p2)[0].id
            link_detach(link)
            assert bpftool("net", "show", "dev", a)[0]["xdp"] == []


def test_fault_injection_hits_the_chosen_call() -> None:
    with inject_fault(Cmd.MAP_CREATE, errno.ENOSPC, after=1):
        with map_create(map_type=BPF_ARRAY, key_size=4, value_size=4, max_entries=1):
            pass
        with pytest.raises(KernelError) as e:
            map_create(map_type=BPF_ARRAY, key_size=4, value_size=4, max_entries=1)
        assert e.value.errno == errno.ENOSPC
    with map_create(map_type=BPF_ARRAY, key_size=4, value_size=4, max_entries=1):
        pass


def test_no_fd_leaks() -> None:
    before = open_fds()
    for _ in range(20):
        with (
            xdp_prog(2) as p,
            map_create(map_type=BPF_ARRAY, key_size=4, value_size=4, max_entries=1) as m,
        ):
            prog_info(p)
            map_info(m)
        with pytest.raises(KernelError):
            prog_load(prog_type=XDP, insns=exit_(), license="GPL")
    assert open_fds() == before


def test_fd_zero_is_never_handed_to_bpf() -> None:
    code = (
        "import os\n"
        "os.close(0)\n"
        "from bpfglobals.kernel.maps import map_create\n"
        "m = map_create(map_type=2, key_size=4, value_size=4, max_entries=1)\n"
        "print(m.raw)\n"
        "m.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert int(out.stdout) > 0
