"""The CLI imports only what the verb on its command line uses (see bench/cli_startup.py)."""

from __future__ import annotations

from bpfglobals.cli.verbs import VERBS
from tests.support.imports import GET_NEVER, HEAVY, LOAD_NEVER, modules_for


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


def test_get_imports_no_costly_stdlib_module(tmp_path) -> None:
    """`get` on a root holding no record still runs the whole verb; a missing root is the
    common case on a fresh machine and must not take a cheaper path than the listing."""
    mods, _ = modules_for("get", "--bpffs-root", str(tmp_path / "none"))
    assert "bpfglobals.kernel.abi" in mods  # the listing ran: it opened the kernel shim
    for name in GET_NEVER:
        assert name not in mods, name


def test_a_command_line_starting_with_its_verb_builds_only_that_verbs_parsers() -> None:
    """`bpfglobals get ...`: the other verbs' parsers are never built (each costs argparse
    set-up); `bpfglobals -h get` still lists every verb (the help is the top-level one)."""
    import argparse

    from bpfglobals.cli import build_parser

    def verbs_of(parser: argparse.ArgumentParser) -> set[str]:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return set(sub.choices)

    assert verbs_of(build_parser(["get"])) == {"apply", "get", "delete"}
    assert verbs_of(build_parser(["-h", "get"])) == set(VERBS)
    assert verbs_of(build_parser([])) == set(VERBS)
    _, out = modules_for("-h", "get")
    for verb in VERBS:
        assert verb in out


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
        *LOAD_NEVER,
    ):
        assert heavy not in mods, heavy


def test_every_verb_module_registers_the_verbs_the_table_names() -> None:
    for verb in VERBS:
        _, out = modules_for(verb, "--help")
        assert out.startswith(f"usage: bpfglobals {verb}"), (verb, out[:80])


def test_the_elf_and_values_packages_name_everything_they_list_and_import_none_of_it() -> None:
    """`bpfglobals.elf` and `bpfglobals.values` resolve their names on first use: importing
    one module of theirs (what the loader does) imports neither the parser nor the codec."""
    import ast
    import subprocess
    import sys

    probe = (
        "import sys, bpfglobals.elf.model, bpfglobals.values.assign;"
        "print(repr(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    mods = set(ast.literal_eval(out.stdout))
    for name in ("bpfglobals.elf.reader", "elftools", "bpfglobals.values.codec", "yaml"):
        assert name not in mods, name
    import bpfglobals.elf as elf
    import bpfglobals.values as values

    for package in (elf, values):
        for name in package.__all__:
            assert getattr(package, name).__name__ == name and name in dir(package)
    import pytest

    with pytest.raises(AttributeError, match=r"'bpfglobals\.elf' has no attribute 'no_such_name'"):
        elf.no_such_name  # noqa: B018
