"""The CLI imports only what the verb on its command line uses (see bench/cli_startup.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from bpfglobals.cli.verbs import VERBS

PROBE = """
import json, sys
from bpfglobals.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""
HEAVY = ("yaml", "kopf", "kubernetes", "cryptography", "elftools", "prometheus_client")


def modules_for(*argv: str) -> tuple[set[str], str]:
    r = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True
    )
    return set(json.loads(r.stderr.strip().splitlines()[-1])), r.stdout


def ours(mods: set[str]) -> set[str]:
    return {m for m in mods if m.startswith("bpfglobals")}


def test_help_lists_every_verb_and_imports_none_of_them() -> None:
    mods, out = modules_for("--help")
    assert ours(mods) == {
        "bpfglobals",
        "bpfglobals.cli",
        "bpfglobals.cli.verbs",
        "bpfglobals.errors",
    }
    for verb, (_, help_) in VERBS.items():
        assert verb in out and help_ in out


def test_get_reads_bpffs_without_the_parser_loader_or_cluster_code(tmp_path) -> None:
    mods, out = modules_for("get", "--bpffs-root", str(tmp_path / "none"))
    assert "No bpfprograms applied on this node." in out
    assert "bpfglobals.node.query" in mods
    for heavy in (
        "bpfglobals.elf",
        "bpfglobals.loader",
        "bpfglobals.values",
        "bpfglobals.attach",
        "bpfglobals.node.reconcile",
        "bpfglobals.k8s",
        "bpfglobals.devcluster",
        *HEAVY,
    ):
        assert heavy not in mods, heavy


def test_load_imports_the_loader_only() -> None:
    mods, out = modules_for("load", "--help")
    assert "--pin" in out and "bpfglobals.loader" in mods and "bpfglobals.elf" in mods
    for heavy in (
        "bpfglobals.node",
        "bpfglobals.k8s",
        "bpfglobals.devcluster",
        "bpfglobals.attach",
        "bpfglobals.values.inputs",
        "yaml",
        "kopf",
        "kubernetes",
        "cryptography",
    ):
        assert heavy not in mods, heavy


def test_every_verb_module_registers_the_verbs_the_table_names() -> None:
    for verb in VERBS:
        _, out = modules_for(verb, "--help")
        assert out.startswith(f"usage: bpfglobals {verb}"), (verb, out[:80])
