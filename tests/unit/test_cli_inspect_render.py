"""The real console script: inspect output vs llvm-readelf, render byte-exactness, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bpfglobals.elf import read_object
from tests.support.oracles import readelf_sections, readelf_symbols

CLI = str(Path(sys.executable).parent / "bpfglobals")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], capture_output=True, text=True)


def test_inspect_json_matches_readelf(bpf_object) -> None:
    path = bpf_object("globals")
    r = run("inspect", str(path), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    syms = {s.name: s for s in readelf_symbols(path) if s.type == "OBJECT"}
    for v in info["variables"]:
        assert (v["section"], v["offset"], v["size"]) == (
            syms[v["name"]].section,
            syms[v["name"]].value,
            syms[v["name"]].size,
        )
    by_name = {v["name"]: v for v in info["variables"]}
    assert by_name["ro_u32"]["type"] == "const volatile __u32"
    assert by_name["ro_name"] == {
        **by_name["ro_name"],
        "type": "const volatile char[16]",
        "value": "eth0",
    }
    funcs = {s.name: s.size // 8 for s in readelf_symbols(path) if s.type == "FUNC"}
    assert {p["name"]: p["insns"] for p in info["programs"]} == funcs
    internal = {m["name"]: m["value_size"] for m in info["maps"] if m["internal"]}
    sizes = readelf_sections(path)
    assert internal == {
        "globals.rodata": sizes[".rodata"][1],
        "globals.data": sizes[".data"][1],
        ".rodata.extra": 4,
        ".data.extra": 4,
        "globals.bss": sizes[".bss"][1],
    }


def test_inspect_table_lists_every_variable(bpf_object) -> None:
    r = run("inspect", str(bpf_object("examples/xdp_drop.bpf.c")))
    assert r.returncode == 0, r.stderr
    assert "drop_port" in r.stdout and "const volatile __u16" in r.stdout
    assert r.stdout.splitlines()[0] == "PROGRAMS"


def test_render_changes_only_the_affected_section_bytes(bpf_object, tmp_path) -> None:
    path = bpf_object("globals")
    out = tmp_path / "out.o"
    values = tmp_path / "v.yaml"
    values.write_text("ro_u32: 7\nro_name: lo\n")
    r = run(
        "render",
        str(path),
        "-o",
        str(out),
        "-f",
        str(values),
        "--set",
        "data_delta=-9",
        "--set",
        "ro_name=veth9",
    )
    assert r.returncode == 0, r.stderr
    before, after = path.read_bytes(), out.read_bytes()
    assert len(before) == len(after)
    obj = read_object(path)
    secs = {d.name: d for d in obj.data_sections}
    allowed = set()
    for name in (".rodata", ".data"):
        allowed |= set(range(secs[name].file_offset, secs[name].file_offset + secs[name].size))
    diff = {i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b}
    assert diff and diff <= allowed
    new = {
        v["name"]: v["value"]
        for v in json.loads(run("inspect", str(out), "--json").stdout)["variables"]
    }
    assert (new["ro_u32"], new["ro_name"], new["data_delta"], new["ro_u8"]) == (7, "veth9", -9, 8)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "bss_hits=3"], ".bss variables (bss_hits) cannot get a non-zero default"),
        (["--set", "nope=1"], "no global variable 'nope'"),
        (["--set", "ro_u8=300"], "300 is out of range"),
    ],
)
def test_render_user_errors_exit_2_with_one_line(bpf_object, tmp_path, args, message) -> None:
    out = tmp_path / "o.o"
    r = run("render", str(bpf_object("globals")), "-o", str(out), *args)
    assert r.returncode == 2
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not out.exists()


def test_render_zero_for_bss_is_fine(bpf_object, tmp_path) -> None:
    r = run(
        "render", str(bpf_object("globals")), "-o", str(tmp_path / "o.o"), "--set", "bss_hits=0"
    )
    assert r.returncode == 0, r.stderr


def test_malformed_object_exits_2(tmp_path) -> None:
    bad = tmp_path / "bad.o"
    bad.write_bytes(b"\x7fELF" + bytes(100))
    r = run("inspect", str(bad))
    assert r.returncode == 2 and "bad.o" in r.stderr and "Traceback" not in r.stderr
    r = run("inspect", str(tmp_path / "missing.o"))
    assert r.returncode == 2 and "cannot read" in r.stderr
