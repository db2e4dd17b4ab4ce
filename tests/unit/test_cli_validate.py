"""`bpfglobals validate`: the webhook's checks offline, on good and bad files, through the
real console script (exit codes, one line per problem with file and document index, -o json)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

import bpfglobals
from tests.support.imports import modules_for
from tests.support.manifests import bpf_program

CLI = str(Path(sys.executable).parent / "bpfglobals")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "validate", *args], capture_output=True, text=True)


def doc(name: str, elf: dict, globals_: dict, program: str = "config_ret", **spec) -> dict:
    xdp = {"name": program, "attach": {"xdp": {"interface": "eth0"}}}
    return bpf_program(name, elf, [xdp], globals_, **spec)


def write(path: Path, *docs: dict) -> str:
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


def test_good_files_pass_with_exit_0(bpf_object, tmp_path) -> None:
    elf = bpf_object("globals")
    sha = hashlib.sha256(elf.read_bytes()).hexdigest()
    config_map = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x"}}
    good = write(
        tmp_path / "good.yaml",
        config_map,  # other kinds are skipped
        doc("a", {"path": str(elf), "sha256": sha}, {"ro_u16": 80, "ro_mode": "MODE_DROP"}),
        doc(
            "b",
            {"path": elf.name},  # relative to the file
            {"ro_addr_be": {"fromNode": {"address": "InternalIP"}}},
            nodeOverrides=[{"nodeSelector": {"pool": "a"}, "globals": {"ro_name": "eth1"}}],
        ),
    )
    (tmp_path / elf.name).write_bytes(elf.read_bytes())
    r = run("-f", good)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "" and "2 BpfProgram document(s) checked, 0 problem(s)" in r.stderr


def test_each_problem_is_one_line_with_file_and_document_index(bpf_object, tmp_path) -> None:
    elf = bpf_object("globals")
    sha = hashlib.sha256(elf.read_bytes()).hexdigest()
    src = {"path": str(elf), "sha256": sha}
    bad = write(
        tmp_path / "bad.yaml",
        doc("ok", src, {"ro_u16": 1}),
        doc("range", src, {"ro_u16": 70000, "ro_mode": "MODE_DORP"}),
        doc("prog", src, {}, program="nope"),
        doc("digest", {"path": str(elf), "sha256": "0" * 64}, {}),
        doc("typo", src, {"ro_u16": 1}, globls={}),
    )
    other = write(tmp_path / "other.yaml", doc("cm", {"url": "https://example.org/o"}, {}))
    r = run("-f", bad, other)
    assert r.returncode == 2
    lines = r.stdout.splitlines()
    first = f"{bad}:1: bpfprogram/range: spec.globals: variable"
    assert {line.split("'")[1] for line in lines[:2]} == {"ro_u16", "ro_mode"}
    assert all(line.startswith(first) for line in lines[:2])
    assert any("70000 is out of range" in line for line in lines[:2])
    assert lines[2].startswith(f"{bad}:2: bpfprogram/prog: spec.programs: no program 'nope'")
    assert lines[3].startswith(f"{bad}:3: bpfprogram/digest: spec.elf.sha256 mismatch")
    assert lines[4].startswith(f"{bad}:4: bpfprogram/typo: spec: unknown field 'globls'")
    assert lines[5].startswith(f"{other}:0: bpfprogram/cm: spec.elf url https://example.org/o")
    assert "--elf PATH, or --fetch" in lines[5]
    assert len(lines) == 6
    assert "6 BpfProgram document(s) checked, 6 problem(s)" in r.stderr


def test_elf_option_checks_every_document_against_one_object(bpf_object, tmp_path) -> None:
    elf = bpf_object("globals")
    f = write(
        tmp_path / "cm.yaml",
        doc("cm", {"configMap": {"namespace": "d", "name": "n", "key": "k"}}, {"ro_u8": 256}),
    )
    r = subprocess.run(  # --elf relative to the working directory, not to the file
        [CLI, "validate", "-f", f, "--elf", elf.name, "-o", "json"],
        capture_output=True,
        text=True,
        cwd=elf.parent,
        env={**os.environ, "PYTHONPATH": str(Path(bpfglobals.__file__).parents[1])},
    )
    assert r.returncode == 2
    out = json.loads(r.stdout)
    assert out["checked"] == 1
    [p] = out["problems"]
    assert (p["file"], p["document"], p["name"]) == (f, 0, "cm")
    assert "variable 'ro_u8' (const volatile __u8 in .rodata): 256 is out of range" in p["message"]


def test_the_examples_validate_and_the_cluster_template_needs_its_digest(bpf_object) -> None:
    elf = bpf_object("examples/xdp_drop.bpf.c")
    r = run("-f", "examples/xdp_drop.yaml", "--elf", str(elf))
    assert r.returncode == 0, r.stdout + r.stderr
    r = run("-f", "examples/xdp_drop-cluster.yaml", "--elf", str(elf))
    assert r.returncode == 2  # a template: demo.sh fills in the digest
    assert "spec.elf.sha256: expected 64 hex digits (lower-case), got 'SHA256'" in r.stdout


def test_validate_of_a_local_file_imports_no_cluster_code(bpf_object, tmp_path) -> None:
    elf = bpf_object("globals")
    f = write(tmp_path / "a.yaml", doc("a", {"path": str(elf)}, {"ro_u16": 1}))
    mods, _ = modules_for("validate", "-f", f)
    assert "bpfglobals.node.check" in mods  # it did check
    for name in ("kubernetes", "kopf", "bpfglobals.k8s", "bpfglobals.node.reconcile"):
        assert name not in mods, name


def test_fetch_reads_url_sources_and_checks_their_digest(bpf_object, tmp_path) -> None:
    import http.server
    import threading

    elf = bpf_object("globals")
    sha = hashlib.sha256(elf.read_bytes()).hexdigest()

    class Serve(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = elf.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Serve)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/globals.bpf.o"
        f = write(
            tmp_path / "url.yaml",
            doc("good", {"url": url, "sha256": sha}, {"ro_u16": 1}),
            doc("bad", {"url": url, "sha256": sha}, {"ro_mode": "MODE_NONE"}),
            doc("digest", {"url": url, "sha256": "1" * 64}, {}),
        )
        r = run("-f", f, "--fetch")
        assert r.returncode == 2
        lines = r.stdout.splitlines()
        assert len(lines) == 2, r.stdout
        assert lines[0].startswith(f"{f}:1: bpfprogram/bad: spec.globals: variable 'ro_mode'")
        assert lines[1].startswith(f"{f}:2: bpfprogram/digest: spec.elf.sha256 mismatch")
    finally:
        server.shutdown()
        server.server_close()
