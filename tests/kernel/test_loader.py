"""The loader in the real kernel, checked with bpftool and BPF_PROG_TEST_RUN."""

from __future__ import annotations

import errno
import json
import os
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bpfglobals.elf import read_object
from bpfglobals.kernel.constants import Cmd
from bpfglobals.kernel.maps import map_lookup, map_update
from bpfglobals.kernel.objects import ids
from bpfglobals.kernel.progs import prog_test_run
from bpfglobals.kernel.syscall import inject_fault
from bpfglobals.loader import LoadError, VerifierError, load
from bpfglobals.values import configure, decode_variables
from tests.support.bpftool import bpftool, map_info, map_value, prog_map_ids

CLI = str(Path(sys.executable).parent / "bpfglobals")


def run(prog, data: bytes = bytes(64)) -> int:
    return prog_test_run(prog.fd, data).retval


def test_internal_maps_as_libbpf_makes_them(bpf_object) -> None:
    obj = read_object(bpf_object("globals"))
    values = {"ro_u32": 7, "ro_name": "eth9", "data_counter_limit": 5, "bss_last": 3}
    expected = configure(obj, values)
    with load(obj, values) as lo:
        want = {
            ".rodata": ("globals.rodata", 0x480, 1),
            ".data": ("globals.data", 0x400, 0),
            ".bss": ("globals.bss", 0x400, 0),
            ".rodata.extra": (".rodata.extra", 0x480, 1),
            ".data.extra": (".data.extra", 0x400, 0),
        }
        for section, (name, flags, frozen) in want.items():
            m = lo.maps[section]
            shown = map_info(m.info.id)
            assert (shown["name"], shown["flags"], shown["frozen"]) == (name, flags, frozen)
            assert shown["bytes_value"] == len(expected[section]) and shown["max_entries"] == 1
            assert map_value(m.info.id) == expected[section]
            datasec = obj.data_sections[[d.name for d in obj.data_sections].index(section)]
            assert shown["btf_id"] and shown.get("btf_value_type_id", datasec.datasec_type_id)
        prog = lo.programs["config_ret"]
        internal = {lo.maps[s].info.id for s in (".rodata", ".data", ".rodata.extra")}
        assert internal <= set(prog_map_ids(prog.info.id))


def test_frozen_rodata_refuses_user_writes(bpf_object) -> None:
    with load(read_object(bpf_object("globals"))) as lo:
        ro = lo.maps[".rodata"]
        with pytest.raises(Exception) as e:
            map_update(ro.fd, bytes(4), bytes(ro.info.value_size))
        assert getattr(e.value, "errno", None) == errno.EPERM


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, 320000 + 100 + 42 + 7 + 5),
        ({"ro_u32": 1}, 1 + 100 + 42 + 7 + 5),
        ({"ro_u32": 10, "data_counter_limit": 20, "extra_ro": 30}, 10 + 20 + 30 + 7 + 5),
        ({"ro_mode": "MODE_OFF"}, 0),
    ],
)
def test_return_value_follows_the_configured_globals(bpf_object, values, expected) -> None:
    with load(read_object(bpf_object("globals")), values, programs=["config_ret"]) as lo:
        assert run(lo.programs["config_ret"]) == expected


def test_programs_write_bss_and_data(bpf_object) -> None:
    obj = read_object(bpf_object("globals"))
    with load(obj, {"data_delta": 10}) as lo:
        for _ in range(3):
            run(lo.programs["record"])
        images = {
            s: map_lookup(lo.maps[s].fd, bytes(4), lo.maps[s].info.value_size)
            for s in (".bss", ".data", ".data.extra", ".rodata", ".rodata.extra")
        }
        v = decode_variables(obj, images)
        assert (v["bss_hits"], v["data_delta"]) == (3, 13)
        assert v["bss_last"] == 443 + 20 + ord("e") + 43 + 2  # last run: bss_static was 2
        assert v["bss_static"] == 3
        # and user space sees it through bpftool too
        raw = map_value(lo.maps[".bss"].info.id)
        assert struct.unpack_from("<Q", raw, 0)[0] == 3


def test_subprogram_calls_and_callbacks(bpf_object) -> None:
    obj = read_object(bpf_object("calls"))
    for base in (10, 20, 1000):
        with load(obj, {"base": base, "scale": 2}) as lo:
            assert run(lo.programs["sum_prog"]) == (base + 3) * 2
            assert (
                run(lo.programs["loop_prog"]) == base + 6 + ord("e") + "xyz"[base & 1].encode()[0]
            )
            assert run(lo.programs["tc_prog"]) == (0 if base + 3 > 12 else 2)


def test_dead_code_is_pruned_only_because_rodata_is_frozen(bpf_object) -> None:
    obj = read_object(bpf_object("prune"))
    with load(obj, {"answer": 7}) as lo:
        assert run(lo.programs["guarded"]) == 7
    with pytest.raises(VerifierError) as e:
        load(obj, {"unsafe_path": True})
    msg = str(e.value)
    assert "program 'guarded' (section xdp) was rejected by the verifier" in msg
    assert "invalid access to packet" in e.value.log and "  | " in msg


def test_failure_at_any_phase_leaves_nothing_behind(bpf_object) -> None:
    obj = read_object(bpf_object("globals"))
    pin = f"/sys/fs/bpf/bgt-{uuid.uuid4().hex[:8]}"
    for cmd, after in [
        (Cmd.BTF_LOAD, 0),
        (Cmd.MAP_CREATE, 2),
        (Cmd.MAP_FREEZE, 0),
        (Cmd.PROG_LOAD, 1),
        (Cmd.OBJ_PIN, 4),
    ]:
        maps_before, progs_before = set(ids("map")), set(ids("prog"))
        fds_before = len(os.listdir("/proc/self/fd"))
        with inject_fault(cmd, errno.ENOMEM, after=after), pytest.raises(Exception) as e:
            load(obj, {"ro_u32": 1}, pin=pin)
        assert "ENOMEM" in str(e.value) or "Cannot allocate" in str(e.value), cmd
        assert len(os.listdir("/proc/self/fd")) == fds_before, cmd
        assert not os.path.exists(pin), cmd
        # the kernel frees objects asynchronously (RCU); poll briefly for our ids to go
        for _ in range(100):
            if not (set(ids("map")) - maps_before) and not (set(ids("prog")) - progs_before):
                break
            import time

            time.sleep(0.02)
        assert not (set(ids("prog")) - progs_before), cmd
        assert not (set(ids("map")) - maps_before), cmd


def test_unknown_section_and_missing_program(bpf_object) -> None:
    obj = read_object(bpf_object("globals"))
    with pytest.raises(LoadError, match="no program 'nope'"):
        load(obj, programs=["nope"])


def test_pin_layout_and_pinned_map_reuse(bpf_object) -> None:
    obj = read_object(bpf_object("maps"))
    pin = f"/sys/fs/bpf/bgt-{uuid.uuid4().hex[:8]}"
    try:
        with load(obj, pin=pin) as first:
            counters = first.maps["counters"].info.id
            assert sorted(os.listdir(f"{pin}/maps")) == [
                "_rodata",
                "counters",
                "events",
                "flows",
                "recent",
            ]
            assert os.listdir(f"{pin}/programs") == ["use_maps"]
            with pytest.raises(LoadError, match="already holds programs"):
                load(obj, pin=pin)
        # unpin the programs only: the pinned-by-name map is picked up again
        os.unlink(f"{pin}/programs/use_maps")
        for name in ("_rodata", "events", "flows", "recent"):
            os.unlink(f"{pin}/maps/{name}")
        with load(obj, pin=pin) as second:
            assert second.maps["counters"].reused
            assert second.maps["counters"].info.id == counters
    finally:
        subprocess.run(["rm", "-rf", pin], check=False)


def test_incompatible_pinned_map_is_refused(bpf_object) -> None:
    obj = read_object(bpf_object("maps"))
    pin = f"/sys/fs/bpf/bgt-{uuid.uuid4().hex[:8]}"
    os.makedirs(f"{pin}/maps")
    try:
        subprocess.run(
            [
                "bpftool",
                "map",
                "create",
                f"{pin}/maps/counters",
                "type",
                "percpu_array",
                "key",
                "4",
                "value",
                "8",
                "entries",
                "8",
                "name",
                "counters",
            ],
            check=True,
            capture_output=True,
        )
        with pytest.raises(LoadError, match="has max_entries 8, the object wants 4"):
            load(obj, pin=pin)
        assert os.listdir(f"{pin}/maps") == ["counters"]
    finally:
        subprocess.run(["rm", "-rf", pin], check=False)


def test_custom_bss_section_gets_its_own_map(bpf_object) -> None:
    with load(read_object(bpf_object("custom_bss")), {"extra_bss": 9}) as lo:
        assert lo.maps[".bss.extra"].kernel_name == ".bss.extra"
        assert run(lo.programs["bump"]) == 10


def test_load_cli_json_shape_and_unload(bpf_object) -> None:
    pin = f"/sys/fs/bpf/bgt-{uuid.uuid4().hex[:8]}"
    r = subprocess.run(
        [
            CLI,
            "load",
            str(bpf_object("examples/xdp_drop.bpf.c")),
            "--pin",
            pin,
            "--set",
            "drop_port=53",
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    try:
        assert info["object"] == "xdp_drop"
        prog = info["programs"][0]
        assert {"name", "section", "type", "id", "tag", "pin"} <= set(prog)
        assert bpftool("prog", "show", "pinned", prog["pin"])["tag"] == prog["tag"]
        ro = next(m for m in info["maps"] if m["name"] == ".rodata")
        assert (ro["kernel_name"], ro["internal"], ro["frozen"]) == ("xdp_drop.rodata", True, True)
        assert bpftool("map", "show", "pinned", ro["pin"])["id"] == ro["id"]
    finally:
        r = subprocess.run([CLI, "unload", pin], capture_output=True, text=True)
    assert r.returncode == 0 and not os.path.exists(pin)


def test_load_cli_verifier_error_exits_2_with_the_log_tail(bpf_object) -> None:
    pin = f"/sys/fs/bpf/bgt-{uuid.uuid4().hex[:8]}"
    r = subprocess.run(
        [CLI, "load", str(bpf_object("prune")), "--pin", pin, "--set", "unsafe_path=true"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "rejected by the verifier" in r.stderr and "  | " in r.stderr
    assert "Traceback" not in r.stderr and not os.path.exists(pin)
